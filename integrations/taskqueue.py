"""Putting work on django-q2's queue: after commit, each kind of task with its own time limit.

A task is only a wake-up (the state lives in our tables), so it is sent after the
transaction that made the work commits. Each kind of task gets the time it may need:
a transfer a few remote calls, a poll or a catalogue sync pages of them. Every limit
stays below the broker's ``retry`` (``Q_CLUSTER``), so the broker never hands out a
second copy of a task that is still running.
"""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

_brokers: dict[int, object] = {}
_brokers_lock = threading.Lock()


def time_limit(func: str) -> int:
    """Seconds a task may run before django-q2 stops it."""
    limits = {
        "integrations.tasks.transfer_order": settings.ORDER_TRANSFER_TIME_LIMIT,
        "integrations.tasks.webhook_order": settings.ORDER_TRANSFER_TIME_LIMIT,
        "integrations.tasks.poll_shop": settings.ORDER_POLL_TIME_LIMIT,
        "integrations.tasks.sync_catalog": settings.CATALOG_SYNC_TIME_LIMIT,
        "integrations.tasks.run_initial_sync": settings.CATALOG_SYNC_TIME_LIMIT,
        "integrations.tasks.preview_initial_sync": settings.CATALOG_SYNC_TIME_LIMIT,
    }
    return int(limits.get(func, settings.Q_CLUSTER["timeout"]))


def broker_in_this_database() -> bool:
    """django-q2's ORM broker on the default database: its queue rows are ours to commit."""
    q_cluster = settings.Q_CLUSTER
    return not q_cluster.get("redis") and q_cluster.get("orm") == "default"


def broker():
    """This process's broker, made once. django-q2's ``async_task`` makes a new one for every
    task when none is given: for Redis a new client with its own connection pool, so a new TCP
    connection (and a look-up of redis-py's version in the installed packages) per task, which
    ``benchmark scale`` found to be two thirds of a webhook's CPU in gunicorn. Redis's client is
    thread-safe; keyed by process id because the cluster forks its workers (redis-py's pool also
    starts afresh in a forked child)."""
    pid = os.getpid()
    broker = _brokers.get(pid)
    if broker is None:
        from django_q.brokers import get_broker

        with _brokers_lock:
            broker = _brokers.get(pid)
            if broker is None:
                broker = _brokers[pid] = get_broker()
    return broker


def task_enqueue(func: str, *args, group: str = "", resent_if_lost: bool = False) -> None:
    """Queue ``func(*args)`` with the current transaction.

    With the ORM broker in the same database the task is written in the transaction itself
    (a transactional outbox: it exists exactly when the work it wakes for does, and costs no
    transaction of its own); with another broker (Redis) it is sent once the transaction
    commits, so that no worker runs before the rows it reads exist.

    ``resent_if_lost``: the stager sends this task again when it is lost (an accepted webhook
    delivery: ``deliveries_wake_lost``), so a broker that cannot be reached after the commit
    is logged and not raised: the caller's work is stored, and its answer (a webhook's 200)
    stays true.
    """
    from django_q.tasks import async_task

    def send():
        async_task(
            func,
            *args,
            group=group or func.rsplit(".", 1)[-1],
            q_options={"timeout": time_limit(func), "broker": broker()},
        )

    def send_or_log():
        try:
            send()
        except Exception:
            logger.exception("task %s%r could not be queued; the stager sends it again", func, args)

    if broker_in_this_database() and transaction.get_connection().in_atomic_block:
        send()
    else:
        transaction.on_commit(send_or_log if resent_if_lost else send)
