"""Putting work on django-q2's queue: after commit, each kind of task with its own time limit.

A task is only a wake-up (the state lives in our tables), so it is sent after the
transaction that made the work commits. Each kind of task gets the time it may need:
a transfer a few remote calls, a poll or a catalogue sync pages of them. Every limit
stays below the broker's ``retry`` (``Q_CLUSTER``), so the broker never hands out a
second copy of a task that is still running.
"""

from __future__ import annotations

import os
import threading

from django.conf import settings
from django.db import transaction

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


# Wake-ups by the thousand whose outcome our own tables hold (the delivery's row, the order's, the
# host's beat): django-q2 keeps no success row for them, only their failures. Its monitor prunes
# the successes of each function (``save_limit``) by loading and locking up to that many rows for
# every result it saves: after a burst of deliveries a host's monitor fell 20 s behind, and its
# recycled workers could not stop meanwhile (``benchmark scale``, ``make test-faults`` case 7).
SUCCESS_NOT_SAVED = frozenset(
    {"integrations.tasks.webhook_order", "integrations.tasks.transfer_order", "portal.tasks.heartbeat"}
)


def _send(func: str, args: tuple, *, group: str, broker) -> None:
    from django_q.tasks import async_task

    options = {"timeout": time_limit(func), "broker": broker}
    if func in SUCCESS_NOT_SAVED:
        options["save"] = False
    async_task(func, *args, group=group or func.rsplit(".", 1)[-1], q_options=options)


def task_enqueue(func: str, *args, group: str = "") -> None:
    """Queue ``func(*args)`` with the current transaction.

    With the ORM broker in the same database the task is written in the transaction itself
    (a transactional outbox: it exists exactly when the work it wakes for does, and costs no
    transaction of its own); with another broker (Redis) it is sent once the transaction
    commits, so that no worker runs before the rows it reads exist.
    """
    if broker_in_this_database() and transaction.get_connection().in_atomic_block:
        _send(func, args, group=group, broker=broker())
    else:
        transaction.on_commit(lambda: _send(func, args, group=group, broker=broker()))


class _Pipeline:
    """A broker for ``async_task`` that collects Redis pushes into one pipeline: a batch of
    tasks costs one round trip instead of one each."""

    def __init__(self, redis_broker):
        self.list_key = redis_broker.list_key
        self.pipe = redis_broker.connection.pipeline(transaction=False)

    def enqueue(self, task) -> None:
        self.pipe.rpush(self.list_key, task)


def tasks_send_now(func: str, args_list: list[tuple], *, group: str = "") -> None:
    """Send one task per ``args`` at once, outside any transaction's commit: the caller stores
    that they were sent only after this returns (an outbox). Redis gets them in one pipeline."""
    if not args_list:
        return
    if broker_in_this_database():
        for args in args_list:
            _send(func, args, group=group, broker=broker())
        return
    pipeline = _Pipeline(broker())
    for args in args_list:
        _send(func, args, group=group, broker=pipeline)
    pipeline.pipe.execute()
