"""One Redis broker per process (integrations.taskqueue.broker) survives a Redis restart: its
pooled connection is dead afterwards, and the next task must still be queued."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal import stack

SCRIPT = """
import sys
import django
django.setup()
from integrations.taskqueue import broker as process_broker
broker = process_broker()
broker.enqueue("before")
print("queued", broker.queue_size(), flush=True)
sys.stdin.readline()  # the test restarts Redis here
assert process_broker() is broker
broker.enqueue("after")
print("queued", broker.queue_size(), flush=True)
"""


@pytest.mark.skipif(
    not Path(stack.RedisServer.BINARY).exists(), reason="Debian's redis-server is not installed"
)
def test_the_process_broker_queues_after_a_redis_restart(tmp_path):
    redis = stack.RedisServer(tmp_path / "redis")
    redis.start()
    try:
        env = {
            **os.environ,
            "REDIS_URL": redis.url,
            "PORTAL_DATA_DIR": str(tmp_path / "data"),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
        }
        child = subprocess.Popen(
            [sys.executable, "-c", SCRIPT],
            cwd=stack.BASE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout.readline().split() == ["queued", "1"]
            redis.restart()  # no persistence: the first task is gone, the connection is dead
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().split() == ["queued", "1"]
            assert child.wait(timeout=60) == 0
        finally:
            child.kill()
            child.wait()
    finally:
        redis.stop()


@pytest.mark.django_db
def test_a_wake_up_s_success_leaves_no_task_row_and_its_failure_does(monkeypatch):
    """django-q2's monitor keeps no success of the wake-ups (``SUCCESS_NOT_SAVED``): its pruning
    would load up to ``save_limit`` rows for each one. A failure is kept for support."""
    from django.db import transaction
    from django.utils import timezone
    from django_q.models import OrmQ, Task
    from django_q.monitor import save_task

    from integrations.taskqueue import task_enqueue

    # The monitor closes the process's old connections first: not the test's own.
    monkeypatch.setattr("django_q.monitor.close_old_django_connections", lambda: None)
    with transaction.atomic():
        task_enqueue("integrations.tasks.webhook_order", 41, group="webhook-order")
        task_enqueue("integrations.tasks.poll_shop", 42)
    queued = {row.func(): row.task for row in OrmQ.objects.all()}
    for func, success in (
        ("integrations.tasks.webhook_order", True),
        ("integrations.tasks.webhook_order", False),
        ("integrations.tasks.poll_shop", True),
    ):
        package = dict(queued[func], success=success, result="done" if success else "boom")
        package["id"] = f"{package['id']}-{success}"
        save_task(package | {"stopped": timezone.now()}, broker=None)
    assert sorted(Task.objects.values_list("func", "success")) == [
        ("integrations.tasks.poll_shop", True),
        ("integrations.tasks.webhook_order", False),
    ]
