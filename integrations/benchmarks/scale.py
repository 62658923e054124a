"""The production stack under load: webhook intake and invoices per second through the real web
server on PostgreSQL, with 1, 2 and 4 cluster processes, Hogia's rate limit off and on, memory per
process, and django-q2's Redis broker against its ORM broker on PostgreSQL.

Every part is a process of its own (``portal/stack.py``): a private PostgreSQL server and a
Redis server (Debian's binaries, in a temporary folder), both sandboxes, one gunicorn web host
(``portal/gunicorn.conf.py``'s defaults, production settings) and 1, 2 or 4 cluster hosts
(``manage.py runworkers --no-catch-up``, ``Q_WORKERS`` 2 each: the default, so 2, 4 and 8
workers). The customer has package 800 (nothing is held) and flow 3.

1. **Intake** (``intake_per_s``, ``intake_errors``, ``intake_p95_ms``): signed order.created
   deliveries of real order JSON, each a distinct order, signed before the clock starts
   (``orders._intake_bodies``), sent for ``intake_seconds`` through gunicorn by a load generator
   of one thread and ``intake_connections`` kept-alive connections: raw request bytes made in
   advance and a ``selectors`` loop, so that the generator takes as little of this 2-core
   machine as it can; its CPU share (of one core) is ``intake_generator_cpu_share``, the
   machine's busy share over the window ``intake_machine_busy_share``. Accepted = answered 200
   and its row stored. Measured with no cluster running, then with 2 clusters invoicing what
   arrives (``intake_per_s_with_clusters``).
2. **Invoices per second** (``invoices_per_s_{1,2,4}_unlimited`` / ``_limited``): with the
   clusters stopped, ``orders`` orders are placed through the shop's REST API and their webhooks
   delivered and stored; then 1, 2 or 4 cluster hosts start and invoice the queue. The rate is
   the slope of invoices over ``invoiced_at`` (least squares) at steady state: between the first
   and last tenth of the run without the rate limit; from the end of the first rate window to
   the end with it (the first window is a free burst). With the limit on, the Hogia sandbox
   answers 429 beyond 25 requests per 5 s (its default) and the connection's rate budget is its
   default (25 per 5 s, ``integrations/ratebudget.py``).
3. **The floor** (``rate_limit_floor_per_s``): the limit's requests per second divided by the
   rate-limited Hogia requests one invoice takes (``hogia_calls_per_invoice``, counted from the
   sandbox's request log over the unlimited runs, token requests left out: the sandbox does not
   count them against the limit). ``limited_vs_floor`` = floor / the fastest limited run
   (target ≤ 1.10): with workers enough, the limit is what holds invoicing back.
4. **Memory**: VmRSS (``/proc/PID/status``) of every process of the web host and of a cluster
   host, read while 4 cluster hosts invoice.
5. **Brokers**: the unlimited runs and the intake again with django-q2's ORM broker on
   PostgreSQL (no ``REDIS_URL``; the task row is written in the delivery's own transaction):
   ``invoices_per_s_{n}_unlimited_orm``, ``intake_per_s_orm``.
6. **CPU** (``cpu_ms_per_delivery``, ``cpu_ms_per_invoice_{n}``, each split by part): the CPU
   seconds every process of the stack used (``/proc/PID/stat``) over the intake window, or while
   the middle 80 % of a queue was invoiced, per delivery or invoice; ``capacity_per_s`` is what
   the machine's cores would do at that cost with nothing else on them. Unlike the wall-clock
   rates these hold on a shared machine; ``machine_load_at_start`` says how shared it was.
7. **Checks**: every order placed has one invoice in Hogia Smart (``orders._checks``): ``lost``
   and ``duplicated`` must be 0.

``benchmark scale --quick`` runs fewer orders, shorter intake windows, and only 2 clusters on
the ORM broker. ``benchmark scale --intake`` measures only the intake, on both brokers (about
3 minutes, 2 with ``--quick``: the loop for work on the web host's cost per delivery).
"""

from __future__ import annotations

import json
import math
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import requests

from integrations.benchmarks.orders import (
    FIGURES,
    FIXTURE_ORDERS,
    SAY,
    STOPPED_EXIT,
    _checks,
    _customer,
    _intake_bodies,
    _ShopFront,
    _Stopped,
    _tail,
    _wait_invoiced,
    child_run,
    targets_report,
)
from portal import stack

CLUSTER_COUNTS = (1, 2, 4)
Q_WORKERS = 2  # per cluster host: django-q2's default here (settings.Q_WORKERS)
HOGIA_LIMIT = (25, 5)  # the Hogia sandbox's default, and the rate budget's: requests per seconds
# Senders at once (WooCommerce opens one connection per delivery, and many shops deliver at once).
# 16 kept-alive connections stuck unevenly to gunicorn's two worker processes: one was saturated
# while the machine stayed 63 % busy.
INTAKE_CONNECTIONS = int(os.environ.get("BENCHMARK_INTAKE_CONNECTIONS", 64))
FULL = {
    "orders": 200,
    "limited_seconds": 30,
    "intake_seconds": 10,
    "orm_clusters": list(CLUSTER_COUNTS),
}
QUICK = {
    "orders": 80,
    "limited_seconds": 15,
    "intake_seconds": 4,
    "orm_clusters": [2],
}
GIVE_UP_SECONDS = 300  # a queue not invoiced by then counts its orders as lost

TARGETS = [
    ("intake_per_s", ">=", 500, "/s"),
    ("intake_errors", "==", 0, ""),
    ("limited_vs_floor", "<=", 1.10, ""),
    ("lost", "==", 0, ""),
    ("duplicated", "==", 0, ""),
]


# -- the parent: the servers, the child that measures, the clean-up ---------------------------


def run(*, say, quick: bool = False, intake: bool = False) -> dict:
    missing = [
        package
        for package, found in (
            ("postgresql", any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))),
            ("redis-server", Path(stack.RedisServer.BINARY).exists()),
        )
        if not found
    ]
    if missing:  # `benchmark all` goes on with the others
        say(f"skipped: it needs Debian's {' and '.join(missing)} (apt-get install {' '.join(missing)})")
        return {"skipped": f"not installed: {', '.join(missing)}"}
    config = dict(
        QUICK if quick else FULL, quick=quick, intake_only=intake, intake_connections=INTAKE_CONNECTIONS
    )
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    # PostgreSQL runs as its own user (as root: postgres), which must reach its folder.
    folder.chmod(0o755)
    main = threading.current_thread() is threading.main_thread()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    if main:
        signal.signal(signal.SIGTERM, _raise_stopped)
    child = None
    figures = None
    try:
        with ExitStack() as servers:
            postgres = stack.PostgresServer(folder / "postgres")
            servers.enter_context(postgres)
            redis = stack.RedisServer(folder / "redis")
            servers.enter_context(redis)
            web_port = stack.free_port()
            portal_folder = folder / "portal"
            env = stack.production_env(
                folder=portal_folder,
                database_url=postgres.url,
                redis_url=redis.url,
                public_url=f"http://127.0.0.1:{web_port}",
                extra={"DJANGO_SETTINGS_MODULE": "portal.settings", "Q_WORKERS": str(Q_WORKERS)},
            )
            say(f"PostgreSQL on port {postgres.port}, Redis on {redis.port}; migrating")
            stack.migrate(env)
            config.update(
                folder=str(portal_folder),
                web_port=web_port,
                redis_url=redis.url,
                postgres_data=str(postgres.data),
                redis_pid=redis.part.process.pid,
            )
            code = "import django, json, sys; django.setup(); from {m} import measure; measure(json.loads(sys.argv[1]))"
            with open(portal_folder / "measure.log", "w") as log:
                child = subprocess.Popen(
                    [sys.executable, "-c", code.format(m=__name__), json.dumps(config)],
                    cwd=stack.BASE_DIR,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    bufsize=1,
                )
                for line in child.stdout:
                    if line.startswith(SAY):
                        say(line[len(SAY) :].rstrip("\n"))
                    elif line.startswith(FIGURES):
                        figures = json.loads(line[len(FIGURES) :])
                child.wait()
            if figures is None:
                if child.returncode == STOPPED_EXIT:
                    raise RuntimeError("the scale benchmark was stopped")
                say(f"the measuring process failed (exit code {child.returncode}); its log ends:")
                for line in _tail(portal_folder / "measure.log", 40):
                    say(f"  | {line}")
                raise RuntimeError(f"the scale benchmark failed (exit code {child.returncode})")
    except _Stopped:
        raise SystemExit("the scale benchmark was stopped (SIGTERM)") from None
    finally:
        for sig in handlers:
            signal.signal(sig, signal.SIG_IGN)
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)  # it stops its own processes first
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(folder, ignore_errors=True)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    measured = [target for target in TARGETS if target[0].startswith("intake")] if intake else TARGETS
    targets_report(say, figures, measured)
    return figures


def _raise_stopped(signum, frame):
    raise _Stopped


def _say(line: str) -> None:
    print(SAY + line, flush=True)


# -- the load generator ------------------------------------------------------------------------


def _raw_requests(*, made: list[tuple[str, bytes, dict]], path: str, port: int) -> list[bytes]:
    """Each delivery as the bytes of one HTTP/1.1 request, so that sending costs no formatting.
    ``X-Forwarded-Proto: https`` as the TLS proxy in front of production's gunicorn sets it."""
    raw = []
    for _delivery_id, body, headers in made:
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "X-Forwarded-Proto: https"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"Content-Length: {len(body)}", "Connection: keep-alive", "", ""]
        raw.append("\r\n".join(lines).encode() + body)
    return raw


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CONNECTION_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


def load_generate(*, port: int, raw: list[bytes], connections: int, seconds: float) -> dict:
    """Send ``raw`` requests, one at a time on each of ``connections`` kept-alive connections
    (a closed loop), until ``seconds`` pass or they run out. Returns the statuses' count, the
    indexes answered 200, errors, latencies, and this process's CPU time over the window."""
    selector = selectors.DefaultSelector()
    state: dict[socket.socket, dict] = {}
    next_index = 0
    answered_ok: list[int] = []
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = opened = 0

    def open_connection() -> None:
        nonlocal opened
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        opened += 1
        state[sock] = {"index": None, "buffer": b"", "sent_at": 0.0}
        selector.register(sock, selectors.EVENT_READ)

    def send_next(sock: socket.socket) -> bool:
        nonlocal next_index
        if next_index >= len(raw) or time.perf_counter() >= deadline:
            return False
        entry = state[sock]
        entry.update(index=next_index, buffer=b"", sent_at=time.perf_counter())
        next_index += 1
        sock.setblocking(True)  # a request is a few kB: the socket's buffer takes it at once
        sock.sendall(raw[entry["index"]])
        sock.setblocking(False)
        return True

    def drop(sock: socket.socket) -> None:
        selector.unregister(sock)
        state.pop(sock)
        sock.close()

    cpu_before, busy_before = time.process_time(), _machine_cpu()
    started = time.perf_counter()
    deadline = started + seconds
    for _ in range(connections):
        open_connection()
    for sock in list(state):
        send_next(sock)
    while any(entry["index"] is not None for entry in state.values()):
        for key, _events in selector.select(timeout=5):
            sock = key.fileobj
            entry = state[sock]
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            entry["buffer"] += chunk
            buffer = entry["buffer"]
            head_end = buffer.find(b"\r\n\r\n")
            if chunk and head_end >= 0:
                length = _CONTENT_LENGTH.search(buffer, 0, head_end + 2)
                if length and len(buffer) - head_end - 4 < int(length.group(1)):
                    continue  # the body is still coming
                status = int(buffer[9:12])
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(time.perf_counter() - entry["sent_at"])
                if status == 200:
                    answered_ok.append(entry["index"])
                else:
                    errors += 1
                closing = _CONNECTION_CLOSE.search(buffer, 0, head_end + 2) is not None
            elif chunk:
                continue
            else:  # the server closed the connection before answering
                errors += 1
                closing = True
            entry["index"] = None
            if closing:
                drop(sock)
                if next_index < len(raw) and time.perf_counter() < deadline:
                    open_connection()
                    send_next(next(s for s, e in state.items() if e["index"] is None))
            elif not send_next(sock):
                drop(sock)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    busy = _machine_cpu()
    for sock in list(state):
        drop(sock)
    selector.close()
    busy_share = None
    if busy and busy_before:
        (busy_now, total_now), (busy_then, total_then) = busy, busy_before
        busy_share = round((busy_now - busy_then) / max(1, total_now - total_then), 3)
    return {
        "seconds": elapsed,
        "sent": next_index,
        "answered_ok": answered_ok,
        "errors": errors,
        "statuses": statuses,
        "latencies": latencies,
        "connections_opened": opened,
        "generator_cpu_share": round(cpu / elapsed, 3) if elapsed else None,
        "machine_busy_share": busy_share,
    }


def _machine_cpu() -> tuple[int, int] | None:
    """(busy, total) jiffies of every core since boot, from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


# -- CPU and memory of the processes ------------------------------------------------------------


def _processes() -> list[dict]:
    """Every process: pid, parent, process group and CPU seconds used (user + system), its own
    and that of the children it has reaped (a recycled gunicorn worker, an ended backend)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The fields after the command's name (in parentheses, which may hold spaces).
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found.append(
            {
                "pid": int(entry.name),
                "ppid": int(fields[1]),
                "pgrp": int(fields[2]),
                "cpu": sum(int(value) for value in fields[11:15]) / ticks,
            }
        )
    return found


class CpuMeter:
    """CPU seconds each part of the stack used between ``start()`` and ``stop()``: a figure that
    holds on a shared machine, where wall-clock rates depend on what else runs.

    ``groups`` names process groups (a web host, a cluster host, a sandbox); ``postmaster`` is the
    PostgreSQL server's main process, whose children are its backends. A process that ends
    inside the window (gunicorn recycles its workers, a backend closes) is counted by its parent,
    which reaps it: its whole CPU time moves to the parent's children's time, so what it had
    used before the window is taken off again."""

    def __init__(self, *, groups: dict[str, int], postmaster: int | None = None):
        self.groups, self.postmaster = groups, postmaster
        self.before: dict[int, tuple[str, float]] = {}

    def _snapshot(self) -> dict[int, tuple[str, float]]:
        by_group = {pgid: name for name, pgid in self.groups.items()}
        snapshot = {}
        for process in _processes():
            name = by_group.get(process["pgrp"])
            if name is None and self.postmaster and self.postmaster in (process["pid"], process["ppid"]):
                name = "postgres"
            if name is not None:
                snapshot[process["pid"]] = (name, process["cpu"])
        return snapshot

    def start(self) -> None:
        self.before = self._snapshot()

    def stop(self) -> dict[str, float]:
        used: dict[str, float] = {}
        after = self._snapshot()
        for pid, (name, cpu) in after.items():
            used[name] = used.get(name, 0.0) + cpu - self.before.get(pid, (name, 0.0))[1]
        for pid, (name, cpu) in self.before.items():
            if pid not in after:  # reaped: all of its time is in its parent's now
                used[name] = used.get(name, 0.0) - cpu
        return {name: round(seconds, 2) for name, seconds in sorted(used.items())}


def _postmaster(data: str) -> int | None:
    try:
        return int((Path(data) / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def group_rss_mb(pgid: int) -> list[tuple[int, float]]:
    """(pid, VmRSS in MB) of every process in the process group, the group's leader first."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # The fields after the command's name (in parentheses, which may hold spaces).
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
            if pgrp != pgid:
                continue
            status = (entry / "status").read_text()
        except (OSError, ValueError, IndexError):
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            found.append((int(entry.name), round(int(match.group(1)) / 1024, 1)))
    return sorted(found, key=lambda item: (item[0] != pgid, item[0]))


# -- the child: everything that needs the database -------------------------------------------------


def measure(config: dict) -> None:
    child_run(config, _measure, {"quick": config["quick"], "q_workers_per_cluster": Q_WORKERS})


class _Stack:
    """The processes the child starts and stops: sandboxes, the web host, cluster hosts."""

    def __init__(self, *, folder: Path, exits: ExitStack, config: dict):
        self.folder, self.exits, self.config = folder, exits, config
        self.web: stack.Part | None = None
        self.sandboxes: dict[str, stack.Part] = {}
        self.broker = "redis"

    def env(self, broker: str) -> dict:
        env = dict(os.environ)
        env.pop("REDIS_URL", None)
        if broker == "redis":
            env["REDIS_URL"] = self.config["redis_url"]
        return env

    def web_start(self, broker: str) -> None:
        if self.web is not None:
            self.web.stop()
        # The WooCommerce sandbox delivers over plain HTTP without the TLS proxy's
        # X-Forwarded-Proto header; in production the proxy is in front and the redirect stays on.
        env = {**self.env(broker), "SECURE_SSL_REDIRECT": "false"}
        self.web = stack.web_host(
            folder=self.folder, name=f"web-{broker}", port=self.config["web_port"], env=env
        )
        self.web.start()
        self.exits.callback(self.web.stop)
        self.broker = broker

    def cpu_meter(self, clusters: list[stack.Part] = ()) -> CpuMeter:
        groups = {"web": self.web.process.pid, "redis": self.config["redis_pid"]}
        groups |= {f"sandbox_{name}": part.process.pid for name, part in self.sandboxes.items()}
        groups |= {f"cluster_{n}": part.process.pid for n, part in enumerate(clusters, start=1)}
        return CpuMeter(groups=groups, postmaster=_postmaster(self.config["postgres_data"]))

    def clusters(self, count: int) -> list[stack.Part]:
        return [
            stack.cluster_host(
                folder=self.folder, name=f"cluster-{self.broker}-{n}", env=self.env(self.broker)
            )
            for n in range(1, count + 1)
        ]


def _measure(config: dict, *, folder: Path) -> dict:
    from django.conf import settings
    from django.db import connection

    from billing.models import Package, Subscription
    from integrations.intake import shop_webhooks_register
    from integrations.models import HogiaConnection

    # This machine is shared: the load before the run says how far its wall-clock rates can be trusted.
    figures: dict = {"machine_load_at_start": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count()}
    with ExitStack() as exits:
        woo_port, hogia_port = stack.free_port(), stack.free_port()
        parts = _Stack(folder=folder, exits=exits, config=config)
        for name, port in (("woocommerce", woo_port), ("hogia", hogia_port)):
            part = stack.sandbox(folder=folder, name=name, port=port, env=dict(os.environ))
            part.start()
            exits.callback(part.stop)
            parts.sandboxes[name] = part
        woo_url, hogia_url = f"http://127.0.0.1:{woo_port}", f"http://127.0.0.1:{hogia_port}"
        parts.web_start("redis")
        settings.PORTAL_PUBLIC_URL = f"http://127.0.0.1:{config['web_port']}"
        # The sandbox's delivery queue waits 0.2 s per batch, as WooCommerce's scheduler does; here
        # the orders of a queue are only to be stored before the clusters start.
        requests.post(f"{woo_url}/_sandbox/webhooks/config", json={"delivery_delay": 0}, timeout=30)
        customer, shop = _customer(woo_url=woo_url, hogia_url=hogia_url)
        # The runs transfer over 1,000 orders in a month: no package limit may hold them.
        Subscription.objects.filter(customer=customer).update(package=Package.objects.get(code="premium"))
        shop_webhooks_register(shop=shop)
        front = _ShopFront(shop)
        hogia = _Hogia(hogia_url)
        _say(
            f"database {connection.vendor}, web host (gunicorn) on {config['web_port']}, sandboxes on "
            f"{woo_port} and {hogia_port}; {Q_WORKERS} workers per cluster host"
        )
        placed: list[int] = []

        def invoicing(count: int, *, limited: bool, orders: int, keep_memory: bool = False) -> dict:
            run = _invoicing(
                parts=parts,
                shop=shop,
                front=front,
                hogia=hogia,
                clusters=count,
                orders=orders,
                limited=limited,
                keep_memory=keep_memory,
            )
            placed.extend(run["placed"])
            return run

        # -- Redis: intake alone, invoices per second unlimited, intake with clusters ---------
        hogia.limit(None)
        HogiaConnection.objects.filter(customer=customer).update(rate_limit_requests=0)
        figures.update(_prefixed(_intake_run(customer=customer, config=config, parts=parts), "intake"))
        if config["intake_only"]:
            parts.web_start("orm")
            orm_intake = _prefixed(_intake_run(customer=customer, config=config, parts=parts), "intake")
            figures |= {f"{key}_orm": value for key, value in orm_intake.items()}
            return figures
        calls = invoices = 0
        for count in CLUSTER_COUNTS:
            run = invoicing(count, limited=False, orders=config["orders"], keep_memory=count == 4)
            figures[f"invoices_per_s_{count}_unlimited"] = run["per_s"]
            figures[f"cpu_ms_per_invoice_{count}"] = run["cpu_ms_per_invoice"]
            figures[f"cpu_ms_per_invoice_by_part_{count}"] = run["cpu_ms_by_part"]
            figures[f"invoice_capacity_per_s_{count}"] = run["capacity_per_s"]
            calls += run["hogia_calls"]
            invoices += run["invoiced"]
            if "memory" in run:
                figures.update(run["memory"])
        calls_per_invoice = calls / invoices if invoices else None
        figures["hogia_calls_per_invoice"] = round(calls_per_invoice, 3) if calls_per_invoice else None
        with_clusters = _intake_run(customer=customer, config=config, parts=parts, clusters=2)
        figures["intake_per_s_with_clusters"] = with_clusters["per_s"]
        figures["intake_p95_ms_with_clusters"] = with_clusters["p95_ms"]
        figures["intake_errors_with_clusters"] = with_clusters["errors"]
        figures["intake_cpu_ms_per_delivery_with_clusters"] = with_clusters["cpu_ms_per_delivery"]

        # -- the rate limit on: the sandbox's and the portal's budget at their defaults --------
        requests_, seconds = HOGIA_LIMIT
        floor = requests_ / seconds / calls_per_invoice if calls_per_invoice else None
        figures["rate_limit_floor_per_s"] = round(floor, 3) if floor else None
        hogia.limit(HOGIA_LIMIT)
        HogiaConnection.objects.filter(customer=customer).update(
            rate_limit_requests=requests_, rate_limit_seconds=seconds
        )
        limited_orders = max(20, math.ceil((floor or 2) * (config["limited_seconds"] + seconds)))
        _say(
            f"rate limit {requests_} requests / {seconds} s: floor {floor:.2f} invoices/s; {limited_orders} orders a run"
        )
        for count in CLUSTER_COUNTS:
            run = invoicing(count, limited=True, orders=limited_orders)
            figures[f"invoices_per_s_{count}_limited"] = run["per_s"]
            # Requests beyond what the invoices need: 429s and the calls repeated after them.
            figures[f"hogia_extra_calls_{count}_limited"] = round(
                run["hogia_calls"] - calls_per_invoice * run["invoiced"]
            )
        # Workers enough, the floor is what the limit allows: the fastest limited run against it.
        fastest = max(figures[f"invoices_per_s_{c}_limited"] or 0 for c in CLUSTER_COUNTS)
        figures["limited_vs_floor"] = round(floor / fastest, 3) if floor and fastest else None
        hogia.limit(None)
        HogiaConnection.objects.filter(customer=customer).update(rate_limit_requests=0)

        # -- the ORM broker on PostgreSQL -------------------------------------------------------
        parts.web_start("orm")
        orm_intake = _intake_run(customer=customer, config=config, parts=parts)
        figures["intake_per_s_orm"] = orm_intake["per_s"]
        figures["intake_p95_ms_orm"] = orm_intake["p95_ms"]
        figures["intake_cpu_ms_per_delivery_orm"] = orm_intake["cpu_ms_per_delivery"]
        for count in config["orm_clusters"]:
            run = invoicing(count, limited=False, orders=config["orders"])
            figures[f"invoices_per_s_{count}_unlimited_orm"] = run["per_s"]
            figures[f"cpu_ms_per_invoice_{count}_orm"] = run["cpu_ms_per_invoice"]
        figures["intake_per_s_redis"] = figures["intake_per_s"]

        checks = _checks(customer=customer, shop=shop, placed=placed)
        figures["orders_placed"] = checks["orders"]
        figures["invoices"] = checks["invoices"]
        figures["lost"] = checks["lost_orders"]
        figures["duplicated"] = checks["duplicate_invoices"]
    return figures


def _prefixed(run: dict, prefix: str) -> dict:
    keys = (
        "per_s",
        "errors",
        "p95_ms",
        "p50_ms",
        "generator_cpu_share",
        "machine_busy_share",
        "seconds",
        "cpu_ms_per_delivery",
        "cpu_ms_by_part",
        "capacity_per_s",
    )
    return {f"{prefix}_{key}": run[key] for key in keys} | {f"{prefix}_deliveries": run["accepted"]}


class _Hogia:
    """The Hogia sandbox's controls: its rate limit and its request log."""

    def __init__(self, url: str):
        self.url = url

    def limit(self, limit: tuple[int, int] | None) -> None:
        body = {"requests": limit[0], "seconds": limit[1]} if limit else {"requests": 0}
        requests.post(f"{self.url}/_sandbox/rate-limit", json=body, timeout=30).raise_for_status()

    def stats_reset(self) -> None:
        requests.post(f"{self.url}/_sandbox/stats/reset", timeout=30).raise_for_status()

    def calls(self) -> int:
        """Requests counted against the rate limit since the reset: every API request, 429s
        included; the token route is not limited (``HogiaSmartSandbox._api``)."""
        by_route = requests.get(f"{self.url}/_sandbox/stats", timeout=30).json()["by_route"]
        return sum(n for route, n in by_route.items() if "connect/token" not in route)


def _intake_run(*, customer, config: dict, parts: _Stack, clusters: int = 0) -> dict:
    """Signed deliveries to a new shop of the customer's for ``intake_seconds`` (see the module)."""
    from integrations.intake import webhook_url
    from integrations.models import Shop, WebhookDelivery

    seconds = config["intake_seconds"]
    # Enough deliveries for the window at 2,000/s (made in advance: each is a distinct order).
    deliveries = int(seconds * 2000) + 500
    shop = Shop.objects.create(
        customer=customer,
        name=f"Butik intake {Shop.objects.count()}",
        url=f"{customer.shops.order_by('pk').first().url}intake{Shop.objects.count()}/",
        consumer_key="ck_intake",
        consumer_secret="cs_intake",
        result_unit="1",
        # Recorded, not transferred: the intake's thousands of orders must not take Hogia Smart's
        # rate limit or the workers' time from the invoicing runs that follow.
        trigger_statuses=[],
    )
    made = _intake_bodies(shop=shop, deliveries=deliveries)
    raw = _raw_requests(made=made, path=urlsplit(webhook_url(shop=shop)).path, port=config["web_port"])
    where = f"with {clusters} cluster hosts invoicing" if clusters else "no cluster running"
    _say(
        f"intake, {parts.broker} broker, {where}: signed order.created deliveries for {seconds} s on "
        f"{config['intake_connections']} kept-alive connections"
    )
    with ExitStack() as running:
        hosts = [running.enter_context(part) for part in parts.clusters(clusters)]
        meter = parts.cpu_meter(hosts)
        # A warm-up: every gunicorn thread's database connection is open before the clock starts.
        load_generate(
            port=config["web_port"], raw=raw[-200:], connections=config["intake_connections"], seconds=5
        )
        meter.start()
        result = load_generate(
            port=config["web_port"], raw=raw[:-200], connections=config["intake_connections"], seconds=seconds
        )
        cpu = meter.stop()
        # The deliveries' tasks (recording the orders) run now, before the next run is measured.
        if not hosts:
            for part in parts.clusters(2):
                running.enter_context(part)
        _queue_drain(seconds=300)
    stored = set(
        WebhookDelivery.objects.filter(shop=shop, outcome=WebhookDelivery.Outcome.ACCEPTED).values_list(
            "delivery_id", flat=True
        )
    )
    accepted = sum(1 for index in result["answered_ok"] if made[index][0] in stored)
    latencies = sorted(result["latencies"])
    figures = {
        "per_s": round(accepted / result["seconds"], 1),
        "accepted": accepted,
        "errors": result["errors"] + (len(result["answered_ok"]) - accepted),
        "p50_ms": _ms(_nearest_rank(latencies, 0.5)),
        "p95_ms": _ms(_nearest_rank(latencies, 0.95)),
        "seconds": round(result["seconds"], 2),
        "generator_cpu_share": result["generator_cpu_share"],
        "machine_busy_share": result["machine_busy_share"],
        **_cpu_figures(
            cpu, done=accepted, unit="delivery", generator=result["generator_cpu_share"] * result["seconds"]
        ),
    }
    _say(
        f"  {accepted} accepted and stored in {figures['seconds']} s: {figures['per_s']}/s, p50 "
        f"{figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, {figures['errors']} error(s) "
        f"({result['statuses']}); generator {figures['generator_cpu_share']:.0%} of a core, machine busy "
        f"{(figures['machine_busy_share'] or 0):.0%}"
    )
    _say(f"  {_cpu_line(figures, 'delivery')}")
    return figures


def _queue_drain(*, seconds: float) -> None:
    """Wait until the broker holds no task waiting (``seconds`` at most)."""
    from integrations.taskqueue import broker

    deadline = time.monotonic() + seconds
    while broker().queue_size() and time.monotonic() < deadline:
        time.sleep(0.5)


def _nearest_rank(ordered: list[float], share: float) -> float | None:
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _invoicing(
    *,
    parts: _Stack,
    shop,
    front: _ShopFront,
    hogia: _Hogia,
    clusters: int,
    orders: int,
    limited: bool,
    keep_memory: bool,
) -> dict:
    """``orders`` orders queued while no cluster runs, then invoiced by ``clusters`` hosts."""
    from integrations.models import OrderTransfer, WebhookDelivery

    label = f"{clusters} cluster host(s), {parts.broker} broker, rate limit {'on' if limited else 'off'}"
    ids = [front.place(FIXTURE_ORDERS[n % len(FIXTURE_ORDERS)])["id"] for n in range(orders)]
    deadline = time.monotonic() + 60
    while True:
        parts.web.check()
        stored = (
            WebhookDelivery.objects.filter(
                shop=shop,
                resource_id__in=ids,
                topic="order.created",
                outcome=WebhookDelivery.Outcome.ACCEPTED,
            )
            .values("resource_id")
            .distinct()
            .count()
        )
        if stored == len(ids):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {stored} of {len(ids)} orders' webhooks were stored within 60 s")
        time.sleep(0.2)
    hogia.stats_reset()
    _say(f"invoices/s, {label}: {orders} orders queued")
    result: dict = {"placed": ids}
    with ExitStack() as running:
        hosts = [running.enter_context(part) for part in parts.clusters(clusters)]
        cpu, metered = _cpu_steady(parts.cpu_meter(hosts), shop=shop, ids=ids, parts=[*hosts, parts.web])
        waiting = _wait_invoiced(shop, ids, seconds=GIVE_UP_SECONDS, parts=[*hosts, parts.web])
        if keep_memory:
            result["memory"] = _memory(web=parts.web, cluster=hosts[0])
    calls = hogia.calls()
    times = sorted(
        t.timestamp()
        for t in OrderTransfer.objects.filter(
            shop=shop, woo_order_id__in=ids, invoiced_at__isnull=False
        ).values_list("invoiced_at", flat=True)
    )
    if limited:
        # The first rate window is a free burst: the steady state starts once it has passed.
        start = next((i for i, t in enumerate(times) if t >= times[0] + HOGIA_LIMIT[1]), len(times))
        steady = times[start:]
    else:
        steady = times[len(times) // 10 : len(times) - len(times) // 10]
    per_s = _slope(steady)
    result.update(
        per_s=round(per_s, 2) if per_s else None,
        invoiced=len(times),
        hogia_calls=calls,
        **_cpu_figures(cpu, done=metered, unit="invoice"),
    )
    _say(
        f"  {len(times)} invoiced, steady state {result['per_s']}/s over {len(steady)} invoices; "
        f"{calls} rate-limited Hogia requests ({calls / max(1, len(times)):.2f} per invoice)"
        + (f"; {len(waiting)} not invoiced after {GIVE_UP_SECONDS} s" if waiting else "")
    )
    _say(f"  {_cpu_line(result, 'invoice')}")
    return result


def _cpu_steady(meter: CpuMeter, *, shop, ids: list[int], parts: list[stack.Part]) -> tuple[dict, int]:
    """CPU used while the middle 80 % of the orders were invoiced, and how many that was: the
    hosts' start-up (imports, forks: about a second of CPU each) and the queue's tail left out."""
    from integrations.models import OrderTransfer

    invoiced = OrderTransfer.objects.filter(
        shop=shop, woo_order_id__in=ids, state=OrderTransfer.State.INVOICED
    )
    first, last = len(ids) // 10, len(ids) - len(ids) // 10
    deadline = time.monotonic() + GIVE_UP_SECONDS
    started_at = None
    while time.monotonic() < deadline:
        for part in parts:
            part.check()
        done = invoiced.count()
        if started_at is None and done >= first:
            meter.start()
            started_at = done
        if started_at is not None and done >= last:
            return meter.stop(), done - started_at
        time.sleep(0.05)
    return {}, 0


def _cpu_figures(cpu: dict[str, float], *, done: int, unit: str, generator: float = 0.0) -> dict:
    """CPU per delivery or invoice, by part (the clusters together), and what this machine's
    cores would do at that cost if nothing else ran on them (the load generator left out: in
    production the shops send from elsewhere)."""
    by_part: dict[str, float] = {}
    for name, seconds in cpu.items():
        part = "clusters" if name.startswith("cluster_") else name
        by_part[part] = by_part.get(part, 0.0) + seconds
    if generator:
        by_part["generator"] = generator
    total = sum(seconds for name, seconds in by_part.items() if name != "generator")
    per = total / done if done else None
    return {
        f"cpu_ms_per_{unit}": round(per * 1000, 2) if per else None,
        "cpu_ms_by_part": {name: round(seconds / done * 1000, 2) for name, seconds in by_part.items()}
        if done
        else {},
        "capacity_per_s": round(os.cpu_count() / per) if per else None,
    }


def _cpu_line(figures: dict, unit: str) -> str:
    return (
        f"CPU per {unit} {figures[f'cpu_ms_per_{unit}']} ms ({figures['cpu_ms_by_part']}); at that cost "
        f"{os.cpu_count()} idle cores would do {figures['capacity_per_s']}/s"
    )


def _slope(times: list[float]) -> float | None:
    """Invoices per second: the least-squares slope of the count over time."""
    if len(times) < 3 or times[-1] <= times[0]:
        return None
    n = len(times)
    mean_t, mean_k = sum(times) / n, (n - 1) / 2
    covariance = sum((t - mean_t) * (k - mean_k) for k, t in enumerate(times))
    variance = sum((t - mean_t) ** 2 for t in times)
    return covariance / variance


def _memory(*, web: stack.Part, cluster: stack.Part) -> dict:
    web_processes = group_rss_mb(web.process.pid)
    cluster_processes = group_rss_mb(cluster.process.pid)
    figures = {
        "rss_mb_web_master": web_processes[0][1] if web_processes else None,
        "rss_mb_web_workers": [rss for _pid, rss in web_processes[1:]],
        "rss_mb_cluster_main": cluster_processes[0][1] if cluster_processes else None,
        "rss_mb_cluster_processes": [rss for _pid, rss in cluster_processes[1:]],
        "rss_mb_cluster_host_total": round(sum(rss for _pid, rss in cluster_processes), 1),
    }
    _say(
        f"  memory (VmRSS, MB): gunicorn master {figures['rss_mb_web_master']}, workers "
        f"{figures['rss_mb_web_workers']}; a cluster host's main process {figures['rss_mb_cluster_main']}, "
        f"its forked processes {figures['rss_mb_cluster_processes']}"
    )
    return figures
