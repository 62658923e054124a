from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import Package, ServiceHourEntry, StatementLine
from billing.selectors import service_hours_balance, statement_compute
from billing.services import (
    hour_pack_buy,
    quota_claim,
    service_hours_log,
    shop_count_changed,
    statement_issue,
)
from tests.billing.factories import (
    CustomerFactory,
    HourPackFactory,
    StaffFactory,
    SubscriptionFactory,
    at,
    package,
)

pytestmark = pytest.mark.django_db


def amounts(statement):
    return {line.kind: line.amount for line in statement.lines}


def test_the_first_month_has_the_installation_fee_and_a_prorated_monthly_fee():
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package("400"), start_date=date(2025, 3, 11))
    statement = statement_compute(customer=customer, month=date(2025, 3, 1))
    # 795 x 21/31 = 538.548... -> 538.55
    assert amounts(statement) == {"monthly_fee": Decimal("538.55"), "installation": Decimal("6400.00")}
    assert statement.net == Decimal("6938.55")
    assert statement.vat == Decimal("1734.64")  # 1734.6375 rounded half up
    assert statement.gross == Decimal("8673.19")
    april = statement_compute(customer=customer, month=date(2025, 4, 1))
    assert amounts(april) == {"monthly_fee": Decimal("795.00")}


def test_a_package_change_mid_month_is_prorated_by_day():
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package("100"), start_date=date(2025, 1, 1))
    SubscriptionFactory(customer=customer, package=package("400"), start_date=date(2025, 4, 21))
    statement = statement_compute(customer=customer, month=date(2025, 4, 1))
    fees = [(line.package_code, line.quantity, line.amount) for line in statement.lines]
    # April has 30 days: 20 on package 100 (295 x 20/30), 10 on package 400 (795 x 10/30).
    assert fees == [("100", Decimal(20), Decimal("196.67")), ("400", Decimal(10), Decimal("265.00"))]
    assert statement.package_code == "400" and statement.order_limit == 400


def test_an_extra_shop_added_mid_month_costs_295_prorated():
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package("400"), start_date=date(2025, 1, 1))
    shop_count_changed(customer=customer, active_shops=1, on=date(2025, 1, 1))
    shop_count_changed(customer=customer, active_shops=2, on=date(2025, 2, 15))
    shop_count_changed(customer=customer, active_shops=2, on=date(2025, 2, 20))  # no change: no row
    february = amounts(statement_compute(customer=customer, month=date(2025, 2, 1)))
    assert february == {"monthly_fee": Decimal("795.00"), "extra_shops": Decimal("147.50")}  # 14/28
    march = amounts(statement_compute(customer=customer, month=date(2025, 3, 1)))
    assert march["extra_shops"] == Decimal("295.00")
    assert customer.shop_counts.count() == 2


def test_hour_packs_bought_and_hours_spent_show_on_the_statement():
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package("200"), start_date=date(2025, 1, 1))
    support = StaffFactory()
    pack = HourPackFactory(hours=10, price=8075)
    hour_pack_buy(customer=customer, hour_pack=pack, by_user=support, occurred_at=at(2025, 2, 3))
    service_hours_log(
        customer=customer,
        hours=Decimal("3.5"),
        category="plugin_development",
        by_user=support,
        occurred_at=at(2025, 2, 4),
    )
    statement = statement_compute(customer=customer, month=date(2025, 2, 1))
    assert amounts(statement)["hour_pack"] == Decimal("8075.00")
    assert (
        statement.hours_opening,
        statement.hours_credited,
        statement.hours_spent,
        statement.hours_closing,
    ) == (Decimal("2.00"), Decimal("10.00"), Decimal("-3.50"), Decimal("8.50"))


def test_hours_owed_below_zero_are_charged_once_at_the_recorded_rate(settings):
    settings.BILLING_HOURLY_RATE = "1000"
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package("100"), start_date=date(2025, 1, 1))
    support = StaffFactory()
    with pytest.raises(ValidationError):
        service_hours_log(
            customer=customer,
            hours=3,
            category="qualified_support",
            by_user=support,
            occurred_at=at(2025, 2, 4),
        )
    service_hours_log(
        customer=customer,
        hours=3,
        category="qualified_support",
        by_user=support,
        occurred_at=at(2025, 2, 4),
        below_zero_reason="urgent outage, approved",
    )
    settings.BILLING_HOURLY_RATE = "1200"  # a later price change does not rewrite February
    february = statement_compute(customer=customer, month=date(2025, 2, 1))
    assert february.hours_owed == Decimal("1.00")
    assert amounts(february)["owed_hours"] == Decimal("1000.00")
    statement_issue(customer=customer, month=date(2025, 2, 1), by_user=support)
    assert service_hours_balance(customer=customer) == Decimal("0.00")
    assert "owed_hours" not in amounts(statement_compute(customer=customer, month=date(2025, 3, 1)))


def test_a_month_recomputed_later_is_identical_even_after_list_prices_change():
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package("100"), start_date=date(2025, 1, 10))
    SubscriptionFactory(customer=customer, package=package("200"), start_date=date(2025, 1, 20))
    shop_count_changed(customer=customer, active_shops=3, on=date(2025, 1, 25))
    hour_pack_buy(customer=customer, hour_pack=HourPackFactory(), occurred_at=at(2025, 1, 26))
    for i in range(7):
        quota_claim(customer=customer, order_key=str(i), arrived_at=at(2025, 1, 26), on=date(2025, 1, 26))
    before = statement_compute(customer=customer, month=date(2025, 1, 1))
    Package.objects.update(
        monthly_fee=Decimal("9999"), installation_fee=Decimal("1"), extra_shop_fee=Decimal("1")
    )
    # Later activity in other months changes nothing in January.
    shop_count_changed(customer=customer, active_shops=1, on=date(2025, 2, 2))
    quota_claim(customer=customer, order_key="feb", arrived_at=at(2025, 2, 2), on=date(2025, 2, 2))
    after = statement_compute(customer=customer, month=date(2025, 1, 1))
    assert after == before
    assert before.orders_counted == 7


def test_an_issued_statement_is_a_snapshot_and_issued_once():
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package("800"), start_date=date(2025, 1, 1))
    user = StaffFactory()
    issued = statement_issue(customer=customer, month=date(2025, 1, 1), by_user=user)
    assert issued.net == Decimal("9695.00") and issued.gross == Decimal("12118.75")
    assert list(StatementLine.objects.filter(statement=issued).values_list("kind", flat=True)) == [
        "monthly_fee",
        "installation",
    ]
    with pytest.raises(ValidationError):
        statement_issue(customer=customer, month=date(2025, 1, 1), by_user=user)
    with pytest.raises(ValidationError):
        statement_issue(customer=customer, month=date.today(), by_user=user)  # not ended yet


def test_premium_by_quote_has_a_note_and_uses_the_agreed_fee():
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package("premium"), start_date=date(2025, 1, 1))
    january = statement_compute(customer=customer, month=date(2025, 1, 1))
    assert january.net == 0 and any("quote" in note for note in january.notes)
    other = CustomerFactory()
    SubscriptionFactory(
        customer=other,
        package=package("premium"),
        start_date=date(2025, 1, 1),
        monthly_fee=Decimal("2500"),
        installation_fee=Decimal("12000"),
    )
    assert statement_compute(customer=other, month=date(2025, 1, 1)).net == Decimal("14500.00")


def test_a_cancelled_subscription_is_not_charged_after_it_ends():
    customer = CustomerFactory()
    SubscriptionFactory(
        customer=customer, package=package("100"), start_date=date(2025, 1, 1), cancelled_on=date(2025, 3, 10)
    )  # ends 30 April
    assert amounts(statement_compute(customer=customer, month=date(2025, 4, 1))) == {
        "monthly_fee": Decimal("295.00")
    }
    assert statement_compute(customer=customer, month=date(2025, 5, 1)).lines == ()
    assert (
        quota_claim(
            customer=customer, order_key="late", arrived_at=at(2025, 5, 2), on=date(2025, 5, 2)
        ).granted
        is False
    )


def test_the_start_package_is_credited_once():
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package("800"), start_date=date(2025, 1, 1))
    SubscriptionFactory(customer=customer, package=package("premium"), start_date=date(2025, 3, 1))
    entries = ServiceHourEntry.objects.filter(customer=customer, kind="start_package")
    assert [e.hours for e in entries] == [Decimal("4.00")]
