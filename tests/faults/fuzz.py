"""The fuzz case's webhook bodies, made by Hypothesis in a process of their own.

Making 10,000 bodies costs 20-45 s of one core, so the stack fixture starts this process
(``fuzz_start``) once the stack is up, at low priority: it works while the first cases wait on
claims and lost wake-ups, and the fuzz case only reads the file. The bodies are the property
test's (tests/integrations/test_order_payload_property.py): the real store's orders mutated,
order-shaped objects, random JSON and bytes; derandomised, so every run sends the same ones.
The case gives each fixture order's id one of its shop's real orders (``body_for``).
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

from portal.stack import BASE_DIR

_LEADING_ID = re.compile(rb'^\{"id":(\d+)')


def bodies_make(count: int) -> list[tuple[bytes, str, bool]]:
    """(body, topic, signed) for ``count`` examples: 3 in 4 signed with the shop's secret."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.integrations import test_order_payload_property as prop

    made: list[tuple[bytes, str, bool]] = []

    @settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        body=prop.bodies,
        topic=st.sampled_from(["order.created", "order.updated"]),
        signed=st.integers(0, 3).map(bool),
    )
    def draw(body: bytes, topic: str, signed: bool) -> None:
        made.append((body, topic, signed))

    draw()
    return made[:count]


def fixture_ids() -> list[int]:
    """The ids of the real store's orders the mutated bodies are made from."""
    from tests.integrations.test_order_payload_property import FIXTURES

    return [int(order["id"]) for order in FIXTURES]


def body_for(body: bytes, ids: dict[int, int]) -> bytes:
    """The body with its order's id (a fixture's) replaced by the real order's in ``ids``; a body
    whose id the fuzzer changed keeps the made-up one."""
    match = _LEADING_ID.match(body)
    if match is None or int(match.group(1)) not in ids:
        return body
    return b'{"id":' + str(ids[int(match.group(1))]).encode() + body[match.end() :]


def _write(path: str, count: int) -> None:
    import django

    django.setup()
    bodies = bodies_make(count)
    Path(path + ".part").write_bytes(pickle.dumps(bodies))
    os.replace(path + ".part", path)


def fuzz_start(*, path: Path, count: int, env: dict) -> subprocess.Popen:
    code = "import sys; from tests.faults.fuzz import _write; _write(sys.argv[1], int(sys.argv[2]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, str(path), str(count)],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings", "PYTHONPATH": str(BASE_DIR)},
        stdout=subprocess.DEVNULL,
        stderr=open(path.with_suffix(".log"), "w"),  # noqa: SIM115 - the child keeps it
        preexec_fn=lambda: os.nice(10),  # the hosts of the running cases first
    )


def fuzz_bodies(process: subprocess.Popen, path: Path, *, timeout: float) -> list[tuple[bytes, str, bool]]:
    process.wait(timeout=timeout)
    if process.returncode:
        log = path.with_suffix(".log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"making the fuzz bodies failed (exit code {process.returncode}):\n{log}")
    return pickle.loads(path.read_bytes())
