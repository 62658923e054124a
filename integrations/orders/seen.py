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
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from billing.services import quota_return
from integrations.catalog.stock import order_stock_record
from integrations.logcontext import log_context
from integrations.models import FlowSettings, OrderEvent, OrderTransfer, Shop
from integrations.orders import lifecycle
from integrations.orders.identity import order_quota_key, order_sequence_id
from integrations.orders.wakeups import transfer_wake

logger = logging.getLogger(__name__)

State = OrderTransfer.State
Kind = OrderEvent.Kind
SEEN_FIELDS = (
    "shop_id",
    "state",
    "woo_status",
    "woo_modified_gmt",
    "quota_key",
    "invoice_number",
    "invoice_status",
)
# WooCommerce's statuses of an order that will not be paid for or delivered.
CANCELLED_STATUSES = ("cancelled", "refunded", "failed")
# How the portal saw an order first (``first_seen_via``), in words for the timeline.
SEEN_VIA = {"webhook": gettext_lazy("webhook"), "poll": gettext_lazy("the order poll")}


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
    return FlowSettings.objects.filter(customer_id=shop.customer_id, transfer_orders=False).exists()


def refund_ids(order: dict) -> set[int]:
    return {int(r["id"]) for r in order.get("refunds") or [] if isinstance(r, dict) and r.get("id")}


@dataclass
class Seen:
    transfer_id: int
    created: bool
    queued: bool


def _shop_says(order: dict) -> dict:
    """The row's fields that the shop's copy of the order sets."""
    fields = {
        "order_number": str(order.get("number") or order["id"])[:40],
        "woo_status": str(order.get("status") or "")[:40],
        "currency": str(order.get("currency") or "")[:3],
        "payment_method": str(order.get("payment_method") or "")[:60],
    }
    for name, key in (
        ("woo_modified_gmt", "date_modified_gmt"),
        ("order_created_gmt", "date_created_gmt"),
        ("paid_at", "date_paid_gmt"),
    ):
        value = gmt(order.get(key))
        if value is not None:
            fields[name] = value
    buyer = buyer_label(order)
    if buyer:
        fields["buyer"] = buyer
    try:
        if order.get("total") not in (None, ""):
            fields["total"] = Decimal(str(order["total"]))
    except InvalidOperation:
        pass  # the payload check rejects such an order before it gets here
    return fields


def _transition_for(shop: Shop, *, status: str, label: str, via: str, first: bool) -> tuple[str, tuple]:
    """What an order seen in ``status`` does, before its invoice: (transition, timeline entry)."""
    values = {"via": SEEN_VIA.get(via, via), "label": label}
    said = _("Received by %(via)s: not transferred") % values if first else _("Not transferred")
    if transfers_switched_off(shop):
        return "filter", (
            Kind.FILTERED,
            _(
                "%(said)s: transferring orders as invoices is switched off in the "
                "customer's flow settings (status %(label)s)."
            )
            % {**values, "said": said},
            {"status": status, "via": via},
        )
    if is_trigger(shop, status):
        return "queue", (
            Kind.RECEIVED,
            _("Received by %(via)s: status %(label)s, queued for transfer.") % values
            if first
            else _("Status changed to %(label)s: queued for transfer.") % values,
            {"via": via},
        )
    chosen = ", ".join(shop.trigger_statuses or []) or pgettext("trigger statuses", "none")
    return "filter", (
        Kind.FILTERED,
        _("%(said)s: status %(label)s is not one of the shop's transfer statuses (%(chosen)s).")
        % {**values, "said": said, "chosen": chosen},
        {"status": status, "via": via},
    )


def _first_sighting(shop: Shop, order: dict, *, via: str, status: str, label: str, wake: bool) -> Seen | None:
    """Create the order's row (already queued or filtered); None if a concurrent sighting won."""
    woo_order_id = int(order["id"])
    sequence_id = order_sequence_id(shop_url=shop.url, woo_order_id=woo_order_id)
    name, event = _transition_for(shop, status=status, label=label, via=via, first=True)
    now = timezone.now()
    extra = {"next_attempt_at": now, "woken_at": now} if name == "queue" else {}
    try:
        with transaction.atomic():  # a savepoint: the unique constraint may refuse the row
            transfer = lifecycle.transfer_create(
                name,
                event=event,
                now=now,
                shop=shop,
                woo_order_id=woo_order_id,
                sequence_id=sequence_id,
                quota_key=order_quota_key(sequence_id=sequence_id),
                first_seen_via=via,
                **extra,
                **_shop_says(order),
            )
    except IntegrityError:
        return None
    if name == "queue" and wake:
        transfer_wake(transfer_id=transfer.pk, woken_already=True)
    return Seen(transfer_id=transfer.pk, created=True, queued=name == "queue")


def order_seen(*, shop: Shop, order: dict, via: str, wake: bool = True) -> Seen:
    """Record that the shop has this order in this state; queue it if it should transfer.

    Idempotent: the same order seen ten times (webhook, poll, retries) is one row and at
    most one queued attempt. A first sighting is one INSERT. ``wake`` False: the caller
    runs the attempt itself when ``queued`` (the row is marked woken, so the stager leaves it).
    """
    with log_context(shop=shop.pk, order=order.get("number") or order.get("id")):
        return _order_seen(shop=shop, order=order, via=via, wake=wake)


def _order_seen(*, shop: Shop, order: dict, via: str, wake: bool) -> Seen:
    status = str(order.get("status") or "")
    label = f"{shop.status_label(status)} ({status})"
    woo_order_id = int(order["id"])
    with transaction.atomic(savepoint=False):
        # Only what is read here: the full row costs more to build than the rest of a delivery.
        transfer = next(
            iter(
                OrderTransfer.objects.select_for_update()
                .filter(shop=shop, woo_order_id=woo_order_id)
                .order_by()
                .only(*SEEN_FIELDS)[:1]
            ),
            None,
        )
        if transfer is None:
            seen = _first_sighting(shop, order, via=via, status=status, label=label, wake=wake)
            if seen is not None:
                order_stock_record(transfer_id=seen.transfer_id, order=order)
                return seen
            # A concurrent first sighting (webhook and poll at once) made the row: take it.
            transfer = (
                OrderTransfer.objects.select_for_update()
                .only(*SEEN_FIELDS)
                .get(shop=shop, woo_order_id=woo_order_id)
            )
        changed = _shop_says(order)
        if (
            transfer.woo_modified_gmt
            and changed.get("woo_modified_gmt")
            and changed["woo_modified_gmt"] < transfer.woo_modified_gmt
        ):
            # An older copy than the one recorded (webhooks are handled by several workers and
            # may arrive out of order): nothing in it is news.
            return Seen(transfer_id=transfer.pk, created=False, queued=False)
        previous = transfer.woo_status
        for name, value in changed.items():
            setattr(transfer, name, value)
        transfer.save(update_fields=[*changed, "updated_at"])
        order_stock_record(transfer_id=transfer.pk, order=order)
        queued = False
        if transfer.state in (State.RECEIVED, State.FILTERED) and previous != status:
            name, event = _transition_for(shop, status=status, label=label, via=via, first=False)
            extra = {"next_attempt_at": timezone.now()} if name == "queue" else {}
            queued = lifecycle.transition(transfer.pk, name, event=event, **extra) and name == "queue"
        elif transfer.state == State.HELD and not is_trigger(shop, status):
            # A held order the shop cancelled never takes a place in the quota.
            if lifecycle.transition(
                transfer.pk,
                "cancel_held",
                event=(
                    Kind.FILTERED,
                    _(
                        "No longer held: the order is now %(label)s in the shop, so it is not "
                        "transferred and takes no place in the quota."
                    )
                    % {"label": label},
                    {"status": status},
                ),
            ):
                quota_return(customer=shop.customer, order_key=transfer.quota_key, keep_place=False)
        elif transfer.state in (State.INVOICED, State.CREDITED):
            queued = _reopen_if_changed(transfer, order, status=status, label=label, via=via)
        if queued and wake:
            transfer_wake(transfer_id=transfer.pk)
        elif queued:
            OrderTransfer.objects.filter(pk=transfer.pk).update(woken_at=timezone.now())
    return Seen(transfer_id=transfer.pk, created=False, queued=queued)


def _reopen_if_changed(transfer: OrderTransfer, order: dict, *, status: str, label: str, via: str) -> bool:
    """A refund, or a cancellation, after the invoice: the order goes back to the queue."""
    credited = set(transfer.credits.values_list("woo_refund_id", flat=True))
    new_refunds = refund_ids(order) - credited
    whole_credited = 0 in credited
    if transfer.state == State.INVOICED and new_refunds and not whole_credited:
        return lifecycle.transition(
            transfer.pk,
            "reopen",
            next_attempt_at=timezone.now(),
            event=(
                Kind.REFUND,
                _("A refund was made in the shop: a credit invoice follows."),
                {"via": via, "refunds": sorted(new_refunds)},
            ),
        )
    if (
        transfer.state == State.INVOICED
        and status in CANCELLED_STATUSES
        and transfer.invoice_status == "Cancelled"
    ):
        return False  # Hogia Smart cancelled the invoice itself (makulerad): there is nothing to credit
    if transfer.state == State.INVOICED and status in CANCELLED_STATUSES and not whole_credited:
        return lifecycle.transition(
            transfer.pk,
            "reopen",
            next_attempt_at=timezone.now(),
            event=(
                Kind.CANCELLED,
                _("The order is now %(label)s in the shop, after its invoice %(number)s was created.")
                % {"label": label, "number": transfer.invoice_number},
                {"via": via, "status": status},
            ),
        )
    return False
