"""``manage.py runworkers``: this host's task cluster (django-q2) and its order stager.

django-q2 runs tasks as they come but has no way to run one at a given time (its
scheduler looks every 30 s and counts in minutes). An order whose retry is due in 19
seconds must be tried in 19 seconds, not in 11 minutes; so beside the cluster this
process runs the *stager*: every second it wakes the orders whose retry time has come,
or whose worker stopped, once per due time, and sends the tasks of the order deliveries the
web processes stored for it with the Redis broker (``integrations.orders.wakeups``). Several
hosts may each run one: a conditional write lets only one of them wake an order.

The host beats (``portal.cluster``): the loop writes its own beat every few seconds and
queues a heartbeat task that a worker runs, so ``/health/`` knows that tasks run, and the
other hosts know when this one died and take back the work it held.

When it starts it catches up with what happened while nothing ran: every shop is
polled at once (orders placed meanwhile are not left for the next 5-minute poll),
and due or held orders are looked at.

SIGTERM or Ctrl-C stops it: the running tasks may finish within their time limit, then
whatever is left of the cluster is killed (its work comes back through the sweeper), so
the process always exits within ``--stop-grace`` seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from django import db
from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger("portal.stager")

STAGER_INTERVAL = 1.0  # seconds between looks for due retries
SLOW_INTERVAL = 10.0  # seconds between looks for held orders the quota allows, and lost wake-ups
BEAT_INTERVAL = 5.0  # seconds between this host's beats (a host is stale after HEALTH_STALE_SECONDS)
# Seconds between heartbeat tasks for the workers to run. With one queue for all hosts a host
# beats only for the heartbeats its own workers happen to take: at one every 10 s, two idle hosts
# left one without any for 30 s (stale) about once in 64 windows ((1/2)^6); at 5 s, (1/2)^12.
HEARTBEAT_TASK_INTERVAL = 5.0
# multiprocessing's Event.set() waits until every process waiting on the event confirms that it
# woke; one that died while waiting (the cluster's sentinel, when SIGTERM went to the whole
# process group) never does, and the host hung for good (a CI run, seen with py-spy). Setting
# the stop event gives up after this long and the cluster is killed instead.
STOP_EVENT_SET_SECONDS = 5.0


def stop_grace_default() -> int:
    """Seconds a stop may take: ``RUNWORKERS_STOP_GRACE`` from the environment, or the longest task
    time limit (a running task may finish) plus the guard's 3 s and the cluster's own shutdown.
    A service manager's stop timeout (systemd ``TimeoutStopSec``, compose ``stop_grace_period``)
    must be longer."""
    from integrations.taskqueue import time_limit

    if os.environ.get("RUNWORKERS_STOP_GRACE"):
        return int(os.environ["RUNWORKERS_STOP_GRACE"])
    funcs = [
        "integrations.tasks.transfer_order",
        "integrations.tasks.poll_shop",
        "integrations.tasks.sync_catalog",
    ]
    return max(time_limit(func) for func in funcs) + 15


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # The name (field 2) may hold spaces: the fields after its closing parenthesis.
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Command(BaseCommand):
    help = "Run this host's task cluster and the order stager (Ctrl-C or SIGTERM stops both)."

    def add_arguments(self, parser):
        parser.add_argument("--no-catch-up", action="store_true", help="do not poll the shops when starting")
        parser.add_argument(
            "--stop-grace",
            type=float,
            default=None,
            help="seconds running tasks may take to finish after SIGTERM before they are killed "
            "(default: $RUNWORKERS_STOP_GRACE, or the longest task time limit + 15)",
        )

    def handle(self, *args, no_catch_up: bool = False, stop_grace: float | None = None, **options):
        from django_q.cluster import Cluster

        from portal.cluster import HOST_ENV, host_name, host_start, host_stop, work_signals_connect

        settings.SECRET_KEY  # noqa: B018 - django-q2 signs tasks with it: fail now, not later
        self.name = host_name()
        os.environ[HOST_ENV] = self.name  # the cluster's workers inherit it: a heartbeat names its host
        host_start(name=self.name)
        work_signals_connect()  # the workers note the claims they hold, for when this host dies
        db.connections.close_all()  # the cluster forks: no connection may be shared with it
        cluster = Cluster()
        # django-q2's own handler stops the cluster inside the signal handler: it would wait for the
        # workers in the middle of whatever this loop was doing (a transaction the workers then wait
        # for), with no deadline. Here a signal only asks; the loop stops between ticks.
        self.signals: list[int] = []
        signal.signal(signal.SIGTERM, self._ask_to_stop)
        signal.signal(signal.SIGINT, self._ask_to_stop)
        cluster.start()
        if not no_catch_up and not self.signals:
            self._catch_up()
        last_slow_look = last_beat = last_heartbeat = 0.0
        while not self.signals and cluster.sentinel is not None and cluster.sentinel.is_alive():
            started = time.monotonic()
            try:
                if started - last_beat >= BEAT_INTERVAL:
                    self._beat()
                    last_beat = started
                if started - last_heartbeat >= HEARTBEAT_TASK_INTERVAL:
                    self._heartbeat_task()
                    last_heartbeat = started
                slow = started - last_slow_look >= SLOW_INTERVAL
                self._stage(slow=slow)
                if slow:
                    last_slow_look = started
            except Exception:  # the database is away for a moment: the next tick tries again
                logger.exception("stager tick failed")
                db.connections.close_all()
            time.sleep(max(0.05, STAGER_INTERVAL - (time.monotonic() - started)))
        grace = stop_grace if stop_grace is not None else stop_grace_default()
        self._cluster_stop(cluster, grace=grace)
        try:
            host_stop(name=self.name)
        except Exception:  # the database is away: the host goes stale instead
            logger.exception("could not record the host's stop")
        db.connections.close_all()

    def _ask_to_stop(self, signum, frame) -> None:
        self.signals.append(signum)

    def _beat(self) -> None:
        from portal.cluster import host_beat

        host_beat(name=self.name)

    def _heartbeat_task(self) -> None:
        from integrations.taskqueue import task_enqueue

        task_enqueue("portal.tasks.heartbeat", self.name, group="heartbeat")

    def _cluster_stop(self, cluster, *, grace: float) -> None:
        """Let the cluster finish its running tasks for up to ``grace`` seconds (the host beats
        meanwhile: nobody takes its work over), then kill what is left of it."""
        sentinel = cluster.sentinel
        if sentinel is None or not sentinel.is_alive():
            return
        logger.info("stopping the task cluster (running tasks may take up to %.0f s)", grace)
        deadline = time.monotonic() + grace
        setter = threading.Thread(target=cluster.stop_event.set, name="cluster-stop", daemon=True)
        setter.start()
        setter.join(STOP_EVENT_SET_SECONDS)
        if setter.is_alive():
            logger.warning(
                "the task cluster's stop event could not be set within %.0f s (a process waiting on "
                "it died): killing the cluster",
                STOP_EVENT_SET_SECONDS,
            )
            deadline = time.monotonic()
        # A second signal (Ctrl-C twice) means: do not wait.
        while sentinel.is_alive() and time.monotonic() < deadline and len(self.signals) < 2:
            sentinel.join(timeout=min(BEAT_INTERVAL, max(0.1, deadline - time.monotonic())))
            try:
                self._beat()
            except Exception:
                db.connections.close_all()
        if sentinel.is_alive():
            left = descendants(sentinel.pid)
            logger.warning(
                "the task cluster did not stop within %.0f s: killing it and %d process(es) below it; "
                "their work comes back through the sweeper",
                grace,
                len(left),
            )
            for pid in [sentinel.pid, *left]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            sentinel.join(timeout=10)
        logger.info("task cluster stopped")

    @staticmethod
    def _stage(*, slow: bool) -> None:
        from integrations.orders.quota import held_release_all
        from integrations.orders.wakeups import deliveries_send, transfers_wake_due, transfers_wake_lost
        from integrations.tasks import status_work_wake_due

        deliveries_send()
        transfers_wake_due()
        if slow:
            from portal.cluster import dead_hosts_work_release

            if dead_hosts_work_release():
                transfers_wake_due()  # at once, not at the next tick
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
