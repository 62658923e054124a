"""What the shop told us about an order (a webhook or the poll): recorded, then moved on.

The body is only a hint: the attempt re-reads the order from the shop. Here the order's
row is created once (one per shop order), its shop status noted, and the lifecycle
asked to queue it, filter it, give up a held place of a cancelled order, or reopen an
invoiced order that was refunded or cancelled in the shop.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing.services import quota_return
from integrations.models import FlowSettings, OrderEvent, OrderTransfer, Shop
from integrations.orders import lifecycle
from integrations.orders.identity import order_quota_key, order_sequence_id
from integrations.orders.wakeups import transfer_wake

logger = logging.getLogger(__name__)

State = OrderTransfer.State
Kind = OrderEvent.Kind
# WooCommerce's statuses of an order that will not be paid for or delivered.
CANCELLED_STATUSES = ("cancelled", "refunded", "failed")


def gmt(value) -> datetime | None:
    """WooCommerce's ``*_gmt`` fields are UTC without an offset."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is None:
        return None
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=dt_timezone.utc)


def buyer_label(order: dict) -> str:
    billing = order.get("billing") if isinstance(order.get("billing"), dict) else {}
    name = " ".join(str(p) for p in (billing.get("first_name"), billing.get("last_name")) if p)
    company = str(billing.get("company") or "")
    return ", ".join(p for p in (company, name, str(billing.get("email") or "")) if p)[:200]


def is_trigger(shop: Shop, status: str) -> bool:
    return status in (shop.trigger_statuses or [])


def transfers_switched_off(shop: Shop) -> bool:
    settings = FlowSettings.objects.filter(customer_id=shop.customer_id).first()
    return settings is not None and not settings.transfer_orders


def refund_ids(order: dict) -> set[int]:
    return {int(r["id"]) for r in order.get("refunds") or [] if isinstance(r, dict) and r.get("id")}


@dataclass
class Seen:
    transfer: OrderTransfer
    created: bool
    queued: bool


def _record(shop: Shop, order: dict, via: str) -> tuple[OrderTransfer, bool, str]:
    """The order's row with what the shop says now; (row, created, previous shop status)."""
    woo_order_id = int(order["id"])
    sequence_id = order_sequence_id(shop_url=shop.url, woo_order_id=woo_order_id)
    try:
        with transaction.atomic():
            transfer, created = OrderTransfer.objects.select_for_update().get_or_create(
                shop=shop, woo_order_id=woo_order_id,
                defaults={"sequence_id": sequence_id, "first_seen_via": via,
                          "quota_key": order_quota_key(sequence_id=sequence_id)})
    except IntegrityError:  # a concurrent first sighting won the insert
        transfer, created = OrderTransfer.objects.select_for_update().get(
            shop=shop, woo_order_id=woo_order_id), False
    previous = transfer.woo_status
    status = str(order.get("status") or "")
    transfer.order_number = str(order.get("number") or woo_order_id)[:40]
    transfer.woo_status = status[:40]
    transfer.woo_modified_gmt = gmt(order.get("date_modified_gmt")) or transfer.woo_modified_gmt
    transfer.order_created_gmt = gmt(order.get("date_created_gmt")) or transfer.order_created_gmt
    transfer.buyer = buyer_label(order) or transfer.buyer
    transfer.currency = str(order.get("currency") or "")[:3]
    try:
        if order.get("total") not in (None, ""):
            transfer.total = Decimal(str(order["total"]))
    except InvalidOperation:
        pass  # the payload check rejects such an order before it gets here
    transfer.save(update_fields=["order_number", "woo_status", "woo_modified_gmt", "order_created_gmt",
                                 "buyer", "currency", "total", "updated_at"])
    return transfer, created, previous


def order_seen(*, shop: Shop, order: dict, via: str) -> Seen:
    """Record that the shop has this order in this state; queue it if it should transfer.

    Idempotent: the same order seen ten times (webhook, poll, retries) is one row and at
    most one queued attempt.
    """
    status = str(order.get("status") or "")
    label = f"{shop.status_label(status)} ({status})"
    queued = False
    with transaction.atomic():
        transfer, created, previous = _record(shop, order, via)
        first = f"Received by {via}: not" if created else "Not"
        state = transfer.state
        if state in (State.RECEIVED, State.FILTERED):
            if transfers_switched_off(shop):
                if created or previous != status:
                    lifecycle.transition(transfer.pk, "filter", event=(
                        Kind.FILTERED, f"{first} transferred: transferring orders as invoices is "
                                       f"switched off in the customer's flow settings (status {label}).",
                        {"status": status, "via": via}))
            elif is_trigger(shop, status):
                message = (f"Received by {via}: status {label}, queued for transfer." if created else
                           f"Status changed to {label}: queued for transfer.")
                queued = lifecycle.transition(transfer.pk, "queue", next_attempt_at=timezone.now(),
                                              event=(Kind.RECEIVED, message, {"via": via}))
            elif created or previous != status:
                chosen = ", ".join(shop.trigger_statuses or []) or "none"
                lifecycle.transition(transfer.pk, "filter", event=(
                    Kind.FILTERED, f"{first} transferred: status {label} is not one of the shop's "
                                   f"transfer statuses ({chosen}).", {"status": status, "via": via}))
        elif state == State.HELD and not is_trigger(shop, status):
            # A held order the shop cancelled never takes a place in the quota.
            if lifecycle.transition(transfer.pk, "cancel_held", event=(
                    Kind.FILTERED, f"No longer held: the order is now {label} in the shop, so it is not "
                                   f"transferred and takes no place in the quota.", {"status": status})):
                quota_return(customer=shop.customer, order_key=transfer.quota_key, keep_place=False)
        elif state in (State.INVOICED, State.CREDITED):
            queued = _reopen_if_changed(transfer, order, status=status, label=label, via=via)
    if queued:
        transfer_wake(transfer_id=transfer.pk)
    transfer.refresh_from_db()
    return Seen(transfer=transfer, created=created, queued=queued)


def _reopen_if_changed(transfer: OrderTransfer, order: dict, *, status: str, label: str, via: str) -> bool:
    """A refund, or a cancellation, after the invoice: the order goes back to the queue."""
    credited = set(transfer.credits.values_list("woo_refund_id", flat=True))
    new_refunds = refund_ids(order) - credited
    whole_credited = 0 in credited
    if transfer.state == State.INVOICED and new_refunds and not whole_credited:
        return lifecycle.transition(transfer.pk, "reopen", next_attempt_at=timezone.now(), event=(
            Kind.REFUND, "A refund was made in the shop: a credit invoice follows.",
            {"via": via, "refunds": sorted(new_refunds)}))
    if transfer.state == State.INVOICED and status in CANCELLED_STATUSES and not whole_credited:
        return lifecycle.transition(transfer.pk, "reopen", next_attempt_at=timezone.now(), event=(
            Kind.CANCELLED, f"The order is now {label} in the shop, after its invoice "
                            f"{transfer.invoice_number} was created.", {"via": via, "status": status}))
    return False
