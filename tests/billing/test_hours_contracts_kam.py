from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.urls import reverse

from billing.models import ServiceHourEntry
from billing.selectors import service_hours_balance, service_hours_ledger
from billing.services import (
    hour_pack_buy,
    service_hours_adjust,
    service_hours_credit_start_package,
    service_hours_log,
)
from tests.billing.factories import (
    CustomerFactory,
    HourPackFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    at,
    package,
)

pytestmark = pytest.mark.django_db


def test_the_balance_is_the_sum_of_the_ledger_and_start_hours_stay():
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package("400"), start_date=date(2025, 1, 1))
    support = StaffFactory()
    assert service_hours_credit_start_package(customer=customer).hours == Decimal("3.00")  # idempotent
    service_hours_log(customer=customer, hours=Decimal("2.25"), category="training", by_user=support)
    hour_pack_buy(customer=customer, hour_pack=HourPackFactory(hours=5, price=4275), by_user=support)
    service_hours_adjust(customer=customer, hours=Decimal("-0.5"), by_user=support, note="double logged")
    total = ServiceHourEntry.objects.filter(customer=customer).aggregate(s=Sum("hours"))["s"]
    assert service_hours_balance(customer=customer) == total == Decimal("5.25")
    ledger = service_hours_ledger(customer=customer)
    assert ledger[0].balance == Decimal("5.25") and ledger[-1].entry.kind == "start_package"


def test_going_below_zero_needs_a_reason():
    customer = CustomerFactory()
    support = StaffFactory()
    with pytest.raises(ValidationError) as caught:
        service_hours_log(customer=customer, hours=1, category="other", by_user=support)
    assert "below_zero_reason" in caught.value.message_dict
    entry = service_hours_log(
        customer=customer, hours=1, category="other", by_user=support, below_zero_reason="go-live weekend"
    )
    assert entry.hours == Decimal("-1") and entry.hourly_rate == Decimal("950")
    with pytest.raises(ValidationError):
        service_hours_log(customer=customer, hours=-1, category="other", by_user=support)


@pytest.mark.parametrize(
    "start, earliest",
    [
        (date(2025, 1, 1), date(2025, 3, 31)),
        (date(2025, 1, 15), date(2025, 4, 14)),
        (date(2024, 11, 30), date(2025, 2, 28)),
        (date(2023, 11, 30), date(2024, 2, 29)),
        (date(2024, 11, 29), date(2025, 2, 28)),
        (date(2025, 12, 31), date(2026, 3, 30)),
    ],
)
def test_the_contract_runs_at_least_three_months(start, earliest):
    assert SubscriptionFactory(start_date=start).earliest_end_date == earliest


@pytest.mark.parametrize(
    "start, notice_on, ends",
    [
        (date(2025, 1, 1), date(2025, 1, 15), date(2025, 3, 31)),  # the contract term is longer
        (date(2024, 6, 1), date(2025, 1, 15), date(2025, 2, 28)),  # a month's notice ends in February
        (date(2024, 6, 1), date(2025, 1, 31), date(2025, 2, 28)),  # given on a month end
        (date(2023, 6, 1), date(2024, 1, 31), date(2024, 2, 29)),  # leap year
        (date(2024, 6, 1), date(2025, 2, 28), date(2025, 3, 31)),
        (date(2024, 6, 1), date(2025, 12, 1), date(2026, 1, 31)),
    ],
)
def test_a_cancellation_takes_effect_after_notice_and_never_inside_the_term(start, notice_on, ends):
    subscription = SubscriptionFactory(start_date=start)
    assert subscription.effective_end_date_if_cancelled(notice_on) == ends
    subscription.cancelled_on = notice_on
    assert subscription.effective_end_date == ends


def test_a_key_account_manager_needs_premium():
    kam = StaffFactory(username="kam")
    small = CustomerFactory(key_account_manager=kam)
    SubscriptionFactory(customer=small, package=package("800"))
    with pytest.raises(ValidationError) as caught:
        small.full_clean()
    assert (
        "Premium" in caught.value.message_dict["key_account_manager"][0]
        or "package premium" in caught.value.message_dict["key_account_manager"][0]
    )
    big = CustomerFactory(key_account_manager=kam)
    SubscriptionFactory(customer=big, package=package("premium"))
    big.full_clean()


def test_the_customer_sees_its_ledger_quota_and_kam(client):
    kam = StaffFactory(username="kam", first_name="Karin", last_name="Kam")
    customer = CustomerFactory(name="Egen AB", key_account_manager=kam)
    SubscriptionFactory(customer=customer, package=package("premium"), start_date=date(2025, 1, 1))
    service_hours_log(customer=customer, hours=1, category="training", by_user=kam, note="Kurs i flöden")
    other = CustomerFactory(name="Annan AB")
    service_hours_log(
        customer=other, hours=1, category="training", by_user=kam, note="Hemligt", below_zero_reason="x"
    )
    user = UserFactory(username="shopowner")
    customer.users.add(user)
    client.force_login(user)
    page = client.get(reverse("account")).content.decode()
    assert "Egen AB" in page and "Kurs i flöden" in page and "Karin Kam" in page
    assert "3,00\xa0h" in page  # 4 start hours - 1, in Swedish form (both languages)
    assert "Hemligt" not in page
    assert client.get(reverse("account"), {"customer": other.pk}).content.decode().count("Hemligt") == 0


def test_support_logs_time_from_the_admin_form(admin_client):
    customer = CustomerFactory()
    url = reverse("admin:billing_servicehourentry_add")
    assert admin_client.get(url, {"customer": customer.pk}).status_code == 200
    form = {
        "customer": customer.pk,
        "kind": "time_spent",
        "occurred_at_0": "2025-02-03",
        "occurred_at_1": "10:00",
        "hours": "1.5",
        "category": "system_change",
        "note": "bytte kassa",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 200 and "below zero" in response.content.decode()
    response = admin_client.post(url, {**form, "below_zero_reason": "approved by sales"})
    assert response.status_code == 302
    assert service_hours_balance(customer=customer) == Decimal("-1.50")
    entry = ServiceHourEntry.objects.get(customer=customer)
    assert entry.staff.username == "admin" and entry.occurred_at == at(2025, 2, 3, 10)
    page = admin_client.get(reverse("admin:billing_customer_change", args=[customer.pk])).content.decode()
    assert "bytte kassa" in page and "Log time" in page
