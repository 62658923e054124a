"""The order status flow's rules as plain functions: which moves are allowed, whose change wins,
what the payment plugins' notes and meta say, which tracking a shop has, which mapping applies."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from integrations.models import OrderTransfer, PaymentCapture, StatusMapping, TrackingMethod
from integrations.orders.capture import (
    capture_blocked,
    capture_outcome,
    expiry_warning_due,
    plain,
    provider_of,
)
from integrations.orders.shop_status import DEFAULT_MAPPING, mapping_for, person_changed, status_move
from integrations.orders.tracking import tracking_method_from_index

State = PaymentCapture.State
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "current, target, refusal",
    [
        ("processing", "completed", ""),
        ("on-hold", "completed", ""),
        ("completed", "completed", "same"),
        ("completed", "processing", "backwards"),
        ("processing", "on-hold", "backwards"),
        ("processing", "skickad", ""),  # a shop's own status sits between processing and completed
        ("skickad", "completed", ""),
        ("completed", "skickad", "backwards"),
        ("skickad", "betald", ""),  # between two custom statuses the mapping decides
        ("cancelled", "completed", "ended"),
        ("refunded", "completed", "ended"),
        ("processing", "cancelled", ""),
    ],
)
def test_an_order_only_moves_forward(current, target, refusal):
    assert status_move(current=current, target=target) == refusal


def test_a_status_set_in_the_shop_after_the_portals_write_wins():
    transfer = OrderTransfer(shop_status_written="skickad", shop_modified_after_write=T0)
    assert not person_changed(transfer, {"status": "skickad", "date_modified_gmt": "2026-12-01T13:00:00"})
    assert person_changed(transfer, {"status": "on-hold", "date_modified_gmt": "2026-12-01T12:00:05"})
    # Within the second of the portal's write (WooCommerce keeps the change time to the second).
    assert person_changed(transfer, {"status": "on-hold", "date_modified_gmt": "2026-12-01T12:00:00"})
    # The payment plugin's on-hold inside the portal's write is what the shop answered: recorded as written.
    held = OrderTransfer(shop_status_written="on-hold", shop_modified_after_write=T0)
    assert not person_changed(held, {"status": "on-hold", "date_modified_gmt": "2026-12-01T12:00:00"})
    assert not person_changed(
        OrderTransfer(), {"status": "on-hold", "date_modified_gmt": "2026-12-01T12:00:05"}
    )


def _note(text: str, when: datetime = T0) -> dict:
    return {"note": text, "customer_note": False, "date_created_gmt": when.strftime("%Y-%m-%dT%H:%M:%S")}


KLARNA_PRICE = (
    '<span class="woocommerce-Price-amount amount"><bdi>1&nbsp;234,50&nbsp;<span '
    'class="woocommerce-Price-currencySymbol">kr</span></bdi></span>'
)


@pytest.mark.parametrize(
    "provider, meta, notes, state, words",
    [
        ("klarna", {"_wc_klarna_capture_id": "3f2a"}, [], State.CAPTURED, ""),
        (
            "klarna",
            {},
            [_note(f"Klarna order captured. Capture amount: {KLARNA_PRICE}. Capture ID: 3f2a")],
            State.PENDING,
            "",
        ),  # the note without the meta is not enough: the meta is the plugin's record
        (
            "klarna",
            {},
            [
                _note("Order status changed from Completed to On hold."),
                _note(
                    "Could not capture Klarna order. Captured amount is higher than the remaining authorized "
                    "amount."
                ),
            ],
            State.FAILED,
            "Could not capture Klarna order.",
        ),
        (
            "klarna",
            {},
            [_note("Klarna order is pending review and could not be captured at this time.")],
            State.PENDING,
            "pending review",
        ),
        ("klarna", {}, [_note("Klarna order has already been captured on 2026-11-30")], State.CAPTURED, ""),
        (
            "klarna",
            {},
            [_note("Klarna capture request was not sent because order management is disabled for capture.")],
            State.NOT_CAPTURED,
            "not sent",
        ),
        ("nexi", {"_dibs_charge_id": "a1b2"}, [], State.CAPTURED, ""),
        (
            "nexi",
            {},
            [_note("Nexi Error: Unable to activate the order! Amount exceeds reserved amount")],
            State.FAILED,
            "Nexi Error",
        ),
        (
            "nexi",
            {},
            [_note("No charge needed in Nexi system since Swish is a account to account payment.")],
            State.NOT_CAPTURED,
            "No charge needed",
        ),
        ("svea", {"_svea_co_deliver_date": "2026-12-01 13:00:00"}, [], State.CAPTURED, ""),
        ("svea", {}, [_note("Ordern är redan levererad i Svea. Ingen handling krävs.")], State.CAPTURED, ""),
        (
            "svea",
            {},
            [_note("Error received when trying to deliver order in Svea: timeout")],
            State.FAILED,
            "Svea",
        ),
        ("svea", {}, [], State.PENDING, ""),
    ],
)
def test_the_capture_is_read_from_the_plugins_meta_and_notes(provider, meta, notes, state, words):
    order = {"status": "completed", "meta_data": [{"key": k, "value": v} for k, v in meta.items()]}
    outcome = capture_outcome(provider=provider, order=order, notes=notes, since=T0)
    assert outcome.state == state
    assert words in outcome.words


def test_notes_from_before_the_portals_completion_are_about_an_earlier_attempt():
    old = _note("Could not capture Klarna order. API Error 503", when=T0 - timedelta(days=2))
    assert capture_outcome(provider="klarna", order={}, notes=[old], since=T0).state == State.PENDING


def test_prices_in_notes_are_read_as_text():
    assert plain(f"Amount: {KLARNA_PRICE}.") == "Amount: 1 234,50 kr."


@pytest.mark.parametrize(
    "method, provider",
    [
        ("klarna_payments", "klarna"),
        ("kco", "klarna"),
        ("dibs_easy", "nexi"),
        ("nets_easy_card", "nexi"),
        ("svea_checkout", "svea"),
        ("bacs", ""),
        ("", ""),
    ],
)
def test_payment_methods_the_portal_follows(method, provider):
    assert provider_of(method) == provider


def test_completing_is_refused_when_the_shop_would_capture_more_than_the_invoice():
    transfer = OrderTransfer(invoice_gross=Decimal("1234.50"), payment_method="klarna_payments")
    assert capture_blocked(transfer=transfer, order={"total": "1234.50"}) == ""
    assert "cannot capture a part" in capture_blocked(transfer=transfer, order={"total": "1283.50"})
    assert capture_blocked(transfer=OrderTransfer(payment_method="kco"), order={"total": "1"}) == ""


def test_authorisation_warnings_come_five_days_before_klarnas_28_and_nexis_30_days():
    klarna = OrderTransfer(payment_method="klarna_payments", paid_at=T0)
    assert expiry_warning_due(klarna, now=T0 + timedelta(days=22)) is None
    assert expiry_warning_due(klarna, now=T0 + timedelta(days=23)) == T0 + timedelta(days=28)
    nexi = OrderTransfer(payment_method="nets_easy_card", paid_at=T0)
    assert expiry_warning_due(nexi, now=T0 + timedelta(days=24)) is None
    assert expiry_warning_due(nexi, now=T0 + timedelta(days=25)) == T0 + timedelta(days=30)
    assert (
        expiry_warning_due(
            OrderTransfer(payment_method="svea_checkout", paid_at=T0), now=T0 + timedelta(days=90)
        )
        is None
    )  # Svea's window is not documented


@pytest.mark.parametrize(
    "index, method",
    [
        ({"namespaces": ["wc/v3", "wc-shipment-tracking/v3", "wc-ast/v3"]}, TrackingMethod.AST),
        ({"namespaces": ["wc/v3", "wc-shipment-tracking/v3"]}, TrackingMethod.SHIPMENT_TRACKING),
        (
            {"namespaces": ["wc/v3"], "routes": {"/wc/v3/orders/(?P<order_id>[\\d]+)/fulfillments": {}}},
            TrackingMethod.FULFILLMENTS,
        ),
        ({"namespaces": ["wc/v3"], "routes": {"/wc/v3/orders": {}}}, TrackingMethod.NOTE),
        ({}, TrackingMethod.NOTE),
    ],
)
def test_the_tracking_method_is_read_from_the_rest_index(index, method):
    assert tracking_method_from_index(index) == method


@pytest.mark.django_db
def test_a_shops_own_mapping_wins_over_the_customers_and_the_default_fills_the_rest():
    from integrations.models import Shop
    from tests.factories import CustomerFactory

    customer = CustomerFactory()
    shop = Shop.objects.create(
        customer=customer, name="Butik", url="https://butik.example/", consumer_key="ck", consumer_secret="cs"
    )
    StatusMapping.objects.create(
        customer=customer, hogia_status="Paid", action="set_status", woo_status="completed"
    )
    StatusMapping.objects.create(
        customer=customer, shop=shop, hogia_status="Paid", action="set_status", woo_status="betald"
    )
    assert mapping_for(customer_id=customer.pk, shop_id=shop.pk)["Paid"].woo_status == "betald"
    assert mapping_for(customer_id=customer.pk, shop_id=None)["Paid"].woo_status == "completed"
    rules = mapping_for(customer_id=customer.pk, shop_id=shop.pk)
    assert rules["Delivered"] == DEFAULT_MAPPING["Delivered"] and rules["Delivered"].woo_status == "completed"
    assert rules["Cancelled"].action == StatusMapping.Action.SUPPORT


@pytest.mark.django_db
def test_due_pushes_checks_and_feeds_are_woken_once_per_due_time(monkeypatch):
    from django.utils import timezone as dj_timezone

    from integrations.models import FlowSettings, HogiaConnection, Shop, StatusPush
    from integrations.orders.capture import captures_check_due
    from integrations.orders.invoice_status import invoice_feeds_wake_due
    from integrations.orders.shop_status import status_pushes_wake_due
    from tests.factories import CustomerFactory

    queued = []
    monkeypatch.setattr(
        "integrations.orders.shop_status.task_enqueue", lambda f, *a, **k: queued.append((f, a))
    )
    monkeypatch.setattr(
        "integrations.orders.invoice_status.task_enqueue", lambda f, *a, **k: queued.append((f, a))
    )
    monkeypatch.setattr("integrations.taskqueue.task_enqueue", lambda f, *a, **k: queued.append((f, a)))
    customer = CustomerFactory()
    FlowSettings.objects.create(customer=customer, flow=2, order_status_to_shop=True)
    HogiaConnection.objects.create(
        customer=customer,
        organization_id="00000000-0000-0000-0000-000000000001",
        client_id="c",
        client_secret="s",
    )
    shop = Shop.objects.create(
        customer=customer, name="Butik", url="https://butik.example/", consumer_key="ck", consumer_secret="cs"
    )
    transfer = OrderTransfer.objects.create(
        shop=shop,
        woo_order_id=7,
        sequence_id="00000000-0000-0000-0000-0000000000a7",
        quota_key="k7",
        hogia_invoice_id="inv-7",
        invoice_number="7",
    )
    now = dj_timezone.now()
    StatusPush.objects.create(
        transfer=transfer,
        hogia_status="Delivered",
        next_attempt_at=now - timedelta(seconds=1),
        woken_at=now - timedelta(seconds=40),
    )
    StatusPush.objects.create(
        transfer=transfer,
        hogia_status="Paid",
        next_attempt_at=now - timedelta(seconds=1),
        woken_at=now - timedelta(seconds=40),
    )
    PaymentCapture.objects.create(
        transfer=transfer,
        provider="klarna",
        payment_method="klarna_payments",
        next_check_at=now - timedelta(seconds=1),
    )
    assert status_pushes_wake_due(now=now) == [transfer.pk]  # one wake-up per order, not per push
    assert status_pushes_wake_due(now=now) == []  # another stager at the same moment: nothing
    assert captures_check_due(now=now) == [transfer.pk]
    assert captures_check_due(now=now) == []
    assert invoice_feeds_wake_due(now=now) == [customer.pk]
    assert invoice_feeds_wake_due(now=now + timedelta(seconds=10)) == []
    assert invoice_feeds_wake_due(now=now + timedelta(seconds=31)) == [customer.pk]
    assert [f for f, _a in queued] == [
        "integrations.tasks.push_order_statuses",
        "integrations.tasks.check_payment_capture",
        "integrations.tasks.read_invoice_statuses",
        "integrations.tasks.read_invoice_statuses",
    ]


@pytest.mark.parametrize(
    "previous, status, passed",
    [
        ("", "Draft", ["Draft"]),
        ("Draft", "Delivered", ["Delivered"]),
        ("Draft", "Paid", ["Delivered", "Invoiced", "Paid"]),  # delivered and paid between two reads
        ("", "Paid", ["Delivered", "Invoiced", "Paid"]),
        ("Delivered", "Paid", ["Invoiced", "Paid"]),
        ("Paid", "Paid", ["Paid"]),  # the tracking changed: the same status again
        ("Paid", "Delivered", ["Delivered"]),  # back in Hogia Smart (a person's correction): as it is
        ("Delivered", "Cancelled", ["Cancelled"]),
    ],
)
def test_statuses_skipped_between_two_reads_of_the_feed_still_happen(previous, status, passed):
    from integrations.orders.invoice_status import statuses_passed

    assert statuses_passed(previous, status) == passed


@pytest.mark.django_db
def test_an_order_not_completed_before_its_klarna_authorisation_ends_is_warned_about_once():
    from django.utils import timezone as dj_timezone

    from integrations.models import OrderEvent, Shop
    from integrations.orders.capture import payment_expiry_warnings
    from tests.factories import CustomerFactory

    customer = CustomerFactory()
    shop = Shop.objects.create(
        customer=customer, name="Butik", url="https://butik.example/", consumer_key="ck", consumer_secret="cs"
    )
    now = dj_timezone.now()

    def order(number: int, *, method: str, days: int, status: str = "processing") -> OrderTransfer:
        return OrderTransfer.objects.create(
            shop=shop,
            woo_order_id=number,
            sequence_id=f"00000000-0000-0000-0000-{number:012d}",
            quota_key=f"k{number}",
            payment_method=method,
            paid_at=now - timedelta(days=days),
            woo_status=status,
        )

    due = order(1, method="klarna_payments", days=24)
    order(2, method="klarna_payments", days=20)  # 8 days left
    order(3, method="klarna_payments", days=26, status="completed")  # completed: the plugin captured or tried
    order(4, method="nets_easy_card", days=24)  # Nexi's 30 days: 6 left
    order(5, method="svea_checkout", days=60)  # Svea's window is not documented
    order(6, method="bacs", days=60)
    assert payment_expiry_warnings(customer_id=customer.pk, now=now) == 1
    assert payment_expiry_warnings(customer_id=customer.pk, now=now) == 0  # once
    (warning,) = OrderEvent.objects.filter(kind=OrderEvent.Kind.WARNING)
    assert warning.transfer_id == due.pk and "Klarna" in warning.message
    assert (now + timedelta(days=4)).strftime("%Y-%m-%d") in warning.message
