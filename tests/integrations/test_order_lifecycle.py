"""One owner of each order's state: the transitions, the quota moving with them, and the
defects of issue 8 that a state written from many places let through.

Each test names the defect it guards (D1 … D14); all run through the real sandboxes.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.db import DatabaseError, connection
from django.utils import timezone

from billing.models import MonthlyOrderVolume, OrderUsage
from billing.services import quota_claim
from integrations.clients import HogiaSmartClient, RetryPolicy
from integrations.models import (
    FlowSettings,
    LinesWithoutSku,
    OrderEvent,
    OrderTransfer,
    RefundCredit,
    Shop,
    SyncLogEntry,
)
from integrations.orders import lifecycle
from integrations.orders.attempt import order_transfer
from integrations.orders.identity import invoice_reference, store_key
from integrations.orders.poll import orders_poll
from integrations.orders.quota import held_release_all, quota_reconcile
from integrations.orders.seen import order_seen
from integrations.orders.support import refunds_mark_booked_by_hand, transfers_retry
from integrations.orders.wakeups import transfers_sweep, transfers_wake_due
from integrations.sandboxes import demo
from tests.factories import SubscriptionFactory, package
from tests.integrations.helpers import connected_customer, front, retry_due_now, sandbox_fault
from tests.integrations.test_order_transfer import hogia

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres,
    pytest.mark.usefixtures("hogia_without_rate_limit"),
]

State = OrderTransfer.State
Kind = OrderEvent.Kind
REPO = Path(__file__).resolve().parents[2]


def _impatient(hogia_sandbox) -> HogiaSmartClient:
    """No retries inside one call: the flow's own retry is what is tested."""
    return HogiaSmartClient(
        api_base=hogia_sandbox.url,
        organization_id=demo.HOGIA_ORGANIZATION_ID,
        client_id=demo.HOGIA_CLIENT_ID,
        client_secret=demo.HOGIA_CLIENT_SECRET,
        retry=RetryPolicy(max_attempts=1),
    )


def _queued_order(woo_sandbox, hogia_sandbox, fixture="A1_guest_mixed_vat_processing", **kwargs):
    customer, (shop, second) = connected_customer(woo_sandbox, hogia_sandbox, **kwargs)
    order = front(shop).place(fixture)
    orders_poll(shop=shop)
    return customer, shop, order, OrderTransfer.objects.get(shop=shop, woo_order_id=order["id"])


def _usage(transfer) -> str | None:
    row = OrderUsage.objects.filter(order_key=transfer.quota_key).first()
    return row.status if row else None


# -- the design: one table, one writer ---------------------------------------------------------


def test_nothing_but_the_lifecycle_assigns_a_transfers_state():
    """The product code is grepped: every write of ``state`` on an order transfer is in lifecycle.py."""
    writes = re.compile(
        r"(\btransfer\w*\.state\s*=(?!=)|\.update\([^)]*\bstate=|setattr\([^)]*[\"']state"
        r"|OrderTransfer\.objects\.(get_or_)?create\([^)]*\bstate=)"
    )
    offenders = []
    for app in ("integrations", "portal", "billing"):
        for path in (REPO / app).rglob("*.py"):
            # initial_sync.py owns its own jobs' states, not an order's; shop_status.py and capture.py
            # their status pushes' and payment captures' (an invoiced order stays invoiced).
            if (
                "migrations" in path.parts
                or "sandboxes" in path.parts
                or path.name in ("lifecycle.py", "initial_sync.py", "shop_status.py", "capture.py")
            ):
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if writes.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []


def test_every_transition_leaves_only_its_sources_and_readme_draws_the_table():
    table = lifecycle.TRANSITIONS
    assert {rule.target for rule in table.values()} | {s for r in table.values() for s in r.sources} == set(
        State.values
    )
    readme = (REPO / "README.md").read_text()
    for line in lifecycle.mermaid().splitlines()[1:]:
        assert line.strip() in readme, line


def test_a_transition_from_a_state_it_does_not_leave_does_not_happen(woo_sandbox, hogia_sandbox):
    _customer, _shop, _order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    assert not lifecycle.transition(transfer.pk, "release")  # not held
    assert not lifecycle.transition(transfer.pk, "invoiced", token=uuid.uuid4())  # not claimed
    transfer.refresh_from_db()
    assert transfer.state == State.QUEUED


# -- D1: held orders are never stranded --------------------------------------------------------


def _held_order(woo_sandbox, hogia_sandbox, *, on=date(2026, 11, 27)):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox, package_code="100")
    for number in range(100):
        quota_claim(
            customer=customer,
            order_key=f"earlier-{number}",
            arrived_at=timezone.make_aware(datetime(2026, 11, 2)),
            on=on,
        )
    order = front(shop).place("A1_guest_mixed_vat_processing")
    orders_poll(shop=shop)
    transfer = OrderTransfer.objects.get(shop=shop)
    order_transfer(transfer_id=transfer.pk, today=on)
    transfer.refresh_from_db()
    assert transfer.state == State.HELD and _usage(transfer) == "held"
    return customer, shop, order, transfer


def test_d1_a_crash_between_the_quota_release_and_the_requeue_leaves_both_as_they_were(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    _customer, _shop, _order, transfer = _held_order(woo_sandbox, hogia_sandbox)
    real = lifecycle.transition

    def killed(transfer_id, name, **kwargs):
        if name == "release":
            raise SystemExit("worker killed between release and requeue")
        return real(transfer_id, name, **kwargs)

    monkeypatch.setattr(lifecycle, "transition", killed)
    with pytest.raises(SystemExit):
        held_release_all(on=date(2026, 12, 1))
    monkeypatch.setattr(lifecycle, "transition", real)
    transfer.refresh_from_db()
    # One transaction: billing did not release it either, so the next release finds it.
    assert transfer.state == State.HELD and _usage(transfer) == "held"
    assert held_release_all(on=date(2026, 12, 1)) == 1
    transfer.refresh_from_db()
    assert transfer.state == State.QUEUED and _usage(transfer) == "reserved"


def test_d1_the_sweeper_repairs_a_held_order_that_billing_already_released(woo_sandbox, hogia_sandbox):
    """What the old code left behind after such a kill: counted in billing, held here for ever."""
    customer, _shop, order, transfer = _held_order(woo_sandbox, hogia_sandbox)
    OrderUsage.objects.filter(order_key=transfer.quota_key).update(status="reserved", month=date(2026, 12, 1))
    OrderTransfer.objects.filter(pk=transfer.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert quota_reconcile(customer=customer) == 1
    transfer.refresh_from_db()
    assert transfer.state == State.QUEUED
    assert transfer.events.filter(kind=Kind.REPAIRED).exists()
    assert SyncLogEntry.objects.filter(message__contains="queued, so that its next attempt").exists()
    order_transfer(transfer_id=transfer.pk, today=date(2026, 12, 1))
    transfer.refresh_from_db()
    assert transfer.state == State.INVOICED and _usage(transfer) == "counted"
    assert quota_reconcile(customer=customer) == 0  # in step now: nothing more to repair


# -- D2: a retry runs when the timeline says (stager), and support sees the second ---------------


def test_d2_the_stager_wakes_a_retry_when_it_is_due_once_and_not_before(woo_sandbox, hogia_sandbox):
    _customer, _shop, _order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    sandbox_fault(hogia_sandbox, mode="status", status=503, count=1)
    result = order_transfer(transfer_id=transfer.pk, hogia=_impatient(hogia_sandbox))
    assert result.state == State.QUEUED
    event = result.events.get(kind=Kind.ATTEMPT_FAILED)
    announced = datetime.fromisoformat(event.details["next_attempt_at"])
    assert announced == result.next_attempt_at
    local = timezone.localtime(announced).strftime("%H:%M:%S")
    assert f"next attempt at {local}" in event.message
    assert transfers_wake_due(now=announced - timedelta(seconds=1)) == []
    assert transfers_wake_due(now=announced) == [transfer.pk]
    assert transfers_wake_due(now=announced + timedelta(seconds=5)) == []  # once per due time
    assert transfers_sweep(now=announced + timedelta(seconds=30)) == []  # nor again by the sweeper


def test_d2_the_admin_shows_the_next_attempt_to_the_second(admin_client, woo_sandbox, hogia_sandbox):
    _customer, _shop, _order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    due = timezone.now() + timedelta(seconds=19)
    OrderTransfer.objects.filter(pk=transfer.pk).update(next_attempt_at=due)
    page = admin_client.get("/admin/integrations/ordertransfer/").content.decode()
    assert timezone.localtime(due).strftime("%H:%M:%S") in page


# -- D3: a stale worker can never overwrite the new owner --------------------------------------


def test_d3_a_worker_whose_claim_was_taken_over_cannot_write_its_result(woo_sandbox, hogia_sandbox):
    _customer, _shop, _order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    first = lifecycle.claim(transfer.pk)
    assert lifecycle.claim(transfer.pk) is None  # a second worker never starts while it holds it
    OrderTransfer.objects.filter(pk=transfer.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    second = lifecycle.claim(transfer.pk)
    assert second is not None and second.taken_over and second.token != first.token
    # The first worker wakes up and reports "retry later": it does not happen.
    assert not lifecycle.transition(
        transfer.pk, "retry_later", token=first.token, next_attempt_at=timezone.now()
    )
    with pytest.raises(lifecycle.ClaimLost):
        lifecycle.claim_record(first, hogia_invoice_id="stale")
    assert lifecycle.transition(transfer.pk, "needs_attention", token=second.token)
    transfer.refresh_from_db()
    assert transfer.state == State.NEEDS_ATTENTION and transfer.hogia_invoice_id == ""


def test_d3_support_retrying_an_order_a_worker_holds_changes_nothing(woo_sandbox, hogia_sandbox):
    _customer, _shop, _order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    claimed = lifecycle.claim(transfer.pk)
    assert transfers_retry(transfers=OrderTransfer.objects.filter(pk=transfer.pk), by="support") == 0
    transfer.refresh_from_db()
    assert transfer.state == State.TRANSFERRING and transfer.claim_token == claimed.token


def test_d3_an_attempt_that_lost_its_claim_mid_way_creates_no_invoice(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    from integrations.orders import quota as quota_module

    _customer, _shop, order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    real_renew = lifecycle.claim_renew

    def taken_over_meanwhile(claimed, **kwargs):
        OrderTransfer.objects.filter(pk=claimed.transfer.pk).update(claim_token=uuid.uuid4())
        return real_renew(claimed, **kwargs)

    monkeypatch.setattr(quota_module.lifecycle, "claim_renew", taken_over_meanwhile)
    order_transfer(transfer_id=transfer.pk)
    assert hogia(hogia_sandbox).invoices_find(customer_order_number=order["number"]) == []
    assert _usage(transfer) is None  # the quota claim rolled back with it


# -- D4: the switch "transfer orders as invoices" ----------------------------------------------


def test_d4_with_transfer_switched_off_orders_are_recorded_but_never_invoiced(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    order = front(shop).place("A3_company_sale_fixedcart_fees_completed")
    orders_poll(shop=shop)  # queued while the switch was on
    FlowSettings.objects.filter(customer=customer).update(transfer_orders=False)
    late = front(shop).place("A1_guest_mixed_vat_processing")
    orders_poll(shop=shop)
    queued = OrderTransfer.objects.get(woo_order_id=order["id"])
    order_transfer(transfer_id=queued.pk)
    queued.refresh_from_db()
    unqueued = OrderTransfer.objects.get(woo_order_id=late["id"])
    assert queued.state == unqueued.state == State.FILTERED
    assert "switched off" in queued.events.last().message
    assert "switched off" in unqueued.events.last().message
    assert hogia(hogia_sandbox).invoices_find(customer_order_number=order["number"]) == []


# -- D5: quota only for orders that get an invoice ---------------------------------------------


def test_d5_a_blocked_order_takes_no_quota(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    FlowSettings.objects.filter(customer=customer).update(lines_without_sku=LinesWithoutSku.BLOCK)
    order = front(shop).place("A4_guest_nosku_nostock_pending")
    front(shop).call("PUT", f"orders/{order['id']}", {"status": "processing"})
    orders_poll(shop=shop)
    transfer = OrderTransfer.objects.get()
    order_transfer(transfer_id=transfer.pk)
    transfer.refresh_from_db()
    assert transfer.state == State.NEEDS_ATTENTION
    assert OrderUsage.objects.count() == 0


def test_d5_an_order_hogia_could_not_take_keeps_its_place_but_is_not_counted(woo_sandbox, hogia_sandbox):
    customer, _shop, _order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    hogia(hogia_sandbox).contacts_find(email="x@example.se")  # a token first: the fault hits the create
    sandbox_fault(hogia_sandbox, mode="status", status=503, count=3)
    result = order_transfer(transfer_id=transfer.pk, hogia=_impatient(hogia_sandbox))
    assert result.state == State.QUEUED
    assert _usage(transfer) in (None, "reserved")
    assert sum(MonthlyOrderVolume.objects.filter(customer=customer).values_list("counted", flat=True)) == 0
    retry_due_now(transfer)
    assert order_transfer(transfer_id=transfer.pk).state == State.INVOICED
    assert _usage(transfer) == "counted"


def test_d5_a_held_order_cancelled_in_the_shop_is_never_counted(woo_sandbox, hogia_sandbox):
    customer, shop, order, transfer = _held_order(woo_sandbox, hogia_sandbox)
    cancelled = front(shop).call("PUT", f"orders/{order['id']}", {"status": "cancelled"})
    order_seen(shop=shop, order=cancelled, via="webhook")
    transfer.refresh_from_db()
    assert transfer.state == State.FILTERED and _usage(transfer) is None
    assert held_release_all(on=date(2026, 12, 1)) == 0
    assert not OrderUsage.objects.filter(customer=customer, month=date(2026, 12, 1)).exists()


# -- D6: held orders first, oldest first, as soon as the quota allows ---------------------------


def test_d6_after_the_1st_a_new_order_waits_behind_the_held_ones(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox, package_code="100")
    november = date(2026, 11, 27)
    for number in range(100):
        quota_claim(
            customer=customer,
            order_key=f"earlier-{number}",
            arrived_at=timezone.make_aware(datetime(2026, 11, 2)),
            on=november,
        )
    placed = [
        front(shop).place(f)
        for f in ("A1_guest_mixed_vat_processing", "A3_company_sale_fixedcart_fees_completed")
    ]
    orders_poll(shop=shop)
    held = [OrderTransfer.objects.get(woo_order_id=o["id"]) for o in placed]
    for transfer in held:
        order_transfer(transfer_id=transfer.pk, today=november)
    assert set(OrderTransfer.objects.values_list("state", flat=True)) == {State.HELD}
    # December: a new order's attempt runs before any release tick.
    new = front(shop).place("A2_customer_variations_coupon_fee_onhold")
    orders_poll(shop=shop)
    newest = OrderTransfer.objects.get(woo_order_id=new["id"])
    order_transfer(transfer_id=newest.pk, today=date(2026, 12, 1))
    states = {t.pk: t.state for t in OrderTransfer.objects.all()}
    assert [states[t.pk] for t in held] == [State.QUEUED, State.QUEUED]  # released first
    assert states[newest.pk] == State.INVOICED
    first, second = (OrderTransfer.objects.get(pk=t.pk) for t in held)
    assert first.next_attempt_at < second.next_attempt_at  # oldest first


def test_d6_a_package_raise_releases_held_orders_at_once(
    woo_sandbox, hogia_sandbox, django_capture_on_commit_callbacks
):
    customer, _shop, _order, transfer = _held_order(woo_sandbox, hogia_sandbox, on=timezone.localdate())
    with django_capture_on_commit_callbacks(execute=True):
        SubscriptionFactory(customer=customer, package=package("200"), start_date=timezone.localdate())
    transfer.refresh_from_db()
    assert transfer.state == State.QUEUED
    assert transfer.events.last().kind == Kind.RELEASED


# -- D7: cancelled or refunded in full after the invoice ---------------------------------------


def test_d7_an_order_cancelled_after_its_invoice_is_flagged_with_what_to_do(woo_sandbox, hogia_sandbox):
    _customer, shop, order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    order_transfer(transfer_id=transfer.pk)
    cancelled = front(shop).call("PUT", f"orders/{order['id']}", {"status": "cancelled"})
    assert order_seen(shop=shop, order=cancelled, via="webhook").queued
    transfer = order_transfer(transfer_id=transfer.pk)
    assert transfer.state == State.NEEDS_ATTENTION
    assert "cancelled" in transfer.last_error.lower() and transfer.invoice_number in transfer.last_error
    assert "credit" in transfer.attention.lower()
    assert transfer.events.filter(kind=Kind.CANCELLED).exists()
    # Support credits it in Hogia Smart by hand and says so.
    assert refunds_mark_booked_by_hand(transfer=transfer, by="support") == 1
    transfer.refresh_from_db()
    assert transfer.state == State.CREDITED


def test_d7_where_chosen_a_cancelled_invoiced_order_gets_a_credit_invoice_for_the_whole_invoice(
    woo_sandbox, hogia_sandbox
):
    customer, shop, order, transfer = _queued_order(
        woo_sandbox, hogia_sandbox, fixture="A3_company_sale_fixedcart_fees_completed"
    )
    FlowSettings.objects.filter(customer=customer).update(credit_cancelled_orders=True)
    order_transfer(transfer_id=transfer.pk)
    cancelled = front(shop).call("PUT", f"orders/{order['id']}", {"status": "cancelled"})
    order_seen(shop=shop, order=cancelled, via="webhook")
    transfer = order_transfer(transfer_id=transfer.pk)
    assert transfer.state == State.CREDITED
    credit = RefundCredit.objects.get(transfer=transfer)
    client = hogia(hogia_sandbox)
    invoice, credit_invoice = (
        client.invoice_get(transfer.hogia_invoice_id),
        client.invoice_get(credit.hogia_invoice_id),
    )
    assert credit_invoice["grossAmount"] == -invoice["grossAmount"] == -Decimal(order["total"])
    assert credit_invoice["creditedInvoiceId"] == transfer.hogia_invoice_id
    assert credit_invoice["yourReference"].startswith(shop.name)
    order_seen(shop=shop, order=cancelled, via="poll")  # seen again: nothing more
    transfer.refresh_from_db()
    assert transfer.state == State.CREDITED and RefundCredit.objects.filter(transfer=transfer).count() == 1


def test_d7_refunded_in_full_by_status_alone_is_credited_where_chosen(woo_sandbox, hogia_sandbox):
    """WooCommerce's "Refunded" status makes a refund by amount only (wc_order_fully_refunded)."""
    customer, shop, order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    FlowSettings.objects.filter(customer=customer).update(credit_cancelled_orders=True)
    order_transfer(transfer_id=transfer.pk)
    front(shop).call("POST", f"orders/{order['id']}/refunds", {"amount": order["total"], "api_refund": False})
    refunded = front(shop).call("PUT", f"orders/{order['id']}", {"status": "refunded"})
    order_seen(shop=shop, order=refunded, via="webhook")
    transfer = order_transfer(transfer_id=transfer.pk)
    assert transfer.state == State.CREDITED
    credit = RefundCredit.objects.get(transfer=transfer, woo_refund_id=0)
    assert hogia(hogia_sandbox).invoice_get(credit.hogia_invoice_id)["grossAmount"] == -Decimal(
        order["total"]
    )


# -- D8: one store is one shop ------------------------------------------------------------------


def test_d8_a_store_already_connected_is_refused_with_the_name_of_its_shop(woo_sandbox, hogia_sandbox):
    from django.core.exceptions import ValidationError

    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    other, _shops = connected_customer(
        woo_sandbox, hogia_sandbox, name="Annan AB", stores=[("/annan", "Annan butik", "ck_x", "cs_x", "")]
    )
    again = Shop(customer=other, name="Samma butik", url=shop.url.replace("http://", "https://").upper())
    with pytest.raises(ValidationError) as refused:
        again.clean()
    assert shop.name in str(refused.value) and str(shop.customer) in str(refused.value)
    assert store_key("https://Butik.example.se/shop/") == store_key("http://butik.example.se/shop")


def test_d8_a_shop_removed_and_added_again_does_not_invoice_or_count_its_orders_twice(
    woo_sandbox, hogia_sandbox
):
    customer, shop, order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    order_transfer(transfer_id=transfer.pk)
    invoice_id, key = OrderTransfer.objects.get(pk=transfer.pk).hogia_invoice_id, transfer.quota_key
    fields = {
        f: getattr(shop, f)
        for f in ("name", "url", "consumer_key", "consumer_secret", "result_unit", "trigger_statuses")
    }
    shop.delete()
    again = Shop.objects.create(customer=customer, **fields)
    changed = front(again).call("PUT", f"orders/{order['id']}", {"customer_note": "Ring före leverans"})
    order_seen(shop=again, order=changed, via="webhook")
    renewed = OrderTransfer.objects.get(shop=again)
    assert renewed.sequence_id == transfer.sequence_id and renewed.quota_key == key
    renewed = order_transfer(transfer_id=renewed.pk)
    assert renewed.state == State.INVOICED and renewed.hogia_invoice_id == invoice_id
    assert len(hogia(hogia_sandbox).invoices_find(customer_order_number=order["number"])) == 1
    assert OrderUsage.objects.filter(customer=customer).count() == 1


# -- D9: an earlier attempt's invoice is found by a reference unique to the order -----------------


def test_d9_a_retry_never_takes_over_an_older_invoice_with_the_same_order_number(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    shop.name = "Butik med ett mycket långt namn som inte får plats i referensen"
    shop.save()
    order = front(shop).place("A1_guest_mixed_vat_processing")
    orders_poll(shop=shop)
    transfer = OrderTransfer.objects.get()
    # An invoice of an older order with the same number, as the old code referenced it.
    client = hogia(hogia_sandbox)
    contact = client.contact_create({"givenName": "Äldre", "email": "aldre@example.se"}, uuid.uuid4())
    old_reference = f"{shop.name} order {order['number']}"[:50]
    client.invoice_create(
        {
            "customerNumber": contact["number"],
            "invoiceDate": "2025-01-10",
            "dueDate": "2025-02-10",
            "currency": {"code": "SEK"},
            "pricesIncludeVat": False,
            "yourReference": old_reference,
            "customerOrderNumber": order["number"],
            "useRounding": False,
        },
        [
            {
                "articleNumber": "SE-MUGG-35",
                "description": "Mugg",
                "quantity": 1,
                "unitPrice": Decimal("100.00"),
                "vatPercent": 25,
                "discountPercent": 0,
                "unitType": "st",
            }
        ],
        uuid.uuid4(),
    )
    OrderTransfer.objects.filter(pk=transfer.pk).update(attempts=3)  # as after a crash
    result = order_transfer(transfer_id=transfer.pk)
    invoices = client.invoices_find(customer_order_number=order["number"])
    assert result.state == State.INVOICED and len(invoices) == 2
    ours = client.invoice_get(result.hogia_invoice_id)
    assert ours["grossAmount"] == Decimal(order["total"])
    assert ours["yourReference"] == invoice_reference(
        shop_name=shop.name, order_number=order["number"], woo_order_id=order["id"]
    )


def test_d9_the_reference_keeps_what_makes_it_unique_and_shortens_the_name():
    reference = invoice_reference(
        shop_name="Ett mycket långt butiksnamn " * 3, order_number="A-1001", woo_order_id=5521
    )
    assert len(reference) <= 50 and reference.endswith("order A-1001 (id 5521)")
    assert invoice_reference(shop_name="Butik", order_number="41", woo_order_id=41) == "Butik order 41"


# -- D10: lines without a SKU -------------------------------------------------------------------


def test_d10_a_product_without_sku_becomes_a_text_line_with_a_warning(woo_sandbox, hogia_sandbox):
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    order = front(shop).place("A4_guest_nosku_nostock_pending")
    front(shop).call("PUT", f"orders/{order['id']}", {"status": "processing"})
    orders_poll(shop=shop)
    transfer = order_transfer(transfer_id=OrderTransfer.objects.get().pk)
    assert transfer.state == State.INVOICED
    invoice = hogia(hogia_sandbox).invoice_get(transfer.hogia_invoice_id)
    assert invoice["grossAmount"] == Decimal(order["total"])
    bag = next(line for line in invoice["invoiceLines"] if line["description"] == "Tygkasse")
    assert not bag.get("articleNumber")
    assert "Tygkasse has no SKU" in transfer.events.get(kind=Kind.WARNING).message


# -- D11: the poll's watermark moves page by page; each task its own time limit ------------------


def test_d11_a_poll_stopped_on_page_three_goes_on_from_page_two_next_time(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    from integrations.clients import WooCommerceClient
    from integrations.errors import RemoteUnavailable

    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    for _ in range(5):
        front(shop).place("A1_guest_mixed_vat_processing")
    real = WooCommerceClient.orders_iter

    def page_three_fails(self, **kwargs):
        for index, order in enumerate(real(self, **kwargs)):
            if index == 4:
                raise RemoteUnavailable("page 3: connection reset", system="WooCommerce")
            yield order

    monkeypatch.setattr(WooCommerceClient, "orders_iter", page_three_fails)
    before = shop.orders_synced_until
    with pytest.raises(RemoteUnavailable):
        orders_poll(shop=shop, per_page=2)
    shop.refresh_from_db()
    assert OrderTransfer.objects.count() == 4
    assert shop.orders_synced_until is not None and shop.orders_synced_until != before
    fourth = OrderTransfer.objects.order_by("woo_modified_gmt")[3]
    assert shop.orders_synced_until == fourth.woo_modified_gmt


def test_d11_each_kind_of_task_is_queued_with_its_own_time_limit(
    settings, woo_sandbox, hogia_sandbox, django_capture_on_commit_callbacks
):
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    settings.ORDER_TRANSFER_TIME_LIMIT = 77
    settings.ORDER_POLL_TIME_LIMIT = 240
    from integrations.tasks import poll_all_shops

    with django_capture_on_commit_callbacks(execute=True):
        _queued_order(woo_sandbox, hogia_sandbox)
        poll_all_shops()
    limits = {}
    for row in OrmQ.objects.all():
        task = SignedPackage.loads(row.payload)
        limits.setdefault(task["func"], set()).add(task["timeout"])
    assert limits["integrations.tasks.transfer_order"] == {77}
    assert limits["integrations.tasks.poll_shop"] == {240}


# -- D12: no remote call inside a transaction ---------------------------------------------------


def test_d12_marking_refunds_booked_by_hand_reads_the_shop_outside_any_transaction(
    woo_sandbox, hogia_sandbox
):
    _customer, shop, order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    order_transfer(transfer_id=transfer.pk)
    transfer.refresh_from_db()
    depth = len(connection.atomic_blocks)
    seen_depths = []

    class Shop:
        def order_refunds(self, order_id):
            seen_depths.append(len(connection.atomic_blocks))
            return [{"id": 901, "amount": "10.00"}]

    assert refunds_mark_booked_by_hand(transfer=transfer, by="support", woo=Shop()) == 1
    assert seen_depths == [depth]


# -- D13: after a downtime the shops are polled at once -----------------------------------------


def test_d13_starting_the_workers_polls_every_shop_at_once(
    woo_sandbox, hogia_sandbox, django_capture_on_commit_callbacks
):
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from portal.management.commands.runworkers import Command

    connected_customer(woo_sandbox, hogia_sandbox)
    with django_capture_on_commit_callbacks(execute=True):
        Command._catch_up()
    polled = [SignedPackage.loads(row.payload) for row in OrmQ.objects.all()]
    assert sorted(t["args"][0] for t in polled if t["func"] == "integrations.tasks.poll_shop") == sorted(
        Shop.objects.values_list("pk", flat=True)
    )


def test_d13_a_disabled_webhook_is_re_enabled_and_the_shop_polled_in_the_same_task(
    woo_sandbox, hogia_sandbox, settings
):
    from integrations.intake import shop_webhooks_register
    from integrations.tasks import poll_shop

    settings.PORTAL_PUBLIC_URL = "http://127.0.0.1:9"  # nothing listens: deliveries fail
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    shop_webhooks_register(shop=shop)
    order = front(shop).place("A1_guest_mixed_vat_processing")
    for index in range(7):
        front(shop).call("PUT", f"orders/{order['id']}", {"customer_note": f"change {index}"})
        front(shop).flush_webhooks()
    assert poll_shop(shop.pk) == 1
    assert OrderTransfer.objects.get().state == State.QUEUED
    statuses = {h["topic"]: h["status"] for h in front(shop).call("GET", "webhooks")}
    assert statuses["order.updated"] == "active"


# -- D14: a credit invoice names its shop -------------------------------------------------------


def test_d14_a_credit_invoices_reference_names_the_shop(woo_sandbox, hogia_sandbox):
    _customer, shop, order, transfer = _queued_order(
        woo_sandbox, hogia_sandbox, fixture="A5_rounding_partial_refund"
    )
    order_transfer(transfer_id=transfer.pk)
    mug = next(line for line in order["line_items"] if line["sku"] == "SE-MUGG-35")
    refund = front(shop).call(
        "POST",
        f"orders/{order['id']}/refunds",
        {
            "api_refund": False,
            "line_items": [
                {
                    "id": mug["id"],
                    "quantity": 1,
                    "refund_total": mug["total"],
                    "refund_tax": [{"id": t["id"], "refund_total": t["total"]} for t in mug["taxes"]],
                }
            ],
        },
    )
    order_seen(shop=shop, order=front(shop).call("GET", f"orders/{order['id']}"), via="webhook")
    transfer = order_transfer(transfer_id=transfer.pk)
    credit = RefundCredit.objects.get(transfer=transfer)
    reference = hogia(hogia_sandbox).invoice_get(credit.hogia_invoice_id)["yourReference"]
    assert reference == f"{shop.name} refund {refund['id']} of order {order['number']}"


# -- every failure ends somewhere visible -------------------------------------------------------


@pytest.mark.parametrize(
    "failure, state",
    [
        (KeyError("line_items"), State.NEEDS_ATTENTION),
        (DatabaseError("server closed the connection unexpectedly"), State.QUEUED),
        (requests.exceptions.SSLError("certificate verify failed"), State.NEEDS_ATTENTION),
    ],
)
def test_any_exception_in_an_attempt_ends_visible_never_left_transferring(
    woo_sandbox, hogia_sandbox, monkeypatch, failure, state
):
    from integrations.orders import attempt

    _customer, _shop, _order, transfer = _queued_order(woo_sandbox, hogia_sandbox)

    def broken(*args, **kwargs):
        raise failure

    if isinstance(failure, requests.exceptions.SSLError):
        monkeypatch.setattr(requests.Session, "send", broken)
    else:
        monkeypatch.setattr(attempt, "invoice_mapped", broken)
    result = order_transfer(transfer_id=transfer.pk)
    assert result.state == state and result.claim_token is None
    assert str(failure) in result.last_error
    assert result.events.last().kind in (Kind.NEEDS_ATTENTION, Kind.ATTEMPT_FAILED)


def test_a_refund_the_portal_cannot_store_waits_for_support_with_the_reason(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    from integrations.clients import WooCommerceClient

    _customer, shop, order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    order_transfer(transfer_id=transfer.pk)
    front(shop).call("POST", f"orders/{order['id']}/refunds", {"amount": "10.00", "api_refund": False})
    order_seen(shop=shop, order=front(shop).call("GET", f"orders/{order['id']}"), via="webhook")
    monkeypatch.setattr(
        WooCommerceClient,
        "order_refunds",
        lambda self, order_id: [{"id": 77, "amount": "1000000000000.00", "line_items": []}],
    )
    result = order_transfer(transfer_id=transfer.pk)
    assert result.state == State.NEEDS_ATTENTION
    assert "999 999 999 999.99" in result.last_error and not RefundCredit.objects.exists()


def test_the_reconciliation_gives_back_the_place_of_an_order_that_ended_without_an_invoice(
    woo_sandbox, hogia_sandbox
):
    from integrations.tasks import reconcile_quotas

    customer, _shop, _order, transfer = _queued_order(woo_sandbox, hogia_sandbox)
    quota_claim(customer=customer, order_key=transfer.quota_key, arrived_at=timezone.now())  # counted
    claimed = lifecycle.claim(transfer.pk)
    lifecycle.transition(transfer.pk, "needs_attention", token=claimed.token)  # as a hand edit would
    OrderTransfer.objects.filter(pk=transfer.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert reconcile_quotas() == 1
    assert _usage(transfer) is None
    assert "given back" in transfer.events.get(kind=Kind.REPAIRED).message
    assert reconcile_quotas() == 0


def test_an_older_copy_of_the_order_arriving_late_changes_nothing(woo_sandbox, hogia_sandbox):
    """Webhooks are handled by several workers: order.created (pending) may be recorded after
    order.updated (processing) of the same order."""
    _customer, (shop, _second) = connected_customer(
        woo_sandbox, hogia_sandbox, trigger_statuses=("processing",)
    )
    placed = front(shop).place("A4_guest_nosku_nostock_pending")
    newer = front(shop).call("PUT", f"orders/{placed['id']}", {"status": "processing"})
    assert order_seen(shop=shop, order=newer, via="webhook").queued
    stale = dict(placed, date_modified_gmt="2000-01-01T00:00:00")
    assert not order_seen(shop=shop, order=stale, via="webhook").queued
    transfer = OrderTransfer.objects.get()
    assert (transfer.state, transfer.woo_status) == (State.QUEUED, "processing")
