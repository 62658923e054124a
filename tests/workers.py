"""Real worker processes for tests: ``manage.py runworkers`` on the test database.

Used by tests marked ``transaction=True`` (their rows are committed, so other processes
see them). The processes share the test process's data folder, hence its SECRET_KEY,
which signs django-q2's tasks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from integrations.dburl import database_url as url_of

MANAGE = Path(__file__).resolve().parents[1] / "manage.py"


def database_url() -> str:
    """The URL of the database this test runs on, for another process."""
    return url_of(connection.settings_dict)


class Workers:
    def __init__(self, processes: list[subprocess.Popen], logs: list[Path]):
        self.processes = processes
        self.logs = logs

    def kill(self, index: int) -> None:
        """SIGKILL one host's whole process group: cluster, workers and stager die at once."""
        os.killpg(self.processes[index].pid, signal.SIGKILL)
        self.processes[index].wait(timeout=10)

    def output(self) -> str:
        return "\n".join(
            f"--- worker host {i}\n" + log.read_text(errors="replace")[-6000:]
            for i, log in enumerate(self.logs)
        )


@contextmanager
def running_workers(tmp_path: Path, *, count: int = 1, env: dict | None = None, catch_up: bool = False):
    """``count`` hosts' worth of ``runworkers``, each in its own process group."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
        **(env or {}),
    }
    processes, logs = [], []
    connection.close()  # SQLite: no open transaction of ours may hold a lock the workers wait for
    try:
        for index in range(count):
            log = tmp_path / f"workers-{index}.log"
            logs.append(log)
            command = [sys.executable, str(MANAGE), "runworkers"] + ([] if catch_up else ["--no-catch-up"])
            processes.append(
                subprocess.Popen(
                    command,
                    env=environment,
                    stdout=log.open("w"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        yield Workers(processes, logs)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _unsettled_orders() -> str:
    from integrations.models import OrderTransfer

    rows = OrderTransfer.objects.exclude(state__in=["invoiced", "filtered", "credited"]).values_list(
        "pk", "state", "attempts", "next_attempt_at", "locked_until", "woken_at", "last_error"
    )
    return "\n".join(str(row) for row in rows[:40])


def wait_until(
    condition, *, seconds: float, every: float = 0.25, what: str = "", workers: Workers | None = None
):
    """Poll ``condition()`` until it is truthy; fail with the orders not settled and the workers'
    output if it never is."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(
        f"not within {seconds} s: {what}\nnow {time.strftime('%H:%M:%S')}; orders not "
        f"settled:\n{_unsettled_orders()}\n" + (workers.output() if workers else "")
    )
