"""Waking a worker for an order: at once when it is queued, on time when its retry is due.

Queue messages are only wake-ups; the order's row says what is due. These send them:

- the stager (``deliveries_send``, every second), for the order deliveries the intake stored
  with the Redis broker: the stored delivery is the outbox, its task is sent from here;
- ``transfer_wake`` right after an order is queued (after commit);
- the **stager** (``transfers_wake_due``, every second in ``manage.py runworkers``):
  each retry when it falls due, and each claim whose worker stopped, exactly once per
  due time, so the broker's backlog never grows with waiting orders;
- the stager again (``transfers_wake_lost``) when the broker has nothing queued: an
  order due for a while whose wake-up is not in the broker lost it (a host that died
  held it in memory: the ORM broker would hand it out again only after ``retry``, a
  Redis broker never);
- the stager again (``deliveries_wake_lost``, with the lost wake-ups): an order delivery the
  intake accepted whose task never recorded the order (the task was in Redis when it
  restarted, or in the memory of a host that died): without this, only the next order poll
  would find the order;
- the **sweeper** (``transfers_sweep``, every minute from the schedule): the backstop
  for all of it where no stager runs;
- a host that died (``portal.cluster``): the claims its workers held are freed
  (``transfers_release``) once its beats are stale, and the stager takes them over at
  once instead of when they would run out.

Initial syncs are woken here too (``initial_syncs_wake_stale``): a running job whose
worker died, or whose next chunk's message was lost, has nobody else to resume it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from integrations.models import OrderTransfer, WebhookDelivery
from integrations.taskqueue import task_enqueue, tasks_send_now

logger = logging.getLogger(__name__)

State = OrderTransfer.State
TRANSFER_TASK = "integrations.tasks.transfer_order"
# A wake-up still waiting in a busy broker is not sent again before this.
WAKE_AGAIN_AFTER = timedelta(minutes=10)
# With nothing queued in the broker, a wake-up this old that has not led to a claim was lost.
LOST_AFTER = timedelta(seconds=30)
# An accepted order delivery without its order this long is sent to a worker again; older ones
# are left to the order poll, which reads every order changed since its last run.
DELIVERY_LOST_WINDOW = timedelta(hours=1)
WEBHOOK_TASK = "integrations.tasks.webhook_order"


def transfer_wake(*, transfer_id: int, woken_already: bool = False) -> None:
    """Wake a worker for this order (with the transaction that queued it); if the wake-up is
    lost, the stager or the sweeper sends another. ``woken_already``: the row's ``woken_at``
    was written with it."""
    if not woken_already:
        OrderTransfer.objects.filter(pk=transfer_id).update(woken_at=timezone.now())
    task_enqueue(TRANSFER_TASK, transfer_id, group="order-transfer")


def _due(now: datetime) -> Q:
    return Q(state=State.QUEUED, next_attempt_at__lte=now) | Q(state=State.TRANSFERRING, locked_until__lt=now)


def _not_woken_for_this_time() -> Q:
    """Not woken since the order fell due (its retry time, or its claim's end)."""
    return (
        Q(woken_at__isnull=True)
        | Q(state=State.QUEUED, woken_at__lt=F("next_attempt_at"))
        | Q(state=State.TRANSFERRING, woken_at__lt=F("locked_until"))
    )


def _wake(condition: Q, *, now: datetime, limit: int) -> list[int]:
    ids = list(
        OrderTransfer.objects.filter(condition)
        .order_by("next_attempt_at", "created_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    woken = []
    for transfer_id in ids:
        # One conditional write per order: of two stagers (two hosts) only one wakes it.
        if OrderTransfer.objects.filter(condition, pk=transfer_id).update(woken_at=now):
            task_enqueue(TRANSFER_TASK, transfer_id, group="order-transfer")
            woken.append(transfer_id)
    return woken


def transfers_wake_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Wake each order whose retry time has come, or whose worker stopped, once per due time."""
    now = now or timezone.now()
    return _wake(_due(now) & _not_woken_for_this_time(), now=now, limit=limit)


def transfers_sweep(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """The backstop: due orders whose last wake-up is long gone get another (and the stager's
    work, when no stager runs)."""
    now = now or timezone.now()
    lost = Q(woken_at__isnull=True) | Q(woken_at__lt=now - WAKE_AGAIN_AFTER) | _not_woken_for_this_time()
    woken = _wake(_due(now) & lost, now=now, limit=limit)
    if woken:
        logger.info("sweeper woke %d order transfer(s)", len(woken))
    return woken


def broker_idle() -> bool:
    """True when the broker has no task waiting to be taken (tasks being run do not count)."""
    from integrations.taskqueue import broker

    return broker().queue_size() == 0


def transfers_wake_lost(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Due orders whose wake-up is older than ``LOST_AFTER``, when the broker is idle: it held
    no message for them any more, so they get a new one. Never adds to a backlog."""
    now = now or timezone.now()
    if not broker_idle():
        return []
    woken = _wake(_due(now) & Q(woken_at__lt=now - LOST_AFTER), now=now, limit=limit)
    if woken:
        logger.warning(
            "%d order transfer(s) had lost their wake-up (a host stopped?): woken again", len(woken)
        )
    deliveries_wake_lost(now=now, limit=limit)
    return woken


def transfers_release(*, tasks: list[tuple[int, datetime]], now: datetime | None = None) -> list[int]:
    """Free the claims that a dead host's transfer tasks held (each: the order transfer's id, and
    when its task started): their ``locked_until`` ends now, so the stager wakes them and a
    worker takes them over (``take_over`` looks in Hogia Smart first for what the dead one made).

    Only the dead task's own claim is freed: one taken after the task started (the claim sets
    ``woken_at``) and before that claim could have run out. Another worker can claim the order
    only once the dead one's claim ran out (at least ``claim_seconds`` after it was taken), so
    a claim of that age or younger is left alone.
    """
    from integrations.orders.lifecycle import claim_seconds

    now = now or timezone.now()
    lease = timedelta(seconds=claim_seconds())
    released = []
    for transfer_id, started_at in tasks:
        if OrderTransfer.objects.filter(
            pk=transfer_id,
            state=State.TRANSFERRING,
            woken_at__gte=started_at,
            woken_at__lt=started_at + lease,
            locked_until__gt=now,
        ).update(locked_until=now):
            released.append(transfer_id)
    return released


INITIAL_SYNC_TASK = "integrations.tasks.run_initial_sync"


def initial_syncs_wake_stale(*, now: datetime | None = None) -> list[int]:
    """Running initial syncs that made no progress for ``STALE_AFTER`` (their worker died, or the
    message for their next chunk was lost): queued again, when the broker has nothing waiting
    (a message for them may still be in a backlog). The job's own claim lets only one worker
    run it."""
    from integrations.catalog.initial_sync import STALE_AFTER
    from integrations.models import InitialSync

    now = now or timezone.now()
    if not broker_idle():
        return []
    ids = list(
        InitialSync.objects.filter(
            state=InitialSync.State.RUNNING, heartbeat_at__lt=now - STALE_AFTER
        ).values_list("pk", flat=True)[:50]
    )
    for job_id in ids:
        task_enqueue(INITIAL_SYNC_TASK, job_id, group="initial-sync")
    if ids:
        logger.warning("%d initial sync(s) had stopped making progress: queued again", len(ids))
    return ids


def deliveries_wake_lost(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Order deliveries accepted more than ``LOST_AFTER`` ago whose order has no row yet: their
    task (``webhook_order``) was lost, since recording the order is the task's first step. Each
    order's latest such delivery is sent again (recording is idempotent: two stagers sending the
    same one cost a second look, not a second order). Called with the broker idle only, so a
    delivery still waiting in a backlog is never sent twice."""
    from integrations.intake import ORDER_TOPICS

    now = now or timezone.now()
    recorded = OrderTransfer.objects.filter(shop_id=OuterRef("shop_id"), woo_order_id=OuterRef("resource_id"))
    lost = (
        WebhookDelivery.objects.filter(
            outcome=WebhookDelivery.Outcome.ACCEPTED,
            topic__in=ORDER_TOPICS,
            resource_id__isnull=False,
            received_at__gte=now - DELIVERY_LOST_WINDOW,
            received_at__lt=now - LOST_AFTER,
            task_pending=False,  # not lost: waiting for ``deliveries_send``
        )
        .exclude(Exists(recorded))
        .order_by("-pk")
        .values_list("pk", "shop_id", "resource_id")[: limit * 4]
    )
    latest: dict[tuple[int, int], int] = {}
    for delivery_id, shop_id, resource_id in lost:
        latest.setdefault((shop_id, resource_id), delivery_id)
    sent = list(latest.values())[:limit]
    for delivery_id in sent:
        task_enqueue(WEBHOOK_TASK, delivery_id, group="webhook-order")
    if sent:
        logger.warning("%d accepted order deliveries had lost their task: sent to a worker again", len(sent))
    return sent


def deliveries_send(*, limit: int = 500, batches: int = 10) -> int:
    """Send the tasks of the order deliveries the intake stored as pending (with the Redis broker
    the web process only stores the row; this is the outbox's other half), up to ``batches``
    batches of ``limit``; how many were sent.

    Each batch's rows are locked (``SKIP LOCKED``: two hosts' stagers take different rows), their
    tasks pushed in one pipeline, and the rows marked sent in the same transaction. A push that
    fails leaves them pending for the next tick; a commit that fails after the push sends them
    again at the next tick, which costs a second look and no second order (recording is
    idempotent)."""
    pending = WebhookDelivery.objects.filter(task_pending=True)
    # A look first, outside any transaction: with the ORM broker nothing is ever pending, and on
    # SQLite a transaction takes the one write lock (IMMEDIATE), every second, from every stager.
    if not pending.exists():
        return 0
    sent = 0
    for _ in range(batches):
        with transaction.atomic():
            ids = list(
                pending.select_for_update(skip_locked=True)
                .order_by("pk")
                .values_list("pk", flat=True)[:limit]
            )
            if not ids:
                break
            tasks_send_now(WEBHOOK_TASK, [(delivery_id,) for delivery_id in ids], group="webhook-order")
            WebhookDelivery.objects.filter(pk__in=ids).update(task_pending=False)
        sent += len(ids)
        if len(ids) < limit:
            break
    return sent
