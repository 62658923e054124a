"""One rate budget per Hogia Smart API client, shared by every company, shop, flow and process.

Hogia Smart answers 429 beyond 25 requests in a sliding 5 s window, counted per API
client (client id) however many companies that client serves: every shop of every
company reached with one client id draws on one budget. The window lives in the
database, one row per API client holding the times of the calls in the current window,
so that shops syncing in several workers never overrun it together. A caller takes a
slot before each request and sleeps just long enough when there is none.

A 429 can still happen (another program on the same client id, clock skew): the client
then waits as the server says (``Retry-After``) and the retry takes a new slot.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from django.db import IntegrityError, transaction

from integrations.models import HogiaConnection, HogiaRateWindow

# Our clock reads a call's time before the server sees the call, so the server's window
# holds one call too many when the oldest call was slower to arrive than the newest;
# the window is lengthened by this share of itself against that. A share, not a fixed
# figure: 3 % is the 0.15 s used so far on Hogia's 5 s window, and windows shorter than
# Hogia's serve only the sandboxes on loopback (tests, the catalog benchmark's 50 / 2 s),
# where arrival times differ by milliseconds and a fixed 0.15 s would give up 7.5 % of a
# 2 s window for nothing.
SAFETY_SHARE = 0.03

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def hogia_rate_key(*, connection: HogiaConnection) -> str:
    """The API client a connection calls Hogia Smart as: its token address and client id.

    Normalised (lower case, no trailing slash) because two spellings of one client sharing
    a budget only costs time, while two budgets for one client cost 429s. Never the secret:
    a new secret is the same client.
    """
    auth_base = connection.auth_base.strip().rstrip("/").lower()
    return f"{auth_base} {connection.client_id.strip().lower()}"


def _process_lock(key: str) -> threading.Lock:
    # Threads of one process queue here instead of on the database row.
    with _process_locks_guard:
        return _process_locks.setdefault(key, threading.Lock())


def rate_slot_take(
    *,
    client_key: str,
    requests: int,
    seconds: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait for a free slot in the API client's window and take it; returns the seconds waited.

    ``client_key`` comes from ``hogia_rate_key``. ``requests`` of 0 means no budget: returns at once.
    """
    if requests <= 0 or seconds <= 0:
        return 0.0
    waited = 0.0
    while True:
        with _process_lock(client_key):
            wait = _try_take(client_key, requests=requests, seconds=seconds, now=clock())
        if wait <= 0:
            return waited
        sleep(wait)
        waited += wait


def _try_take(key: str, *, requests: int, seconds: float, now: float) -> float:
    """Take a slot and return 0, or return how long until the oldest call leaves the window."""
    window = seconds * (1 + SAFETY_SHARE)
    with transaction.atomic():
        row = HogiaRateWindow.objects.select_for_update().filter(client_key=key).first()
        if row is None:
            try:
                with transaction.atomic():
                    HogiaRateWindow.objects.create(client_key=key, calls=[now])
                return 0.0
            except IntegrityError:  # another process created it first
                row = HogiaRateWindow.objects.select_for_update().get(client_key=key)
        calls = [t for t in row.calls if t > now - window]
        if len(calls) >= requests:
            calls.sort()
            return max(0.001, calls[len(calls) - requests] + window - now)
        calls.append(now)
        row.calls = calls
        row.save(update_fields=["calls"])
        return 0.0


def hogia_rate_gate(*, connection: HogiaConnection) -> Callable[[], None] | None:
    """The ``rate_gate`` for a client of this connection (None when the budget is switched off)."""
    requests, seconds = connection.rate_limit_requests, connection.rate_limit_seconds
    if not requests or not seconds:
        return None
    client_key = hogia_rate_key(connection=connection)

    def gate() -> None:
        rate_slot_take(client_key=client_key, requests=requests, seconds=seconds)

    return gate
