"""The payment of an order, captured by the shop's payment plugin when the portal completes it.

The portal never talks to Klarna, Nexi or Svea. Their WooCommerce plugins capture (Svea:
"deliver") inside the request that moves an order to ``completed``, hard-coded to that
status, and write the outcome on the order: a meta key when it worked, a private note
(and for Klarna and Nexi the status ``on-hold``) when it did not
(``../shared/docs/payments-and-tracking.md`` §2–§5, read from the plugins' source). So the
portal completes an order once, then reads the order and its notes until it knows:

- captured: the plugin's meta key is set (``_wc_klarna_capture_id``, ``_dibs_charge_id``,
  ``_svea_co_deliver_date``), or its note says the order was captured before;
- failed: the plugin's failure note, with its words, for support;
- pending: Klarna's "pending review" (the order is on hold until Klarna decides), or no
  sign yet: read again with back-off; after the last look it is "not captured by the
  plugin" (capture on completion switched off, e.g. Nexi's "Manage orders", off by default).

It never sets off a capture twice: an order is completed by the portal only once per
order (``PaymentCapture`` is one row per order); "retry" is a person's decision, and only
for an order the plugin put on hold without capturing. Where the order's total in the
shop is higher than its invoice, the order is not completed at all (the plugins capture the
shop's total, never a part of it).
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.logcontext import log_context
from integrations.models import OrderTransfer, PaymentCapture

logger = logging.getLogger(__name__)

# The plugins' gateway ids (payment_method on the order), per provider.
KLARNA_METHODS = ("klarna_payments", "kco")
NEXI_METHODS = ("dibs_easy",)  # and every nets_easy_* id
SVEA_METHODS = ("svea_checkout",)
CAPTURED_META = {
    "klarna": "_wc_klarna_capture_id",
    "nexi": "_dibs_charge_id",
    "svea": "_svea_co_deliver_date",
}
PROVIDER_NAMES = {"klarna": "Klarna", "nexi": "Nexi Checkout", "svea": "Svea Checkout"}
# How long an authorisation lasts (§6): Klarna 28 days by default, Nexi 30. Svea's is not
# documented anywhere we could read, so no warning is given for Svea.
AUTHORISATION_DAYS = {"klarna": 28, "nexi": 30}
EXPIRY_WARNING_DAYS = 5

# Notes in the plugins' own (English) words; Svea's success notes also in Swedish (§4.2).
# Kustom Checkout (kco) says "Kustom" where the others say "Klarna".
_CAPTURED_NOTES = (
    re.compile(r"(Klarna|Kustom) order has already been captured", re.I),
    re.compile(r"already delivered in Svea|redan levererad i Svea", re.I),
    re.compile(r"Payment charged in Nexi", re.I),
)
_FAILED_NOTES = (
    re.compile(r"Could not capture (Klarna|Kustom) order", re.I),
    re.compile(r"(Klarna|Kustom) order (ID is missing|could not be captured)", re.I),
    re.compile(r"(Klarna|Kustom) order failed to capture", re.I),
    re.compile(r"Nexi Error", re.I),
    re.compile(r"Error received when trying to deliver order in Svea", re.I),
)
_PENDING_NOTES = (re.compile(r"pending review", re.I),)
_NOTHING_TO_CAPTURE = (
    re.compile(r"No charge needed in Nexi", re.I),
    re.compile(r"capture request was not sent", re.I),
)
# Checks of a capture with no sign yet: seconds after the order was completed.
CHECK_AFTER = (20, 120, 600, 1800, 7200, 21600)


def provider_of(payment_method: str) -> str:
    """``klarna``, ``nexi``, ``svea`` or "" for a payment the portal does not follow."""
    method = (payment_method or "").strip()
    if method in KLARNA_METHODS:
        return "klarna"
    if method in NEXI_METHODS or method.startswith("nets_easy_"):
        return "nexi"
    if method in SVEA_METHODS:
        return "svea"
    return ""


@dataclass(frozen=True)
class Outcome:
    state: str  # a PaymentCapture.State
    reference: str = ""
    words: str = ""


def _meta(order: dict, key: str) -> str:
    for item in order.get("meta_data") or []:
        if isinstance(item, dict) and item.get("key") == key and item.get("value") not in (None, ""):
            return str(item["value"])
    return ""


def plain(note_html: str) -> str:
    """A note as text: the plugins put ``wc_price`` HTML (spans, ``&nbsp;``) in their notes."""
    text = html.unescape(re.sub(r"<[^>]+>", "", note_html or ""))
    return re.sub(r"\s+", " ", text.replace("\xa0", " ")).strip()


def capture_outcome(
    *, provider: str, order: dict, notes: list[dict], since: datetime | None = None
) -> Outcome:
    """What the order says about its capture: read the meta key first, then the plugin's notes
    written since the portal completed the order (newest first, as the notes API gives them)."""
    reference = _meta(order, CAPTURED_META[provider])
    if reference:
        return Outcome(PaymentCapture.State.CAPTURED, reference=reference)
    for note in notes:
        if note.get("customer_note"):
            continue
        written = _note_time(note)
        if since is not None and written is not None and written < since - timedelta(seconds=5):
            break  # older than the completion: about an earlier attempt
        text = plain(str(note.get("note") or ""))
        if any(p.search(text) for p in _CAPTURED_NOTES):
            return Outcome(PaymentCapture.State.CAPTURED, words=text)
        if any(p.search(text) for p in _FAILED_NOTES):
            return Outcome(PaymentCapture.State.FAILED, words=text)
        if any(p.search(text) for p in _PENDING_NOTES):
            return Outcome(PaymentCapture.State.PENDING, words=text)
        if any(p.search(text) for p in _NOTHING_TO_CAPTURE):
            return Outcome(PaymentCapture.State.NOT_CAPTURED, words=text)
    return Outcome(PaymentCapture.State.PENDING)


def _note_time(note: dict) -> datetime | None:
    from integrations.orders.seen import gmt

    return gmt(note.get("date_created_gmt"))


def capture_blocked(*, transfer: OrderTransfer, order: dict) -> str:
    """Why completing this order would capture more than its invoice, or "" when it would not.

    The plugins capture the order's total in the shop as it is when it is completed, in one
    go; a partly delivered or lowered invoice cannot be captured partly from WooCommerce."""
    if transfer.invoice_gross is None:
        return ""
    try:
        total = Decimal(str(order.get("total") or "0"))
    except ArithmeticError:
        return ""
    if total <= transfer.invoice_gross:
        return ""
    return _(
        "Not completed in the shop: completing it would make %(provider)s capture the order's total "
        "%(total)s, but its invoice in Hogia Smart is %(invoiced)s. The plugin cannot capture a part. "
        "Lower the order in the shop (or capture the invoiced amount in the provider's portal), then "
        "complete it there."
    ) % {
        "provider": PROVIDER_NAMES.get(provider_of(transfer.payment_method), transfer.payment_method),
        "total": total,
        "invoiced": transfer.invoice_gross,
    }


def next_check_at(checks: int, *, completed_at: datetime) -> datetime | None:
    """When to read the order again after ``checks`` looks; None after the last one."""
    if checks >= len(CHECK_AFTER):
        return None
    return completed_at + timedelta(seconds=CHECK_AFTER[checks])


def authorisation_expires(transfer: OrderTransfer) -> datetime | None:
    days = AUTHORISATION_DAYS.get(provider_of(transfer.payment_method))
    if not days or transfer.paid_at is None:
        return None
    return transfer.paid_at + timedelta(days=days)


def expiry_warning_due(transfer: OrderTransfer, *, now: datetime | None = None) -> datetime | None:
    """The authorisation's end when it is close enough to warn about, else None."""
    expires = authorisation_expires(transfer)
    if expires is None:
        return None
    now = now or timezone.now()
    return expires if expires - timedelta(days=EXPIRY_WARNING_DAYS) <= now else None


# -- checking, retrying, warning --------------------------------------------------------------------

CHECK_TASK = "integrations.tasks.check_payment_capture"


def capture_check(*, transfer_id: int, woo=None, order: dict | None = None) -> str:
    """Read the order (and its notes) and record what became of its capture; returns the state."""
    capture = (
        PaymentCapture.objects.select_related("transfer", "transfer__shop")
        .filter(transfer_id=transfer_id)
        .first()
    )
    if capture is None or capture.state != PaymentCapture.State.PENDING:
        return capture.state if capture else ""
    transfer = capture.transfer
    with log_context(
        shop=transfer.shop_id, order=transfer.order_number, transfer=transfer.pk, capture=capture.pk
    ):
        return _capture_check(capture, woo=woo, order=order)


def _capture_check(capture: PaymentCapture, *, woo, order: dict | None) -> str:
    from integrations.connections import woocommerce_client
    from integrations.orders import lifecycle

    transfer = capture.transfer
    woo = woo or woocommerce_client(shop=transfer.shop)
    if order is None or "meta_data" not in order:
        order = woo.order_get(transfer.woo_order_id)
    outcome = capture_outcome(
        provider=capture.provider,
        order=order,
        since=capture.completed_at,
        notes=woo.order_notes(transfer.woo_order_id, kind="internal"),
    )
    now = timezone.now()
    checks = capture.checks + 1
    name = PROVIDER_NAMES[capture.provider]
    status = transfer.shop.status_label(str(order.get("status") or ""))
    fields = {"checks": checks, "checked_at": now, "plugin_words": outcome.words or capture.plugin_words}
    Kind = lifecycle.OrderEvent.Kind
    if outcome.state == PaymentCapture.State.PENDING:
        later = next_check_at(checks, completed_at=capture.completed_at)
        if later is not None:
            if outcome.words and outcome.words != capture.plugin_words:
                lifecycle.timeline_add(
                    transfer.pk,
                    Kind.CAPTURE,
                    _(
                        "%(provider)s has not captured yet: “%(words)s” The order is %(status)s in the shop; the portal "
                        "looks again."
                    )
                    % {"provider": name, "words": outcome.words, "status": status},
                )
            PaymentCapture.objects.filter(pk=capture.pk).update(next_check_at=later, **fields)
            return PaymentCapture.State.PENDING
        outcome = Outcome(
            PaymentCapture.State.FAILED if outcome.words else PaymentCapture.State.NOT_CAPTURED,
            words=outcome.words,
        )
    PaymentCapture.objects.filter(pk=capture.pk).update(
        state=outcome.state, reference=outcome.reference, next_check_at=None, **fields
    )
    values = {
        "provider": name,
        "reference": outcome.reference or "–",
        "words": outcome.words,
        "status": status,
    }
    if outcome.state == PaymentCapture.State.CAPTURED:
        lifecycle.timeline_add(
            transfer.pk,
            Kind.CAPTURE,
            _("Payment captured by %(provider)s (capture %(reference)s).") % values,
            reference=outcome.reference,
            provider=capture.provider,
        )
    elif outcome.state == PaymentCapture.State.FAILED:
        lifecycle.timeline_add(
            transfer.pk,
            Kind.NEEDS_ATTENTION,
            _(
                "%(provider)s did not capture the payment: “%(words)s” The order is %(status)s in the shop. Check the "
                "payment in %(provider)s's portal; when it can be captured, use “Retry capture” on the order (the portal "
                "completes it again, once) or complete it in the shop."
            )
            % values,
            provider=capture.provider,
        )
    else:
        lifecycle.timeline_add(
            transfer.pk,
            Kind.WARNING,
            _(
                "%(provider)s shows no capture after the order was completed%(words)s. Is capture on completion switched "
                "on in the plugin's settings (Nexi: “Manage orders”, off by default)? Otherwise capture in %(provider)s's "
                "portal."
            )
            % {**values, "words": f": “{outcome.words}”" if outcome.words else ""},
            provider=capture.provider,
        )
    logger.info("payment capture by %s: %s", capture.provider, outcome.state)
    return outcome.state


def capture_retry(*, capture: PaymentCapture, by: str, woo=None) -> str:
    """Support's "retry capture": complete the order once more, only where the plugin put it on hold
    without capturing (all three plugins look for an earlier capture first). Returns what was done."""
    transfer = capture.transfer
    with log_context(
        shop=transfer.shop_id, order=transfer.order_number, transfer=transfer.pk, capture=capture.pk
    ):
        return _capture_retry(capture, by=by, woo=woo)


def _capture_retry(capture: PaymentCapture, *, by: str, woo) -> str:
    from integrations.connections import woocommerce_client
    from integrations.orders import lifecycle

    transfer = capture.transfer
    woo = woo or woocommerce_client(shop=transfer.shop, read_timeout=60.0)
    order = woo.order_get(transfer.woo_order_id)
    if (
        capture_outcome(provider=capture.provider, order=order, notes=[]).state
        == PaymentCapture.State.CAPTURED
    ):
        PaymentCapture.objects.filter(pk=capture.pk).update(
            state=PaymentCapture.State.PENDING, next_check_at=None
        )
        capture_check(transfer_id=transfer.pk, woo=woo, order=order)
        return _("The payment was captured already; nothing was sent.")
    if order.get("status") != "on-hold":
        return _(
            "Not retried: the order is %(status)s in the shop. The plugin captures only when an order changes "
            "to completed; capture in the provider's portal."
        ) % {"status": transfer.shop.status_label(str(order.get("status") or ""))}
    now = timezone.now()
    PaymentCapture.objects.filter(pk=capture.pk).update(
        state=PaymentCapture.State.PENDING, completed_at=now, checks=0, next_check_at=None
    )
    lifecycle.timeline_add(
        transfer.pk,
        lifecycle.OrderEvent.Kind.RETRY,
        _("%(by)s asked to capture again: the order is completed once more.") % {"by": by},
    )
    answer = woo.order_update(transfer.woo_order_id, {"status": "completed"})
    from integrations.orders.seen import gmt

    answered = str(answer.get("status") or "")
    logger.info("order completed again in the shop to retry its capture (the shop answered %s)", answered)
    OrderTransfer.objects.filter(pk=transfer.pk).update(
        shop_status_written=answered,
        shop_modified_after_write=gmt(answer.get("date_modified_gmt")),
        woo_status=answered,
    )
    return capture_check(transfer_id=transfer.pk, woo=woo, order=answer)


def captures_check_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    """Queue a check for every capture whose next look is due, once (several stagers may call this)."""
    from integrations.taskqueue import task_enqueue

    now = now or timezone.now()
    queued = []
    for capture_id, transfer_id, due in PaymentCapture.objects.filter(
        state=PaymentCapture.State.PENDING, next_check_at__lte=now
    ).values_list("pk", "transfer_id", "next_check_at")[:limit]:
        # Claimed for ten minutes: the check sets the real next time.
        if PaymentCapture.objects.filter(pk=capture_id, next_check_at=due).update(
            next_check_at=now + timedelta(minutes=10)
        ):
            task_enqueue(CHECK_TASK, transfer_id, group="payment-capture")
            queued.append(transfer_id)
    return queued


def payment_expiry_warnings(*, customer_id: int, now: datetime | None = None) -> int:
    """Warn once per order whose payment's authorisation ends within ``EXPIRY_WARNING_DAYS`` and
    that the shop has not completed (so nothing has captured it)."""
    from django.db.models import Q

    from integrations.orders import lifecycle

    now = now or timezone.now()
    warned = 0
    candidates = (
        OrderTransfer.objects.filter(
            shop__customer_id=customer_id,
            payment_expiry_warned_at__isnull=True,
            paid_at__isnull=False,
            paid_at__lte=now - timedelta(days=min(AUTHORISATION_DAYS.values()) - EXPIRY_WARNING_DAYS),
        )
        .filter(
            Q(payment_method__in=KLARNA_METHODS + NEXI_METHODS) | Q(payment_method__startswith="nets_easy_")
        )
        .exclude(woo_status__in=("completed", "cancelled", "refunded", "failed"))
        .exclude(capture__state=PaymentCapture.State.CAPTURED)
        .select_related("shop")
    )
    for transfer in candidates:
        expires = expiry_warning_due(transfer, now=now)
        if expires is None:
            continue
        if not OrderTransfer.objects.filter(pk=transfer.pk, payment_expiry_warned_at__isnull=True).update(
            payment_expiry_warned_at=now
        ):
            continue
        lifecycle.timeline_add(
            transfer.pk,
            lifecycle.OrderEvent.Kind.WARNING,
            _(
                "The payment's authorisation at %(provider)s ends about %(date)s, and the order is not completed in the "
                "shop, so it is not captured. Deliver and complete it before then, or ask %(provider)s to extend the "
                "authorisation; after that date the payment cannot be captured."
            )
            % {
                "provider": PROVIDER_NAMES[provider_of(transfer.payment_method)],
                "date": timezone.localtime(expires).strftime("%Y-%m-%d"),
            },
            expires=expires.isoformat(),
        )
        warned += 1
    return warned
