"""Order status back to the shop: what Hogia Smart did with an order's invoice moves the
WooCommerce order, tells the buyer, carries the tracking and sets off the payment capture.

A change read from Hogia Smart's invoice feed (``invoice_status``) becomes one
``StatusPush`` per order and change (status plus tracking number: read twice, it is still
one row). A worker takes an order's pushes in the order they were read and does each one's
steps once: the status, the tracking, the note to the buyer. Each step first reads the
shop (is the status already there, the number already on the order, the note already
written?), so a retry after a 500 or a timeout that the shop had in fact carried out never
writes twice.

The rules for the status (``status_move``, ``person_changed``):
- an order is never moved back (completed → processing) nor out of cancelled/refunded;
- a status a person (or a plugin) set in the shop after the portal's last write wins;
- a cancellation in Hogia Smart of an order that is completed or captured in the shop is
  not applied: support is told what to do (refund in the shop, or a new invoice).

What each Hogia Smart status does is the customer's mapping (``StatusMapping``, per shop
where the customer has several), else ``DEFAULT_MAPPING``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.clients.woocommerce import WooCommerceClient
from integrations.connections import woocommerce_client
from integrations.errors import RemoteError, RemoteRejected, RemoteUnavailable
from integrations.logcontext import log_context
from integrations.models import (
    FlowSettings,
    HogiaInvoiceStatus,
    OrderEvent,
    OrderTransfer,
    PaymentCapture,
    StatusMapping,
    StatusPush,
    TrackingMethod,
)
from integrations.orders import lifecycle
from integrations.orders.capture import capture_blocked, capture_check, next_check_at, provider_of
from integrations.orders.seen import gmt
from integrations.orders.tracking import tracking_on_order, tracking_text, tracking_write
from integrations.rules import flow_switch_enabled
from integrations.taskqueue import task_enqueue

logger = logging.getLogger(__name__)

Action = StatusMapping.Action
BuyerEmail = StatusMapping.BuyerEmail
Kind = OrderEvent.Kind
PUSH_TASK = "integrations.tasks.push_order_statuses"
# A push is held by one worker this long (a completion waits for the payment plugin).
LOCK = timedelta(minutes=5)
# The shop's answer to completing an order comes after the payment plugin's calls (10 s each).
STATUS_WRITE_TIMEOUT = 60.0
RETRY_AFTER = (30, 60, 120, 300, 900, 1800, 3600)  # seconds, then hourly
ATTENTION_AFTER_ATTEMPTS = 12
# A wake-up that has not led to a claim by then was lost (a worker died holding it).
WAKE_AGAIN_AFTER = timedelta(minutes=2)

# WooCommerce's statuses in the order an order goes through them. A shop's own statuses
# (plugins') sit between processing and completed; cancelled, refunded and failed are ends.
STATUS_RANK = {"checkout-draft": 0, "pending": 0, "on-hold": 1, "processing": 2, "completed": 4}
CUSTOM_RANK = 3
ENDED = ("cancelled", "refunded", "failed", "trash")


@dataclass(frozen=True)
class Rule:
    action: str = Action.NOTHING
    woo_status: str = ""
    buyer_email: str = BuyerEmail.SHOP
    pass_tracking: bool = False

    @property
    def does_something(self) -> bool:
        return self.action != Action.NOTHING or self.pass_tracking or self.buyer_email == BuyerEmail.NOTE


DEFAULT_MAPPING: dict[str, Rule] = {
    HogiaInvoiceStatus.DRAFT: Rule(),
    HogiaInvoiceStatus.DELIVERED: Rule(Action.SET_STATUS, "completed", BuyerEmail.SHOP, pass_tracking=True),
    HogiaInvoiceStatus.INVOICED: Rule(),
    HogiaInvoiceStatus.PAID: Rule(),
    HogiaInvoiceStatus.CANCELLED: Rule(Action.SUPPORT),
}


def mapping_for(*, customer_id: int, shop_id: int | None) -> dict[str, Rule]:
    """Each Hogia Smart status's rule for this shop: its own rows, then the customer's, then the default."""
    rules = dict(DEFAULT_MAPPING)
    rows = StatusMapping.objects.filter(customer_id=customer_id).filter(
        Q(shop__isnull=True) | Q(shop_id=shop_id)
    )
    for row in sorted(rows, key=lambda r: r.shop_id is not None):  # the shop's own rows last: they win
        rules[row.hogia_status] = Rule(row.action, row.woo_status, row.buyer_email, row.pass_tracking)
    return rules


def status_flow_on(*, customer_id: int) -> bool:
    settings = FlowSettings.objects.select_related("customer").filter(customer_id=customer_id).first()
    return settings is not None and flow_switch_enabled(settings=settings, name="order_status_to_shop")[0]


# -- from the feed to pushes ---------------------------------------------------------------------


def status_change_record(*, transfer_id: int, status: str, delivery: dict) -> StatusPush | None:
    """A change read from Hogia Smart (the caller checked that the flow is on): one push per
    order and change, woken after commit. None when this change was recorded before."""
    now = timezone.now()
    push, created = StatusPush.objects.get_or_create(
        transfer_id=transfer_id,
        hogia_status=status,
        tracking_number=str(delivery.get("trackingNumber") or "")[:120],
        defaults={"delivery": delivery, "next_attempt_at": now, "woken_at": now},
    )
    if not created:
        return None
    transaction.on_commit(lambda: status_pushes_wake(transfer_id=transfer_id))
    return push


def status_pushes_wake(*, transfer_id: int) -> None:
    task_enqueue(PUSH_TASK, transfer_id, group="order-status")


def status_pushes_wake_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    """Wake the orders with a push due (a retry's time has come, or a wake-up was lost), once
    per due time: the stager on several hosts, and the sweeper, may all call this."""
    now = now or timezone.now()
    due = (
        StatusPush.objects.filter(state=StatusPush.State.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .filter(
            Q(woken_at__isnull=True)
            | Q(woken_at__lt=now - WAKE_AGAIN_AFTER)
            | Q(woken_at__lt=F("next_attempt_at"))
        )
    )
    woken = []
    for transfer_id in dict.fromkeys(
        due.order_by("next_attempt_at").values_list("transfer_id", flat=True)[:limit]
    ):
        # The due conditions again in the UPDATE: of two stagers, one marks them.
        if due.filter(transfer_id=transfer_id).update(woken_at=now):
            status_pushes_wake(transfer_id=transfer_id)
            woken.append(transfer_id)
    return woken


# -- the worker ----------------------------------------------------------------------------------


def pushes_run(*, transfer_id: int, woo: WooCommerceClient | None = None) -> int:
    """Carry out the order's due pushes, oldest first; returns how many finished. One that
    fails stays pending with its retry time, and the later ones wait behind it."""
    transfer = OrderTransfer.objects.select_related("shop", "shop__customer").filter(pk=transfer_id).first()
    if transfer is None:
        return 0
    with log_context(shop=transfer.shop_id, order=transfer.order_number, transfer=transfer.pk):
        return _pushes_run(transfer, woo=woo)


def _pushes_run(transfer: OrderTransfer, *, woo: WooCommerceClient | None) -> int:
    transfer_id = transfer.pk
    finished = 0
    rules: dict[str, Rule] | None = None
    for push in StatusPush.objects.filter(transfer_id=transfer_id, state=StatusPush.State.PENDING).order_by(
        "seen_at", "id"
    ):
        now = timezone.now()
        if push.next_attempt_at and push.next_attempt_at > now:
            break
        if (
            not StatusPush.objects.filter(pk=push.pk, state=StatusPush.State.PENDING)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            .update(locked_until=now + LOCK)
        ):
            break  # another worker has this order's pushes
        if rules is None:
            rules = mapping_for(customer_id=transfer.shop.customer_id, shop_id=transfer.shop_id)
        rule = rules.get(push.hogia_status, Rule())
        if not rule.does_something:
            _finish(push, StatusPush.State.SKIPPED)
            finished += 1
            continue
        woo = woo or woocommerce_client(shop=transfer.shop, read_timeout=STATUS_WRITE_TIMEOUT)
        with log_context(push=push.pk):
            try:
                _push_carry_out(push, transfer=transfer, rule=rule, woo=woo)
            except RemoteError as exc:
                _failed(push, transfer=transfer, error=exc)
                break
        finished += 1
        transfer.refresh_from_db()
    return finished


def _push_carry_out(push: StatusPush, *, transfer: OrderTransfer, rule: Rule, woo: WooCommerceClient) -> None:
    order = woo.order_get(transfer.woo_order_id)
    steps = list(push.steps_done)
    wrote = False
    if "status" not in steps:
        attention = _status_step(push, transfer=transfer, rule=rule, order=order, woo=woo)
        if attention:
            logger.warning("status push for %s needs attention: %s", push.hogia_status, attention)
            _finish(push, StatusPush.State.NEEDS_ATTENTION, attention=attention)
            lifecycle.timeline_add(
                transfer.pk, Kind.NEEDS_ATTENTION, attention, hogia_status=push.hogia_status
            )
            return
        steps = list(push.steps_done)
    method = transfer.shop.tracking_method
    tracking = bool(rule.pass_tracking and push.delivery.get("trackingNumber"))
    if tracking and method != TrackingMethod.NOTE and "tracking" not in steps:
        number = push.delivery["trackingNumber"]
        if not tracking_on_order(woo, method=method, order_id=transfer.woo_order_id, number=number):
            tracking_write(woo, method=method, order=order, delivery=push.delivery)
            logger.info("tracking written to the shop (%s)", method)
        lifecycle.timeline_add(
            transfer.pk,
            Kind.TRACKING,
            _("Tracking sent to the shop (%(method)s): %(text)s")
            % {"method": TrackingMethod(method).label, "text": tracking_text(push.delivery)},
            tracking_number=number,
            method=method,
        )
        wrote = True
        steps = _step_done(push, steps, "tracking")
    if (
        rule.buyer_email == BuyerEmail.NOTE or (tracking and method == TrackingMethod.NOTE)
    ) and "note" not in steps:
        note = _buyer_note(transfer, push, rule=rule, tracking=tracking)
        if not any(
            note == str(n.get("note") or "") for n in woo.order_notes(transfer.woo_order_id, kind="customer")
        ):
            woo.order_note_create(transfer.woo_order_id, note, customer_note=True)
            logger.info("note to the buyer written to the shop (%s)", push.hogia_status)
        lifecycle.timeline_add(
            transfer.pk,
            Kind.BUYER_EMAIL,
            _("A note was sent to the buyer (WooCommerce e-mails it): “%(note)s”") % {"note": note},
        )
        wrote = True
        steps = _step_done(push, steps, "note")
    # "wrote": the status step changed the shop (or an earlier attempt's write was found done).
    _finish(push, StatusPush.State.DONE if wrote or "wrote" in push.steps_done else StatusPush.State.SKIPPED)


def _step_done(push: StatusPush, steps: list[str], step: str) -> list[str]:
    steps = [*steps, step]
    StatusPush.objects.filter(pk=push.pk).update(steps_done=steps)
    push.steps_done = steps
    return steps


def status_move(*, current: str, target: str) -> str:
    """Why the order may not go from ``current`` to ``target`` ("" when it may)."""
    if current == target:
        return "same"
    if current in ENDED:
        return "ended"
    if target in ENDED:
        return ""
    if STATUS_RANK.get(target, CUSTOM_RANK) <= STATUS_RANK.get(current, CUSTOM_RANK) and not (
        target not in STATUS_RANK and current not in STATUS_RANK
    ):
        return "backwards"
    return ""


def person_changed(transfer: OrderTransfer, order: dict) -> bool:
    """The order's status was set in the shop (by a person or a plugin) after the portal last wrote it.

    ``shop_status_written`` is the status the shop answered the portal's write with (a payment
    plugin may have moved it inside that write), so any other status now was set later. The
    change time alone cannot tell: WooCommerce keeps it to the second, and a person may act
    within the second of the portal's write."""
    return bool(transfer.shop_status_written) and order.get("status") != transfer.shop_status_written


def _status_step(
    push: StatusPush, *, transfer: OrderTransfer, rule: Rule, order: dict, woo: WooCommerceClient
) -> str:
    """Set the mapped status if the rules allow; returns what support must do, or ""."""
    current = str(order.get("status") or "")
    shop = transfer.shop
    label = shop.status_label
    if push.hogia_status == HogiaInvoiceStatus.CANCELLED and (
        rule.action == Action.SUPPORT
        or (rule.action == Action.SET_STATUS and _completed_or_captured(transfer, order))
    ):
        return _cancelled_attention(transfer, order)
    if rule.action != Action.SET_STATUS or not rule.woo_status:
        _step_done(push, push.steps_done, "status")
        return ""
    target = rule.woo_status
    refusal = status_move(current=current, target=target)
    if refusal != "same" and person_changed(transfer, order):
        lifecycle.timeline_add(
            transfer.pk,
            Kind.SHOP_STATUS,
            _(
                "Not set to %(target)s: the order's status was changed in the shop to %(current)s after the portal "
                "set %(written)s, and a change made in the shop is never overwritten."
            )
            % {
                "target": label(target),
                "current": label(current),
                "written": label(transfer.shop_status_written),
            },
            hogia_status=push.hogia_status,
            skipped="changed_in_shop",
        )
        _step_done(push, push.steps_done, "status")
        return ""
    provider = provider_of(str(order.get("payment_method") or transfer.payment_method))
    if refusal == "same" and target == "completed" and provider:
        # Completed already, perhaps by the portal's own write whose answer was lost: what became of
        # the capture that write set off is read, never set off again.
        capture_check(transfer_id=transfer.pk, woo=woo, order=order)
    if refusal:
        if refusal != "same":
            lifecycle.timeline_add(
                transfer.pk,
                Kind.SHOP_STATUS,
                _(
                    "Not set to %(target)s: the order is already %(current)s in the shop, and an order is never moved "
                    "back."
                )
                % {"target": label(target), "current": label(current)},
                hogia_status=push.hogia_status,
                skipped=refusal,
            )
        if refusal == "same" and transfer.shop_status_written != current:
            # The shop already shows it (after a failed attempt most likely that attempt's write, whose
            # answer was lost): what the portal meant is what the shop has, not a person's change.
            OrderTransfer.objects.filter(pk=transfer.pk).update(
                shop_status_written=current, shop_modified_after_write=gmt(order.get("date_modified_gmt"))
            )
            transfer.shop_status_written = current
        _step_done(
            push,
            [*push.steps_done, "wrote"] if refusal == "same" and push.attempts else push.steps_done,
            "status",
        )
        return ""
    if target == "completed" and provider:
        blocked = capture_blocked(transfer=transfer, order=order)
        if blocked:
            return blocked
        # Before the write: if its answer is lost, the capture it set off is still looked for.
        now = timezone.now()
        PaymentCapture.objects.get_or_create(
            transfer=transfer,
            defaults={
                "provider": provider,
                "payment_method": str(order.get("payment_method") or ""),
                "completed_at": now,
                "next_check_at": next_check_at(0, completed_at=now),
            },
        )
    answer = woo.order_update(transfer.woo_order_id, {"status": target})
    now_status = str(answer.get("status") or target)
    OrderTransfer.objects.filter(pk=transfer.pk).update(
        shop_status_written=now_status,
        shop_modified_after_write=gmt(answer.get("date_modified_gmt")),
        woo_status=now_status,
    )
    transfer.shop_status_written = now_status
    logger.info(
        "order status set to %s in the shop (was %s, the shop answered %s) for %s in Hogia Smart",
        target,
        current,
        now_status,
        push.hogia_status,
    )
    message = _("Status in the shop set to %(target)s (was %(current)s).") % {
        "target": label(target),
        "current": label(current),
    }
    if rule.buyer_email == BuyerEmail.SHOP:
        message += " " + _(
            "WooCommerce sends the buyer its e-mail for this status if it is switched on in the shop."
        )
    if now_status != target:
        message += " " + _("The shop answered with the status %(status)s.") % {"status": label(now_status)}
    lifecycle.timeline_add(
        transfer.pk,
        Kind.SHOP_STATUS,
        message,
        hogia_status=push.hogia_status,
        status=target,
        answered=now_status,
    )
    _step_done(push, [*push.steps_done, "wrote"], "status")
    if target == "completed" and provider:
        capture_check(transfer_id=transfer.pk, woo=woo, order=answer)
    return ""


def _completed_or_captured(transfer: OrderTransfer, order: dict) -> bool:
    return (
        order.get("status") == "completed"
        or PaymentCapture.objects.filter(transfer=transfer, state=PaymentCapture.State.CAPTURED).exists()
    )


def _cancelled_attention(transfer: OrderTransfer, order: dict) -> str:
    values = {
        "number": transfer.invoice_number,
        "status": transfer.shop.status_label(str(order.get("status") or "")),
    }
    if _completed_or_captured(transfer, order):
        return (
            _(
                "Hogia Smart cancelled invoice %(number)s, but the order is %(status)s in the shop (and its payment "
                "may be captured). Nothing was changed in the shop. If the order is really cancelled: refund it in "
                "the shop (WooCommerce → the order → Refund), which also refunds the payment; a cancelled invoice "
                "needs no credit invoice. If the invoice was cancelled by mistake: make a new invoice in Hogia "
                "Smart."
            )
            % values
        )
    return (
        _(
            "Hogia Smart cancelled invoice %(number)s; the order is still %(status)s in the shop. Nothing was "
            "changed there. If the order is cancelled, cancel it in the shop too (this also releases the "
            "payment's authorisation); if not, make a new invoice in Hogia Smart."
        )
        % values
    )


def _buyer_note(transfer: OrderTransfer, push: StatusPush, *, rule: Rule, tracking: bool) -> str:
    number = transfer.order_number or str(transfer.woo_order_id)
    words = {
        HogiaInvoiceStatus.DELIVERED: _("Your order %(number)s has been sent."),
        HogiaInvoiceStatus.INVOICED: _(
            "The invoice for your order %(number)s has been sent (invoice %(invoice)s)."
        ),
        HogiaInvoiceStatus.PAID: _("Thank you: we have received the payment for your order %(number)s."),
    }.get(push.hogia_status, _("Your order %(number)s has been updated."))
    note = words % {"number": number, "invoice": transfer.invoice_number}
    if tracking:
        note += " " + tracking_text(push.delivery)
    return note


def _finish(push: StatusPush, state: str, *, attention: str = "") -> None:
    StatusPush.objects.filter(pk=push.pk).update(
        state=state, attention=attention, locked_until=None, finished_at=timezone.now(), next_attempt_at=None
    )
    push.state = state


def _failed(push: StatusPush, *, transfer: OrderTransfer, error: RemoteError) -> None:
    attempts = push.attempts + 1
    text = str(error)
    gives_up = attempts >= ATTENTION_AFTER_ATTEMPTS or (
        isinstance(error, RemoteRejected) and not isinstance(error, RemoteUnavailable)
    )
    logger.warning("status push (%s) failed, attempt %d: %s", push.hogia_status, attempts, text)
    if gives_up:
        attention = _(
            "The shop refused or did not answer %(attempts)d times: %(error)s. Retry from the order "
            "when the shop is fixed."
        ) % {"attempts": attempts, "error": text}
        StatusPush.objects.filter(pk=push.pk).update(
            state=StatusPush.State.NEEDS_ATTENTION,
            attempts=attempts,
            last_error=text,
            attention=attention,
            locked_until=None,
            next_attempt_at=None,
        )
        lifecycle.timeline_add(transfer.pk, Kind.NEEDS_ATTENTION, attention, hogia_status=push.hogia_status)
        return
    delay = RETRY_AFTER[min(attempts, len(RETRY_AFTER)) - 1]
    StatusPush.objects.filter(pk=push.pk).update(
        attempts=attempts,
        last_error=text,
        locked_until=None,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )


def status_push_retry(*, push: StatusPush, by: str) -> bool:
    """Support's retry of a push that needs attention: pending again, at once."""
    now = timezone.now()
    changed = StatusPush.objects.filter(pk=push.pk, state=StatusPush.State.NEEDS_ATTENTION).update(
        state=StatusPush.State.PENDING, attention="", next_attempt_at=now, woken_at=now, finished_at=None
    )
    if changed:
        lifecycle.timeline_add(
            push.transfer_id,
            Kind.RETRY,
            _("%(by)s asked to send the %(status)s change to the shop again.")
            % {"by": by, "status": push.hogia_status},
        )
        transaction.on_commit(lambda: status_pushes_wake(transfer_id=push.transfer_id))
    return bool(changed)
