"""``manage.py runworkers``: this host's task cluster (django-q2) and its order stager.

django-q2 runs tasks as they come but has no way to run one at a given time (its
scheduler looks every 30 s and counts in minutes). An order whose retry is due in 19
seconds must be tried in 19 seconds, not in 11 minutes; so beside the cluster this
process runs the *stager*: every second it wakes the orders whose retry time has come,
or whose worker stopped, once per due time (``integrations.orders.wakeups``). Several
hosts may each run one: a conditional write lets only one of them wake an order.

When it starts it catches up with what happened while nothing ran: every shop is
polled at once (orders placed meanwhile are not left for the next 5-minute poll),
and due or held orders are looked at.
"""

from __future__ import annotations

import logging
import time

from django import db
from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger("portal.stager")

STAGER_INTERVAL = 1.0  # seconds between looks for due retries
SLOW_INTERVAL = 10.0  # seconds between looks for held orders the quota allows, and lost wake-ups


class Command(BaseCommand):
    help = "Run this host's task cluster and the order stager (Ctrl-C or SIGTERM stops both)."

    def add_arguments(self, parser):
        parser.add_argument("--no-catch-up", action="store_true", help="do not poll the shops when starting")

    def handle(self, *args, no_catch_up: bool = False, **options):
        from django_q.cluster import Cluster

        settings.SECRET_KEY  # noqa: B018 - django-q2 signs tasks with it: fail now, not later
        db.connections.close_all()  # the cluster forks: no connection may be shared with it
        cluster = Cluster()
        cluster.start()
        if not no_catch_up:
            self._catch_up()
        last_slow_look = 0.0
        while cluster.sentinel is not None and cluster.sentinel.is_alive():
            started = time.monotonic()
            try:
                slow = started - last_slow_look >= SLOW_INTERVAL
                self._stage(slow=slow)
                if slow:
                    last_slow_look = started
            except Exception:  # the database is away for a moment: the next tick tries again
                logger.exception("stager tick failed")
                db.connections.close_all()
            time.sleep(max(0.05, STAGER_INTERVAL - (time.monotonic() - started)))
        db.connections.close_all()

    @staticmethod
    def _stage(*, slow: bool) -> None:
        from integrations.orders.quota import held_release_all
        from integrations.orders.wakeups import transfers_wake_due, transfers_wake_lost
        from integrations.tasks import status_work_wake_due

        transfers_wake_due()
        if slow:
            transfers_wake_lost()
            held_release_all()
            status_work_wake_due()

    @staticmethod
    def _catch_up() -> None:
        from integrations.orders.wakeups import transfers_sweep
        from integrations.tasks import poll_all_shops

        try:
            shops = poll_all_shops()
            woken = transfers_sweep()
            logger.info(
                "catching up after the start: %d shop poll(s) queued, %d order(s) woken", shops, len(woken)
            )
        except Exception:
            logger.exception("catching up after the start failed; the schedules will do it")
