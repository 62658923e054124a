"""/health/ and the admin home tell a running task cluster from a dead one, and runworkers stops
within its grace period on SIGTERM (issue 12: /health/ said "fine" for 180 s after the cluster
died, and the cluster's main process twice hung after SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import OperationalError, connection
from django.test import override_settings
from django.utils import timezone
from django_q.tasks import async_task

from portal.cluster import host_start, host_stop, host_workers_beat
from portal.dashboard import cluster_hosts_tally
from portal.models import ClusterHost
from tests.workers import running_workers, wait_until

STALE = 30


def health(client) -> tuple[int, dict]:
    response = client.get("/health/")
    return response.status_code, response.json()


@pytest.mark.django_db
def test_health_fails_when_no_host_runs(client):
    status, body = health(client)
    assert status == 503
    assert body["status"] == "failing" and body["task_cluster"] == "not seen" and body["hosts"] == []


@pytest.mark.django_db
def test_health_counts_only_running_hosts_whose_workers_beat_lately(client):
    now = timezone.now()
    host_start(name="a:1", now=now - timedelta(minutes=5))
    host_workers_beat(name="a:1", now=now - timedelta(seconds=STALE + 1))  # stale
    host_start(name="b:2", now=now)
    host_workers_beat(name="b:2", now=now)
    host_stop(name="b:2")  # stopped cleanly: no longer counts
    assert health(client)[0] == 503
    host_start(name="c:3", now=now)
    assert health(client)[0] == 503  # its main process beats, but no worker has run a task yet
    host_workers_beat(name="c:3")
    status, body = health(client)
    assert status == 200 and body["status"] == "ok"
    by_name = {host["name"]: host for host in body["hosts"]}
    assert by_name["c:3"]["fresh"] and by_name["c:3"]["workers_beat_seconds_ago"] < 5
    assert not by_name["a:1"]["fresh"] and by_name["a:1"]["workers_beat_seconds_ago"] >= STALE
    assert by_name["b:2"]["stopped"] and not by_name["b:2"]["fresh"]


@pytest.mark.django_db
def test_health_fails_when_the_database_does_not_answer(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    status, body = health(client)
    assert status == 503 and body["database"] == "unreachable"


@pytest.mark.django_db
@override_settings(HEALTH_STALE_SECONDS=5)
def test_the_stale_limit_is_a_setting(client):
    host_start(name="a:1")
    host_workers_beat(name="a:1", now=timezone.now() - timedelta(seconds=6))
    assert health(client)[0] == 503


@pytest.mark.django_db
def test_the_admin_home_shows_the_hosts_and_is_red_when_none_is_fresh():
    tally = cluster_hosts_tally()
    assert (tally.count, tally.css) == (0, "red")
    host_start(name="web-1:42")
    host_workers_beat(name="web-1:42")
    tally = cluster_hosts_tally()
    assert (tally.count, tally.css) == (1, "ok") and "web-1:42 0 s" in tally.label


def workers_fresh() -> bool:
    return ClusterHost.objects.filter(
        stopped_at__isnull=True, workers_beat_at__gte=timezone.now() - timedelta(seconds=STALE)
    ).exists()


@pytest.mark.django_db(transaction=True)
def test_health_follows_a_real_host_up_and_killed(client, tmp_path):
    assert health(client)[0] == 503
    with running_workers(tmp_path) as workers:
        wait_until(lambda: health(client)[0] == 200, seconds=15, what="health ok", workers=workers)
        workers.kill(0)
        killed = time.monotonic()
        wait_until(
            lambda: health(client)[0] == 503, seconds=STALE + 10, what="health failing", workers=workers
        )
        assert time.monotonic() - killed >= STALE - 12  # the last beat was at most 10 s before the kill
    assert ClusterHost.objects.get().stopped_at is None  # a killed host could not say so


# Idle workers stop in about 4 s (django-q2's pusher and monitor each finish their last look at
# the queue, then the workers their 1-second tasks); 20 s leaves room for a loaded 2-core machine.
STOP_WITHIN = 20


@pytest.mark.django_db(transaction=True)
def test_ten_sigterms_in_a_row_each_stop_the_host_within_the_grace(tmp_path):
    times = []
    for attempt in range(10):
        with running_workers(tmp_path) as workers:
            process = workers.processes[0]
            wait_until(workers_fresh, seconds=30, what=f"workers beat (attempt {attempt})", workers=workers)
            for _ in range(4):
                async_task("time.sleep", 1)
            time.sleep(0.5 + attempt * 0.3)  # the signal lands in different moments of the loop
            started = time.monotonic()
            if attempt % 2:  # as systemd's default KillMode sends it: to every process of the host
                os.killpg(process.pid, signal.SIGTERM)
            else:  # to the main process only (systemd's KillMode=mixed, compose, a person's kill)
                process.send_signal(signal.SIGTERM)
            process.wait(timeout=STOP_WITHIN + 30)
            times.append(round(time.monotonic() - started, 1))
            assert process.returncode == 0, workers.output()
        ClusterHost.objects.update(stopped_at=timezone.now())  # the next attempt waits for its own beat
    assert max(times) <= STOP_WITHIN, times
    print(f"SIGTERM to exit, seconds: {times}")


@pytest.mark.django_db(transaction=True)
def test_a_task_running_past_the_grace_is_killed_and_the_host_still_exits(tmp_path):
    with running_workers(tmp_path, env={"RUNWORKERS_STOP_GRACE": "3"}) as workers:
        process = workers.processes[0]
        wait_until(workers_fresh, seconds=30, what="workers beat", workers=workers)
        async_task("time.sleep", 120)
        time.sleep(3)  # a worker has taken it
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        took = time.monotonic() - started
        assert took < 3 + 10, workers.output()
        assert "did not stop within 3 s: killing it" in workers.output()
    host = ClusterHost.objects.get()
    assert host.stopped_at is not None


class _StuckEvent:
    """A stop event whose ``set()`` never returns, as multiprocessing's does when a process that
    was waiting on it died."""

    def set(self) -> None:
        threading.Event().wait()


class _Sentinel:
    """A cluster's sentinel as ``_cluster_stop`` sees it, played by a real process."""

    def __init__(self, process: subprocess.Popen):
        self.process, self.pid = process, process.pid

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def join(self, timeout: float | None = None) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass


def test_a_stop_event_that_never_sets_does_not_hang_the_host(monkeypatch, caplog):
    from portal.management.commands import runworkers

    monkeypatch.setattr(runworkers, "STOP_EVENT_SET_SECONDS", 0.5)
    sentinel = _Sentinel(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]))
    command = runworkers.Command()
    command.signals = [signal.SIGTERM]
    started = time.monotonic()
    try:
        command._cluster_stop(SimpleNamespace(sentinel=sentinel, stop_event=_StuckEvent()), grace=60)
        took = time.monotonic() - started
        ended = sentinel.process.wait(timeout=5)  # killed by _cluster_stop, not by this test
    finally:
        sentinel.process.kill()
    assert took < 10  # not the 60 s grace, and not for good
    assert ended == -signal.SIGKILL
    assert "stop event could not be set" in caplog.text
