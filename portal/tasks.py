"""Tasks of the portal layer itself."""

from __future__ import annotations

import os

from django.utils import timezone

from portal.cluster import HOST_ENV, host_workers_beat


def heartbeat(host: str = "") -> str:
    """Proves that a host's workers take and run tasks: queued by each host's stager every few
    seconds. The host that *ran* it is the one that beats (a worker knows its host from the
    environment runworkers gave it): with one queue for all hosts, any host may take it."""
    name = os.environ.get(HOST_ENV) or host
    beaten = host_workers_beat(name=name) if name else False
    return f"{name or 'no host'} {'beat' if beaten else 'not running'} at {timezone.now().isoformat()}"
