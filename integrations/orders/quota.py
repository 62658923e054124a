"""The monthly quota and the order's state move together, in one transaction.

Billing decides (``billing.services``: claim, release, return); this module makes the
order's transition in the same transaction, so that a crash can never leave an order
held while billing has released it, or counted while the order was dropped. The
sweeper's ``quota_reconcile`` repairs what an older version (or a hand edit) left
diverged, and logs each repair.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from billing.models import Customer
from billing.selectors import customers_with_waiting_places, quota_has_room, quota_usage, quota_waiting_keys
from billing.services import (
    quota_claim,
    quota_count_invoiced,
    quota_release,
    quota_release_forced,
    quota_return,
)
from integrations.logcontext import log_context
from integrations.models import OrderEvent, OrderTransfer, SyncLogEntry
from integrations.orders import lifecycle
from integrations.orders.lifecycle import Claim
from integrations.orders.wakeups import transfer_wake
from integrations.services import sync_log

logger = logging.getLogger(__name__)

State = OrderTransfer.State
Kind = OrderEvent.Kind


def arrived_at(transfer: OrderTransfer):
    """When the order was placed (the order of arrival the quota keeps), else first seen."""
    return transfer.order_created_gmt or transfer.created_at


def _requeue_released(*, customer_id: int, keys, message: str) -> int:
    """Move the released orders on, oldest first, inside the caller's transaction."""
    keys = list(keys)
    if not keys:
        return 0
    transfers = {
        t.quota_key: t
        for t in OrderTransfer.objects.filter(
            shop__customer_id=customer_id, quota_key__in=keys, state=State.HELD
        )
    }
    now = timezone.now()
    moved = 0
    for position, key in enumerate(keys):
        transfer = transfers.get(key)
        if transfer is None:
            continue
        # Microseconds apart, so that the stager and the workers take them in arrival order.
        due = now + timedelta(microseconds=position)
        if lifecycle.transition(
            transfer.pk, "release", next_attempt_at=due, event=(Kind.RELEASED, message, {})
        ):
            transfer_wake(transfer_id=transfer.pk)
            moved += 1
    return moved


def quota_take(claimed: Claim, *, today: date | None = None) -> bool:
    """Take the order's place just before its invoice is created.

    True: go on and create it (the claim was renewed for the remote call). False: the
    order is now held. Older held orders that get places first are released in the same
    transaction. ``ClaimLost`` rolls all of it back.
    """
    transfer = claimed.transfer
    customer = transfer.shop.customer
    with transaction.atomic():
        result = quota_claim(
            customer=customer, order_key=transfer.quota_key, arrived_at=arrived_at(transfer), on=today
        )
        _requeue_released(
            customer_id=customer.pk,
            keys=result.released,
            message=_("Released: the monthly quota allows it now (held orders go first, oldest first)."),
        )
        if not result.granted:
            lifecycle.transition_or_lose(
                transfer.pk,
                "hold",
                token=claimed.token,
                event=(
                    Kind.HELD,
                    _(
                        "Held: %(used)d of %(limit)d orders this month are used. It is transferred when "
                        "the quota allows (the 1st of next month, a larger package, or support's release), "
                        "before any newer order."
                    )
                    % {"used": result.used, "limit": result.limit},
                    {"used": result.used, "limit": result.limit},
                ),
            )
            return False
        lifecycle.claim_renew(claimed)
    return True


def quota_give_back(transfer: OrderTransfer, *, keep_place: bool) -> None:
    """The attempt created no invoice: inside the caller's transaction, give back its place
    (or keep it reserved, when the order will simply be tried again)."""
    if transfer.hogia_invoice_id:
        return  # the invoice exists: the order counts
    quota_return(customer=transfer.shop.customer, order_key=transfer.quota_key, keep_place=keep_place)


def quota_count_found_invoice(transfer: OrderTransfer, *, today: date | None = None) -> None:
    """An invoice an earlier attempt made was found: the order counts, whatever the limit."""
    quota_count_invoiced(
        customer=transfer.shop.customer,
        order_key=transfer.quota_key,
        arrived_at=arrived_at(transfer),
        on=today,
    )


def held_release(*, customer: Customer, on: date | None = None) -> int:
    """Release the customer's held orders while the quota allows (the 1st, a larger package)."""
    if not quota_has_room(customer=customer, on=on):
        return 0  # looked at every few seconds: no write lock taken while the month is full
    with transaction.atomic():
        keys = quota_release(customer=customer, on=on)
        return _requeue_released(
            customer_id=customer.pk, keys=keys, message=_("Released: the monthly quota allows it now.")
        )


def held_release_all(*, on: date | None = None) -> int:
    """Every customer with held orders: released as far as each quota allows."""
    customers = Customer.objects.filter(shops__order_transfers__state=State.HELD).distinct()
    return sum(held_release(customer=customer, on=on) for customer in customers)


def held_release_forced(*, transfers, by_user, reason: str) -> int:
    """Support's explicit release of held orders, over the quota, with who and why."""
    by_customer: dict[int, list[OrderTransfer]] = {}
    for transfer in transfers.filter(state=State.HELD).select_related("shop__customer"):
        by_customer.setdefault(transfer.shop.customer_id, []).append(transfer)
    released = 0
    for held in by_customer.values():
        customer = held[0].shop.customer
        with transaction.atomic():
            keys = quota_release_forced(
                customer=customer, order_keys=[t.quota_key for t in held], by_user=by_user, reason=reason
            )
            released += _requeue_released(
                customer_id=customer.pk,
                keys=keys,
                message=_("Released by %(by)s: %(reason)s") % {"by": by_user, "reason": reason},
            )
    return released


# -- the sweeper's reconciliation --------------------------------------------------------------

# Where an order without an invoice may hold a quota place of each kind; elsewhere it diverged.
_PLACES_OK = {
    "held": {State.HELD, State.QUEUED, State.TRANSFERRING},  # an attempt asks the quota again
    "reserved": {State.QUEUED, State.TRANSFERRING},
    "counted": {State.TRANSFERRING},
}
# The kinds of place in the quota (``OrderUsage.Status``) as the sweeper's notes name them.
QUOTA_PLACES = {
    "counted": pgettext_lazy("quota place", "counted"),
    "reserved": pgettext_lazy("quota place", "reserved"),
    "held": pgettext_lazy("quota place", "held"),
}
# Orders changed more recently than this are left alone: an attempt may be between its steps.
SETTLE = timedelta(minutes=10)


def _repaired(transfer: OrderTransfer, message: str) -> None:
    lifecycle.timeline_add(transfer.pk, Kind.REPAIRED, message)
    sync_log(
        customer=transfer.shop.customer,
        shop=transfer.shop,
        level=SyncLogEntry.Level.WARNING,
        message=_("Order %(order)s: %(message)s") % {"order": transfer.order_number, "message": message},
        object_type="order",
        object_ref=transfer.order_number,
    )
    with log_context(shop=transfer.shop_id, order=transfer.order_number, transfer=transfer.pk):
        logger.warning("quota reconcile: %s", message)


def quota_reconcile(*, customer: Customer, recent: timedelta = timedelta(days=2)) -> int:
    """Bring orders' states and their quota places back in step; returns the repairs made.

    - an order whose invoice exists counts (counted now if it did not);
    - held here, but released (or without any place) in billing: queued, so its next
      attempt takes its place;
    - a place of an order that ended without an invoice (dropped, needs attention): given
      back; a counted place of an order waiting for a retry becomes reserved again.
    Looked at: every order still on its way (few), every order with a held or reserved
    place, and orders that settled within ``recent`` (the runs every 15 minutes overlap).
    Orders changed in the last ``SETTLE`` are left for the next run.
    """
    now = timezone.now()
    rows = (
        OrderTransfer.objects.filter(shop__customer=customer, updated_at__lt=now - SETTLE)
        .exclude(quota_key="")
        .select_related("shop", "shop__customer")
    )
    waiting = quota_waiting_keys(customer=customer)
    transfers = list(
        rows.filter(updated_at__gte=now - recent)
        | rows.filter(state__in=[State.HELD, State.QUEUED, State.NEEDS_ATTENTION, State.TRANSFERRING])
        | rows.filter(quota_key__in=waiting)
    )
    places = quota_usage(customer=customer, order_keys=[t.quota_key for t in transfers])
    repairs = 0
    for transfer in {t.pk: t for t in transfers}.values():
        place = places.get(transfer.quota_key)
        if transfer.hogia_invoice_id or transfer.state in (State.INVOICED, State.CREDITED):
            if place != "counted":
                quota_count_found_invoice(transfer)
                _repaired(transfer, _("Its invoice exists but the quota had not counted it: counted now."))
                repairs += 1
            continue
        if transfer.state == State.HELD and place != "held":
            with transaction.atomic():
                if lifecycle.transition(transfer.pk, "release", next_attempt_at=now):
                    transfer_wake(transfer_id=transfer.pk)
            _repaired(
                transfer,
                _(
                    "Held here, but the quota had a %(place)s place for it: queued, so that its "
                    "next attempt takes its place."
                )
                % {"place": QUOTA_PLACES[place]}
                if place
                else _(
                    "Held here, but the quota had no place for it: queued, so that its next attempt takes "
                    "its place."
                ),
            )
            repairs += 1
        elif place is not None and transfer.state not in _PLACES_OK[place]:
            keep = place == "counted" and transfer.state == State.QUEUED
            with transaction.atomic():
                quota_return(customer=customer, order_key=transfer.quota_key, keep_place=keep)
            values = {"state": transfer.get_state_display(), "place": QUOTA_PLACES[place]}
            _repaired(
                transfer,
                (
                    _(
                        "It is %(state)s without an invoice but had a %(place)s place in the quota: "
                        "the place stays reserved for its retry."
                    )
                    if keep
                    else _(
                        "It is %(state)s without an invoice but had a %(place)s place in the quota: "
                        "the place is given back."
                    )
                )
                % values,
            )
            repairs += 1
    return repairs


def quota_reconcile_all() -> int:
    active = Customer.objects.filter(
        shops__order_transfers__updated_at__gte=timezone.now() - timedelta(days=2)
    ).distinct()
    customers = {c.pk: c for c in [*active, *customers_with_waiting_places()]}.values()
    return sum(quota_reconcile(customer=customer) for customer in customers)
