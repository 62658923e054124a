from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing.models import OrderUsage, QuotaNotice
from billing.selectors import quota_status
from billing.services import quota_claim, quota_release, quota_release_forced
from tests.billing.factories import CustomerFactory, StaffFactory, SubscriptionFactory, at, package
from tests.factories import ContactFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
MAY = date(2025, 5, 10)


def small_customer(limit_code="100", **kwargs):
    customer = CustomerFactory(**kwargs)
    SubscriptionFactory(customer=customer, package=package(limit_code), start_date=date(2025, 1, 1))
    return customer


def fill(customer, count, *, on=MAY, prefix="o"):
    return [
        quota_claim(customer=customer, order_key=f"{prefix}{i}", arrived_at=at(2025, 5, 10), on=on)
        for i in range(count)
    ]


def test_a_claim_counts_once_per_order_ever():
    customer = small_customer()
    first = quota_claim(customer=customer, order_key="shop1-17", arrived_at=at(2025, 5, 1), on=MAY)
    again = quota_claim(
        customer=customer, order_key="shop1-17", arrived_at=at(2025, 5, 1), on=MAY + timedelta(days=40)
    )
    assert first.granted and again.granted
    assert (first.month, first.used, first.limit, first.held) == (date(2025, 5, 1), 1, 100, 0)
    assert again.month == date(2025, 5, 1) and again.used == 1
    assert OrderUsage.objects.count() == 1


def test_over_the_limit_orders_are_held_and_released_next_month_in_arrival_order():
    customer = small_customer()
    fill(customer, 100)
    late = [
        quota_claim(
            customer=customer, order_key=f"late{i}", arrived_at=at(2025, 5, 20 + i), on=date(2025, 5, 20 + i)
        )
        for i in (3, 1, 2)
    ]
    assert [c.granted for c in late] == [False, False, False]
    assert late[-1].held == 3 and late[-1].used == 100
    assert quota_release(customer=customer, on=date(2025, 5, 31)) == []  # May is still full
    released = quota_release(customer=customer, on=date(2025, 6, 1))
    assert released == ["late1", "late2", "late3"]
    assert quota_status(customer=customer, month=date(2025, 6, 1)).used == 3
    assert quota_status(customer=customer, month=date(2025, 5, 1)).used == 100
    row = OrderUsage.objects.get(order_key="late1")
    assert (row.status, row.month, row.held_month) == ("reserved", date(2025, 6, 1), date(2025, 5, 1))
    # Its invoice is created on the 2nd: the reserved place becomes counted, in June.
    assert quota_claim(
        customer=customer, order_key="late1", arrived_at=at(2025, 5, 21), on=date(2025, 6, 2)
    ).granted
    row.refresh_from_db()
    assert (row.status, row.month) == ("counted", date(2025, 6, 1))


def test_a_new_order_never_overtakes_held_ones():
    """The 1st, or a package raise: the held orders take the places first, oldest first."""
    customer = small_customer()
    fill(customer, 100)
    for i in (3, 1, 2):
        quota_claim(
            customer=customer, order_key=f"late{i}", arrived_at=at(2025, 5, 20 + i), on=date(2025, 5, 20 + i)
        )
    # A package of 102 from the 25th leaves two places: the two oldest held orders get them.
    SubscriptionFactory(customer=customer, package=package("100"), start_date=date(2025, 5, 25))
    package_102 = package("100")
    package_102.monthly_order_limit = 102
    package_102.save()
    claim = quota_claim(customer=customer, order_key="new", arrived_at=at(2025, 5, 25), on=date(2025, 5, 25))
    assert not claim.granted and claim.released == ("late1", "late2")
    assert OrderUsage.objects.get(order_key="late3").status == "held"
    assert OrderUsage.objects.get(order_key="new").status == "held"
    # June: late3 first, then the newer one, then a new order in June.
    claim = quota_claim(customer=customer, order_key="june", arrived_at=at(2025, 6, 1), on=date(2025, 6, 1))
    assert claim.granted and claim.released == ("late3", "new")


def test_release_respects_the_limit_and_a_raised_package_lifts_it():
    customer = small_customer()
    fill(customer, 103)
    assert quota_status(customer=customer, month=MAY).held == 3
    SubscriptionFactory(customer=customer, package=package("200"), start_date=date(2025, 5, 15))
    assert quota_release(customer=customer, on=date(2025, 5, 15)) == ["o100", "o101", "o102"]
    status = quota_status(customer=customer, month=MAY)
    assert (status.used, status.limit, status.held, status.package_code) == (103, 200, 0, "200")
    assert status.percent == 51.5


def test_forced_release_needs_a_reason_and_records_who():
    customer = small_customer()
    fill(customer, 102)
    support = StaffFactory()
    with pytest.raises(ValidationError):
        quota_release_forced(customer=customer, order_keys=["o101"], by_user=support, reason=" ", on=MAY)
    assert quota_release_forced(
        customer=customer,
        order_keys=["o101", "o5"],
        by_user=support,
        reason="Black Friday, agreed by phone",
        on=MAY,
    ) == ["o101"]
    row = OrderUsage.objects.get(order_key="o101")
    assert row.status == "reserved" and row.forced_by == support and "Black Friday" in row.forced_reason
    assert quota_status(customer=customer, month=MAY).used == 101


def test_premium_has_no_limit():
    customer = small_customer("premium")
    claims = fill(customer, 5)
    assert all(c.granted and c.limit is None for c in claims)
    status = quota_status(customer=customer, month=MAY)
    assert status.percent is None and status.used == 5


def test_without_a_package_orders_are_held_not_dropped():
    customer = CustomerFactory()
    claim = quota_claim(customer=customer, order_key="x", arrived_at=at(2025, 5, 1), on=MAY)
    assert (claim.granted, claim.limit, claim.held) == (False, 0, 1)


def test_orders_of_all_shops_count_together():
    customer = small_customer()
    quota_claim(customer=customer, order_key="shopA-1", arrived_at=at(2025, 5, 1), on=MAY)
    claim = quota_claim(customer=customer, order_key="shopB-1", arrived_at=at(2025, 5, 1), on=MAY)
    assert claim.used == 2


def test_80_and_100_percent_mails_go_once_per_month(mailoutbox, settings, django_capture_on_commit_callbacks):
    settings.BILLING_SUPPORT_EMAILS = ["support@example.invalid"]
    customer = small_customer(name="Kvot AB")
    ContactFactory(customer=customer, email="kund@example.invalid")
    ContactFactory(customer=customer, email="tyst@example.invalid", receives_notifications=False)
    with django_capture_on_commit_callbacks(execute=True):
        fill(customer, 79)
    assert mailoutbox == []
    with django_capture_on_commit_callbacks(execute=True):
        fill(customer, 1, prefix="a")
    assert len(mailoutbox) == 1 and "80 %" in mailoutbox[0].subject
    assert mailoutbox[0].to == ["kund@example.invalid", "support@example.invalid"]
    with django_capture_on_commit_callbacks(execute=True):
        fill(customer, 25, prefix="b")  # reaches 100, then five are held
    assert len(mailoutbox) == 2
    assert "HELD" in mailoutbox[1].body and "1st of next month" in mailoutbox[1].body
    with django_capture_on_commit_callbacks(execute=True):
        quota_release_forced(
            customer=customer, order_keys=["b24"], by_user=StaffFactory(), reason="agreed", on=MAY
        )
    assert len(mailoutbox) == 2
    assert QuotaNotice.objects.filter(customer=customer).count() == 2


def test_the_unique_constraint_is_the_last_line_of_defence():
    customer = small_customer()
    quota_claim(customer=customer, order_key="dup", arrived_at=at(2025, 5, 1), on=MAY)
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderUsage.objects.create(
            customer=customer, order_key="dup", arrived_at=at(2025, 5, 1), status="held", held_month=MAY
        )


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_the_last_slot_get_one_each():
    import threading

    from django.db import connection

    customer = small_customer()
    fill(customer, 99)
    results, barrier = [], threading.Barrier(2)

    def worker(key):
        barrier.wait()
        try:
            results.append(
                quota_claim(customer=customer, order_key=key, arrived_at=at(2025, 5, 2), on=MAY).granted
            )
        finally:
            connection.close()

    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith("file:memorydb"):
        # In-memory test database: threads share one connection, so run them one after the other.
        for key in ("w1", "w2"):
            results.append(
                quota_claim(customer=customer, order_key=key, arrived_at=at(2025, 5, 2), on=MAY).granted
            )
    else:
        threads = [threading.Thread(target=worker, args=(k,)) for k in ("w1", "w2")]
        [t.start() for t in threads]
        [t.join() for t in threads]
    assert sorted(results) == [False, True]
    assert quota_status(customer=customer, month=MAY).used == 100
