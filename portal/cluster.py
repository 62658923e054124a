"""The task cluster's hosts and their beats: what ``/health/``, the admin home and the sweeper
read to tell a living host from a dead one.

Each ``manage.py runworkers`` process is one host (``hostname:pid``). Its stager loop beats
every few seconds (the main process is alive) and queues a heartbeat task that one of the
host's own workers runs (the workers take tasks). A host whose workers have not beaten for
``HEALTH_STALE_SECONDS`` is stale: ``/health/`` fails when no host is fresh.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from portal.models import ClusterHost

# Set by runworkers before its cluster forks: a worker knows which host it belongs to.
HOST_ENV = "PORTAL_CLUSTER_HOST"
# Rows of hosts stopped or dead this long ago are removed when a host starts (a restart is a new pid).
FORGET_AFTER = timedelta(days=7)


def stale_after() -> timedelta:
    return timedelta(seconds=getattr(settings, "HEALTH_STALE_SECONDS", 30))


def host_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def host_start(*, name: str, now: datetime | None = None) -> ClusterHost:
    now = now or timezone.now()
    ClusterHost.objects.filter(beat_at__lt=now - FORGET_AFTER).delete()
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
