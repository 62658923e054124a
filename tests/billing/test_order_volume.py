"""The monthly order-volume summary stays in step with the recorded orders."""

import random
from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from django.db.models import F

from billing.dates import add_months, local_midnight, months_between
from billing.models import MonthlyOrderVolume, OrderUsage
from billing.reports import billing_report, report_filter
from billing.selectors import order_volume_differences, statement_compute
from billing.services import (
    hour_pack_buy,
    order_volume_rebuild,
    quota_claim,
    quota_release,
    quota_release_forced,
    quota_return,
    service_hours_log,
    shop_count_changed,
)
from tests.billing.factories import (
    CustomerFactory,
    HourPackFactory,
    StaffFactory,
    SubscriptionFactory,
    at,
    package,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
MAY, JUNE = date(2025, 5, 1), date(2025, 6, 1)


def volume(customer) -> dict:
    """{(month, package code or None): (counted, held)}, rows with both zero left out."""
    return {
        (r.month, r.package.code if r.package else None): (r.counted, r.held)
        for r in MonthlyOrderVolume.objects.filter(customer=customer).select_related("package")
        if r.counted or r.held
    }


def customer_on(code="100", start=date(2025, 1, 1)):
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package(code), start_date=start)
    return customer


def claim(customer, count, *, on, prefix="o"):
    return [
        quota_claim(customer=customer, order_key=f"{prefix}{i}", arrived_at=local_midnight(on), on=on)
        for i in range(count)
    ]


def invoice(customer, keys, *, on):
    """The released orders' invoices are created: each takes its reserved place."""
    for key in keys:
        assert quota_claim(customer=customer, order_key=key, arrived_at=local_midnight(on), on=on).granted


def test_claims_count_and_hold_in_the_month_and_a_repeated_claim_changes_nothing():
    customer = customer_on("100")
    claim(customer, 103, on=date(2025, 5, 20))
    claim(customer, 103, on=date(2025, 5, 28))  # the same orders again, same month: idempotent
    assert volume(customer) == {(MAY, "100"): (100, 3)}
    assert order_volume_differences() == {}


def test_held_orders_released_next_month_count_there_when_invoiced_and_stay_held_in_their_month():
    customer = customer_on("100")
    claim(customer, 105, on=date(2025, 5, 20))
    released = quota_release(customer=customer, on=date(2025, 6, 1))
    assert len(released) == 5
    assert volume(customer) == {(MAY, "100"): (100, 5)}  # reserved, not counted before the invoice
    invoice(customer, released, on=date(2025, 6, 1))
    assert volume(customer) == {(MAY, "100"): (100, 5), (JUNE, "100"): (5, 0)}
    assert order_volume_differences() == {}


def test_a_returned_place_leaves_the_summary_in_step():
    customer = customer_on("100")
    claim(customer, 102, on=date(2025, 5, 20))
    quota_return(customer=customer, order_key="o3", keep_place=True)  # Hogia Smart was down
    quota_return(customer=customer, order_key="o4", keep_place=False)  # cancelled in the shop
    quota_return(customer=customer, order_key="o101", keep_place=False)  # a held one cancelled
    assert volume(customer) == {(MAY, "100"): (98, 1)}
    assert order_volume_differences() == {}


def test_an_upgrade_releases_held_orders_under_the_new_package():
    customer = customer_on("100")
    claim(customer, 104, on=date(2025, 5, 10))
    SubscriptionFactory(customer=customer, package=package("200"), start_date=date(2025, 5, 15))
    released = quota_release(customer=customer, on=date(2025, 5, 15))
    assert len(released) == 4
    invoice(customer, released, on=date(2025, 5, 15))
    # The orders record the package they counted under; "held" follows them.
    assert volume(customer) == {(MAY, "100"): (100, 0), (MAY, "200"): (4, 4)}
    assert order_volume_differences() == {}


def test_a_forced_release_counts_over_the_limit_and_without_a_package():
    customer = customer_on("100")
    claim(customer, 102, on=date(2025, 5, 10))
    support = StaffFactory()
    released = quota_release_forced(
        customer=customer,
        order_keys=["o100", "o101", "nope"],
        by_user=support,
        reason="Big customer order",
        on=date(2025, 5, 11),
    )
    assert released == ["o100", "o101"]
    invoice(customer, released, on=date(2025, 5, 11))
    assert volume(customer) == {(MAY, "100"): (102, 2)}
    stranger = CustomerFactory()  # no package: its orders are held under none
    claim(stranger, 2, on=date(2025, 5, 10))
    assert volume(stranger) == {(MAY, None): (0, 2)}
    quota_release_forced(
        customer=stranger, order_keys=["o0"], by_user=support, reason="Trial", on=date(2025, 6, 3)
    )
    invoice(stranger, ["o0"], on=date(2025, 6, 3))
    assert volume(stranger) == {(MAY, None): (0, 2), (JUNE, None): (1, 0)}
    assert order_volume_differences() == {}


def test_the_summary_equals_a_recount_after_a_random_mix_of_claims_and_releases():
    rng = random.Random(7)
    support = StaffFactory()
    customers = [customer_on(code) for code in ("100", "100")] + [CustomerFactory()]
    keys = defaultdict(int)
    for month in months_between(date(2025, 1, 1), date(2025, 4, 1)):
        for customer in customers:
            if rng.random() < 0.3:
                SubscriptionFactory(
                    customer=customer,
                    package=package(rng.choice(["100", "200", "400"])),
                    start_date=month.replace(day=rng.randint(2, 20)),
                )
        for _ in range(350):
            customer = rng.choice(customers)
            day = month.replace(day=rng.randint(1, 28))
            roll = rng.random()
            if roll < 0.90:
                keys[customer.pk] += 1
                key = (
                    f"k{keys[customer.pk]}"
                    if rng.random() < 0.97
                    else f"k{rng.randint(1, keys[customer.pk])}"
                )
                quota_claim(customer=customer, order_key=key, arrived_at=local_midnight(day), on=day)
            elif roll < 0.94:
                for key in quota_release(customer=customer, on=day):
                    if rng.random() < 0.8:  # most released orders are invoiced, some wait
                        quota_claim(customer=customer, order_key=key, arrived_at=local_midnight(day), on=day)
            elif roll < 0.97:
                key = f"k{rng.randint(1, keys[customer.pk] + 1)}"
                quota_return(customer=customer, order_key=key, keep_place=rng.random() < 0.5)
            else:
                held = list(
                    OrderUsage.objects.filter(customer=customer, status="held").values_list(
                        "order_key", flat=True
                    )
                )
                quota_release_forced(
                    customer=customer,
                    order_keys=rng.sample(held, min(2, len(held)))
                    + [f"k{rng.randint(1, keys[customer.pk] + 1)}"],
                    by_user=support,
                    reason="random",
                    on=day,
                )
    released_later = OrderUsage.objects.filter(status="counted", held_month__lt=F("month"))
    assert released_later.exists() and MonthlyOrderVolume.objects.filter(held__gt=0).count() > 3
    assert OrderUsage.objects.exclude(forced_reason="").exists()
    assert order_volume_differences() == {}


def test_the_rebuild_recomputes_the_summary_from_the_orders():
    customer, other = customer_on("100"), customer_on("200")
    claim(customer, 101, on=date(2025, 5, 10))
    claim(other, 7, on=date(2025, 5, 10))
    expected = volume(customer), volume(other)
    MonthlyOrderVolume.objects.filter(customer=customer).update(counted=1, held=0)
    MonthlyOrderVolume.objects.create(customer=other, month=JUNE, package=package("100"), counted=9)
    assert len(order_volume_differences()) == 2
    order_volume_rebuild(customer=customer)
    assert volume(customer) == expected[0] and len(order_volume_differences()) == 1
    assert order_volume_rebuild() == 2
    assert (volume(customer), volume(other)) == expected
    assert order_volume_differences() == {}


@pytest.fixture
def busy_year(settings):
    """Customers with a year of changes: upgrades, cancellation, shops, hour packs, hours owed."""
    settings.BILLING_HOURLY_RATE = "1000"
    support = StaffFactory()
    growing = customer_on("100", start=date(2025, 1, 14))
    SubscriptionFactory(customer=growing, package=package("400"), start_date=date(2025, 3, 17))
    shop_count_changed(customer=growing, active_shops=3, on=date(2025, 4, 9))
    hour_pack_buy(customer=growing, hour_pack=HourPackFactory(), occurred_at=at(2025, 2, 3))
    leaving = customer_on("200", start=date(2025, 1, 1))
    leaving.subscriptions.update(cancelled_on=date(2025, 2, 10))  # ends 31 March
    service_hours_log(
        customer=leaving,
        hours=Decimal("5"),
        category="qualified_support",
        by_user=support,
        occurred_at=at(2025, 2, 20),
        below_zero_reason="urgent",
    )
    settings.BILLING_HOURLY_RATE = "1100"
    service_hours_log(
        customer=leaving,
        hours=Decimal("1.5"),
        category="other",
        by_user=support,
        occurred_at=at(2025, 3, 5),
        below_zero_reason="again",
    )
    claim(growing, 120, on=date(2025, 2, 10))
    quota_release(customer=growing, on=date(2025, 3, 20))
    return growing, leaving


def test_report_revenue_equals_the_sum_of_the_statements_line_by_line(busy_year):
    months = months_between(date(2025, 1, 1), date(2025, 5, 1))
    report = billing_report(report_filter=report_filter(first_month=months[0], last_month=months[-1]))
    reported = {
        (r.month, r.package_code, kind): amount
        for r in report.revenue
        for kind, amount in r.amounts.items()
        if amount
    }
    stated: dict = defaultdict(Decimal)
    for customer in busy_year:
        for month in months:
            for line in statement_compute(customer=customer, month=month).lines:
                stated[(month, line.package_code, line.kind)] += line.amount
    assert {k: v for k, v in stated.items() if v} == reported
    assert {"owed_hours", "hour_pack", "extra_shops", "installation"} <= {k[2] for k in reported}


def test_the_report_takes_the_same_few_queries_for_more_customers(busy_year, django_assert_max_num_queries):
    chosen = report_filter(first_month=date(2025, 1, 1), last_month=date(2025, 12, 1))
    with django_assert_max_num_queries(10):
        billing_report(report_filter=chosen)
    for n in range(5):
        extra = customer_on(["100", "200", "800"][n % 3], start=add_months(date(2025, 1, 1), n))
        claim(extra, 3, on=date(2025, 6, 5))
        shop_count_changed(customer=extra, active_shops=2, on=date(2025, 7, 1))
    with django_assert_max_num_queries(10):
        report = billing_report(report_filter=chosen)
    assert len(report.customers) == 6  # the one without orders has no row
