"""The one owner of an order transfer's state: the table of transitions and the only writes.

Every change of ``OrderTransfer.state`` is a transition from this table: one
``UPDATE … WHERE id = … AND state IN (sources) [AND claim_token = token]`` that says
whether it happened. A worker's claim carries a fresh token; the transitions that
finish an attempt are *fenced* by it, so a worker whose claim expired and was taken
over can no longer write over the new owner's result. What moves with a state (the
order's timeline, its quota place) is written in the same transaction by the caller,
which wraps the transition in ``transaction.atomic()`` and uses ``ClaimLost`` to roll
the rest back when the transition did not happen.

README's "Order lifecycle" draws this table.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.logcontext import log_context
from integrations.models import OrderEvent, OrderTransfer

logger = logging.getLogger(__name__)

State = OrderTransfer.State


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str
    fenced: bool  # only the worker holding the claim (its token) may make it
    why: str


def _t(sources: tuple[str, ...], target: str, why: str, *, fenced: bool = False) -> Transition:
    return Transition(frozenset(sources), target, fenced, why)


RECEIVED, FILTERED, QUEUED, TRANSFERRING, HELD, NEEDS_ATTENTION, INVOICED, CREDITED = (
    State.RECEIVED,
    State.FILTERED,
    State.QUEUED,
    State.TRANSFERRING,
    State.HELD,
    State.NEEDS_ATTENTION,
    State.INVOICED,
    State.CREDITED,
)

TRANSITIONS: dict[str, Transition] = {
    # What the shop sent (webhook or poll), before any invoice.
    "filter": _t((RECEIVED, FILTERED), FILTERED, "seen in a status that does not transfer"),
    "queue": _t((RECEIVED, FILTERED), QUEUED, "seen in one of the shop's transfer statuses"),
    "cancel_held": _t((HELD,), FILTERED, "a held order left the transfer statuses (cancelled)"),
    "reopen": _t((INVOICED,), QUEUED, "refunded or cancelled in the shop after its invoice"),
    # A worker's attempt.
    "claim": _t((QUEUED,), TRANSFERRING, "a worker takes a due order"),
    "take_over": _t((TRANSFERRING,), TRANSFERRING, "the previous worker's claim ran out"),
    "retry_later": _t((TRANSFERRING,), QUEUED, "a remote system is unavailable", fenced=True),
    "hold": _t((TRANSFERRING,), HELD, "the monthly quota is used up", fenced=True),
    "drop": _t(
        (TRANSFERRING,), FILTERED, "no longer in a transfer status, or transfer switched off", fenced=True
    ),
    "needs_attention": _t((TRANSFERRING,), NEEDS_ATTENTION, "a person has to act", fenced=True),
    "invoiced": _t((TRANSFERRING,), INVOICED, "invoice (and every credit) created", fenced=True),
    "credited": _t((TRANSFERRING,), CREDITED, "cancelled or refunded in full, and credited", fenced=True),
    # The quota, support and the sweeper.
    "release": _t((HELD,), QUEUED, "the quota allows it (1st of the month, larger package, support)"),
    "retry": _t((NEEDS_ATTENTION, QUEUED, FILTERED), QUEUED, "support asks for a new attempt now"),
    "booked_by_hand": _t((NEEDS_ATTENTION,), INVOICED, "support booked the missing credits by hand"),
    "credited_by_hand": _t((NEEDS_ATTENTION,), CREDITED, "support credited the cancelled order by hand"),
}

# States in which the order's invoice is still to come and nothing is running.
WAITING = (RECEIVED, QUEUED, HELD)


class ClaimLost(Exception):
    """A fenced transition did not happen: the claim expired and another worker has the order."""


def claim_seconds() -> int:
    """How long a claim lasts: longer than a transfer task may run, so a live worker keeps it."""
    return int(getattr(settings, "ORDER_TRANSFER_TIME_LIMIT", 150)) + 30


def transition(
    transfer_id: int,
    name: str,
    *,
    token: uuid.UUID | None = None,
    event: tuple[str, str, dict] | None = None,
    where: Q | None = None,
    now: datetime | None = None,
    **fields,
) -> bool:
    """Make transition ``name`` if the order is in one of its source states; True if it happened.

    ``event`` (kind, message, details) goes on the order's timeline only when it did.
    ``where`` narrows the condition further (e.g. "due"). Leaving ``transferring`` clears
    the claim unless ``fields`` say otherwise.
    """
    rule = TRANSITIONS[name]
    now = now or timezone.now()
    rows = OrderTransfer.objects.filter(pk=transfer_id, state__in=rule.sources)
    if rule.fenced:
        rows = rows.filter(claim_token=token)
    if where is not None:
        rows = rows.filter(where)
    if rule.target != TRANSFERRING:
        fields.setdefault("claim_token", None)
        fields.setdefault("locked_until", None)
    with transaction.atomic(savepoint=False):
        done = rows.update(state=rule.target, updated_at=now, **fields) == 1
        if done and event is not None:
            kind, message, details = event
            OrderEvent.objects.create(
                transfer_id=transfer_id, kind=kind, message=message, details=details, created_at=now
            )
    if done:
        # The transfer's id also where no flow set a context (support's retry, the sweeper).
        with log_context(transfer=transfer_id):
            logger.info("%s -> %s (%s)", name, rule.target, event[1][:120] if event else rule.why)
    return done


def transfer_create(
    name: str, *, event: tuple[str, str, dict] | None = None, now: datetime | None = None, **fields
) -> OrderTransfer:
    """A new order's row, born ``received`` and already through transition ``name`` (one
    INSERT: the intake's hot path). Only a transition that leaves ``received`` may be named."""
    rule = TRANSITIONS[name]
    if RECEIVED not in rule.sources or rule.fenced:
        raise ValueError(f"a new order cannot start with {name!r}")
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):
        transfer = OrderTransfer.objects.create(state=rule.target, created_at=now, updated_at=now, **fields)
        if event is not None:
            kind, message, details = event
            OrderEvent.objects.create(
                transfer_id=transfer.pk, kind=kind, message=message, details=details, created_at=now
            )
    with log_context(shop=transfer.shop_id, order=transfer.order_number, transfer=transfer.pk):
        logger.info("received -> %s: %s (%s)", rule.target, name, event[1][:120] if event else rule.why)
    return transfer


def transition_or_lose(transfer_id: int, name: str, **kwargs) -> None:
    """``transition`` for use inside a transaction whose other writes must not outlive a lost claim."""
    if not transition(transfer_id, name, **kwargs):
        raise ClaimLost(f"order transfer {transfer_id}: {name} did not happen (claim lost or state moved)")


@dataclass(frozen=True)
class Claim:
    transfer: OrderTransfer
    token: uuid.UUID
    taken_over: bool  # the previous worker stopped without finishing


def claim(transfer_id: int, *, now: datetime | None = None) -> Claim | None:
    """Take a due order for one attempt (or take over one whose worker's claim ran out).

    None when it is not due, or another worker holds it. Attempts are counted here, so a
    worker that dies mid-attempt still counts.
    """
    now = now or timezone.now()
    token = uuid.uuid4()
    lease = {
        "claim_token": token,
        "locked_until": now + timedelta(seconds=claim_seconds()),
        "attempts": F("attempts") + 1,
        "woken_at": now,
    }
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    taken_over = False
    if not transition(transfer_id, "claim", where=due, now=now, **lease):
        expired = Q(locked_until__isnull=True) | Q(locked_until__lt=now)
        if not transition(transfer_id, "take_over", where=expired, now=now, **lease):
            return None
        taken_over = True
    transfer = OrderTransfer.objects.select_related("shop", "shop__customer").get(pk=transfer_id)
    return Claim(transfer=transfer, token=token, taken_over=taken_over)


def claim_renew(claimed: Claim, *, now: datetime | None = None) -> None:
    """Extend the claim before a long remote call; ClaimLost if it was taken over meanwhile."""
    now = now or timezone.now()
    renewed = OrderTransfer.objects.filter(
        pk=claimed.transfer.pk, state=TRANSFERRING, claim_token=claimed.token
    ).update(locked_until=now + timedelta(seconds=claim_seconds()))
    if not renewed:
        raise ClaimLost(f"order transfer {claimed.transfer.pk}: claim taken over")


def claim_record(claimed: Claim, **fields) -> None:
    """Write what the attempt made (the invoice's id and number) while it still holds the order."""
    written = OrderTransfer.objects.filter(
        pk=claimed.transfer.pk, state=TRANSFERRING, claim_token=claimed.token
    ).update(updated_at=timezone.now(), **fields)
    if not written:
        raise ClaimLost(f"order transfer {claimed.transfer.pk}: claim taken over")
    for name, value in fields.items():
        setattr(claimed.transfer, name, value)


def mermaid() -> str:
    """The table as a diagram (README's is this text)."""
    lines = ["stateDiagram-v2", "    [*] --> received"]
    for name, rule in TRANSITIONS.items():
        for source in sorted(rule.sources):
            lines.append(f"    {source} --> {rule.target}: {name}")
    return "\n".join(lines)


def timeline_add(transfer_id: int, kind: str, message: str, **details) -> OrderEvent:
    """A step on the order's timeline that changes no state (a buyer matched, a warning)."""
    return OrderEvent.objects.create(transfer_id=transfer_id, kind=kind, message=message, details=details)
