"""Support's actions on orders (admin): retry now, release held orders, credits booked by hand.

Each is a transition of the lifecycle; remote calls come before the transaction that
records their result, never inside it.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.money import money_text
from integrations.clients.woocommerce import WooCommerceClient
from integrations.connections import woocommerce_client
from integrations.models import OrderEvent, OrderTransfer, RefundCredit
from integrations.orders import lifecycle
from integrations.orders.identity import refund_sequence_id
from integrations.orders.quota import held_release_forced
from integrations.orders.seen import CANCELLED_STATUSES
from integrations.orders.wakeups import transfer_wake

logger = logging.getLogger(__name__)

State = OrderTransfer.State
Kind = OrderEvent.Kind


def transfers_retry(*, transfers, by: str) -> int:
    """Put orders that need attention (or wait for a retry, or were not transferred) back in the
    queue, due now."""
    count = 0
    for transfer_id in transfers.filter(state__in=lifecycle.TRANSITIONS["retry"].sources).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            if lifecycle.transition(
                transfer_id,
                "retry",
                next_attempt_at=timezone.now(),
                attention="",
                event=(Kind.RETRY, _("Retry requested by %(by)s.") % {"by": by}, {}),
            ):
                transfer_wake(transfer_id=transfer_id)
                count += 1
    return count


def transfers_release_held(*, transfers, by_user, reason: str) -> int:
    """Support's explicit release of held orders, over the quota, with who and why."""
    return held_release_forced(transfers=transfers, by_user=by_user, reason=reason)


def refunds_mark_booked_by_hand(
    *, transfer: OrderTransfer, by: str, woo: WooCommerceClient | None = None
) -> int:
    """Support booked the missing credits in Hogia Smart themselves (a refund by amount only, or
    the credit of an order cancelled after its invoice): record that, so the order stops waiting.

    Returns the credits recorded. The shop is read first; only then is anything written.
    """
    if not transfer.hogia_invoice_id:
        return 0
    woo = woo or woocommerce_client(shop=transfer.shop)
    refunds = woo.order_refunds(transfer.woo_order_id)
    marked = 0
    with transaction.atomic():
        done = dict(transfer.credits.values_list("woo_refund_id", "amount"))
        for refund in refunds:
            refund_id = int(refund["id"])
            if refund_id not in done:
                amount = Decimal(str(refund.get("amount") or 0))
                _by_hand(
                    transfer,
                    woo_refund_id=refund_id,
                    amount=amount,
                    message=_("Refund %(refund)s marked as credited by hand by %(by)s.")
                    % {"refund": refund_id, "by": by},
                )
                done[refund_id] = amount
                marked += 1
        rest = (transfer.total or Decimal("0")) - sum(done.values(), Decimal("0"))
        if transfer.woo_status in CANCELLED_STATUSES and 0 not in done and rest > 0:
            # Cancelled after the invoice: what no refund covers was credited by hand too.
            _by_hand(
                transfer,
                woo_refund_id=0,
                amount=rest,
                message=_("The rest of the order (%(rest)s) was marked as credited by hand by %(by)s.")
                % {"rest": money_text(rest, transfer.currency), "by": by},
            )
            marked += 1
        if transfer.woo_status in CANCELLED_STATUSES:
            lifecycle.transition(
                transfer.pk, "credited_by_hand", last_error="", attention="", next_attempt_at=None
            )
        else:
            lifecycle.transition(
                transfer.pk, "booked_by_hand", last_error="", attention="", next_attempt_at=None
            )
    return marked


def _by_hand(transfer: OrderTransfer, *, woo_refund_id: int, amount: Decimal, message: str) -> None:
    RefundCredit.objects.create(
        transfer=transfer,
        woo_refund_id=woo_refund_id,
        amount=amount,
        booked_by_hand=True,
        sequence_id=refund_sequence_id(order_sequence=transfer.sequence_id, woo_refund_id=woo_refund_id),
    )
    lifecycle.timeline_add(transfer.pk, Kind.REFUND, message, refund_id=woo_refund_id)
