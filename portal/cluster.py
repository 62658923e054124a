"""The task cluster's hosts and their beats: what ``/health/``, the admin home and the sweeper
read to tell a living host from a dead one.

Each ``manage.py runworkers`` process is one host (``hostname:pid``). Its stager loop beats
every few seconds (the main process is alive) and queues a heartbeat task; the host whose
worker runs it beats (its workers take tasks), whichever host queued it: all share one queue.
A host whose workers have not beaten for ``HEALTH_STALE_SECONDS`` is stale: ``/health/``
fails when no host is fresh.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from portal.models import ClusterHost, ClusterWork

logger = logging.getLogger(__name__)

# Set by runworkers before its cluster forks: a worker knows which host it belongs to.
HOST_ENV = "PORTAL_CLUSTER_HOST"
# Rows of hosts stopped or dead this long ago are removed when a host starts (a restart is a new pid).
FORGET_AFTER = timedelta(days=7)


def stale_after() -> timedelta:
    return timedelta(seconds=settings.HEALTH_STALE_SECONDS)


def host_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def host_start(*, name: str, now: datetime | None = None) -> ClusterHost:
    now = now or timezone.now()
    forgotten = ClusterHost.objects.filter(beat_at__lt=now - FORGET_AFTER)
    ClusterWork.objects.filter(host__in=forgotten.values("name")).delete()
    forgotten.delete()
    ClusterWork.objects.filter(host=name).delete()
    host, _created = ClusterHost.objects.update_or_create(
        name=name, defaults={"started_at": now, "beat_at": now, "workers_beat_at": None, "stopped_at": None}
    )
    return host


def host_beat(*, name: str, now: datetime | None = None) -> None:
    """The host's main process is alive (its stager loop turned)."""
    ClusterHost.objects.filter(name=name, stopped_at__isnull=True).update(beat_at=now or timezone.now())


def host_workers_beat(*, name: str, now: datetime | None = None) -> bool:
    """One of the host's workers ran a task: the host takes work from the queue."""
    now = now or timezone.now()
    return bool(ClusterHost.objects.filter(name=name, stopped_at__isnull=True).update(workers_beat_at=now))


def host_stop(*, name: str, now: datetime | None = None) -> None:
    """A clean stop (SIGTERM, Ctrl-C): the host no longer counts, and nobody waits for it."""
    ClusterHost.objects.filter(name=name).update(stopped_at=now or timezone.now())


def hosts_stale(*, now: datetime | None = None) -> list[str]:
    """Hosts that did not stop cleanly and whose main process has not beaten for ``stale_after``:
    whatever work they held is free again."""
    now = now or timezone.now()
    return list(
        ClusterHost.objects.filter(stopped_at__isnull=True, beat_at__lt=now - stale_after()).values_list(
            "name", flat=True
        )
    )


@dataclass(frozen=True)
class HostSeen:
    name: str
    beat_seconds_ago: float
    workers_beat_seconds_ago: float | None
    stopped: bool
    fresh: bool  # running, and its workers beat within stale_after


def hosts_seen(*, now: datetime | None = None) -> list[HostSeen]:
    """The hosts seen in the last day (running ones first), with their ages."""
    now = now or timezone.now()
    limit = stale_after().total_seconds()
    rows = ClusterHost.objects.filter(Q(beat_at__gte=now - timedelta(days=1))).order_by(
        "stopped_at", "-beat_at"
    )[:50]
    seen = []
    for host in rows:
        workers_age = (now - host.workers_beat_at).total_seconds() if host.workers_beat_at else None
        seen.append(
            HostSeen(
                name=host.name,
                beat_seconds_ago=(now - host.beat_at).total_seconds(),
                workers_beat_seconds_ago=workers_age,
                stopped=host.stopped_at is not None,
                fresh=host.stopped_at is None and workers_age is not None and workers_age < limit,
            )
        )
    return seen


# -- work held by a host ------------------------------------------------------------------------

# The tasks whose work holds a claim that outlives a dead worker: the first argument is what is
# claimed. An order transfer's claim lasts the transfer's time limit + 30 s; a customer's
# catalogue sync's 15 minutes (prices and stock waited that long after a host died mid-sync).
TRANSFER_TASK = "integrations.tasks.transfer_order"
CATALOG_TASK = "integrations.tasks.sync_catalog"
CLAIMING_TASKS = (TRANSFER_TASK, CATALOG_TASK)


def work_started(*, task: dict) -> None:
    """In a worker, before a task runs (django-q2's ``pre_execute``): note a claiming task."""
    name = os.environ.get(HOST_ENV)
    if not name or task.get("func") not in CLAIMING_TASKS or not task.get("args"):
        return
    pid = os.getpid()
    # A worker runs one task at a time: an older row of this process is a task that ended unseen.
    ClusterWork.objects.filter(host=name, worker_pid=pid).delete()
    ClusterWork.objects.create(
        host=name,
        worker_pid=pid,
        func=task["func"],
        object_id=int(task["args"][0]),
        started_at=timezone.now(),
    )


def work_finished(*, task: dict) -> None:
    """In a worker, after a task ran or failed or hit its time limit (``post_execute_in_worker``)."""
    name = os.environ.get(HOST_ENV)
    if name and task.get("func") in CLAIMING_TASKS:
        ClusterWork.objects.filter(host=name, worker_pid=os.getpid()).delete()


def work_signals_connect() -> None:
    """Called by runworkers before its cluster forks: the workers inherit the receivers. A failure
    to note the work is logged, never in the way of the task itself."""
    from django_q.signals import post_execute_in_worker, pre_execute

    def started(sender, task, **kwargs):
        try:
            work_started(task=task)
        except Exception:
            logger.exception("could not note the running task %s", task.get("func"))

    def finished(sender, task, **kwargs):
        try:
            work_finished(task=task)
        except Exception:
            logger.exception("could not note the end of task %s", task.get("func"))

    pre_execute.connect(started, weak=False, dispatch_uid="portal.cluster.work_started")
    post_execute_in_worker.connect(finished, weak=False, dispatch_uid="portal.cluster.work_finished")


def dead_hosts_work_release(*, now: datetime | None = None) -> list[int]:
    """The order transfers and catalogue syncs a dead host's workers held: freed now for another
    host to take over, so they wait about ``stale_after`` after the host died instead of their
    claims' full length. Returns the order transfers freed (the stager wakes them at once; a
    freed catalogue sync runs at its next turn, within 5 minutes).

    A host is dead when it stopped (then its workers are gone: a stop that had to kill them left
    their rows) or its beats are stale. Only the claims its own tasks made are freed
    (``transfers_release``, ``catalog_claims_release``), never a later one of another worker.
    """
    from integrations.catalog.sync import catalog_claims_release
    from integrations.orders.wakeups import transfers_release

    now = now or timezone.now()
    dead = ClusterHost.objects.filter(
        Q(stopped_at__isnull=False) | Q(beat_at__lt=now - stale_after()),
        name__in=ClusterWork.objects.values("host"),
    )
    released: list[int] = []
    for host in dead:
        rows = list(ClusterWork.objects.filter(host=host.name))
        held = {
            func: [(row.object_id, row.started_at) for row in rows if row.func == func]
            for func in CLAIMING_TASKS
        }
        freed = transfers_release(tasks=held[TRANSFER_TASK], now=now)
        syncs = catalog_claims_release(tasks=held[CATALOG_TASK], now=now)
        if freed or syncs:
            logger.warning(
                "host %s is gone (last seen %s): claim(s) freed for another host: order transfers %s, "
                "catalogue syncs of customers %s",
                host.name,
                host.beat_at.isoformat(),
                freed,
                syncs,
            )
        released += freed
        ClusterWork.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return released
