"""The fault suite's stack: the production stack's parts as processes on loopback (portal/stack.py).

One stack for the whole session, started by the ``stack`` fixture: a private PostgreSQL server
and a Redis server (Debian's binaries), migrated; both sandboxes (``manage.py sandbox``); two
web hosts (gunicorn, production settings) each behind a ``FrontProxy`` (the TLS proxy's
``X-Forwarded-Proto: https``, which the WooCommerce sandbox's deliveries cannot send
themselves); two cluster hosts (``manage.py runworkers``) on the Redis broker; a customer with
two shops on the WooCommerce sandbox, Butik 1's webhooks to web host 1 and Butik 2's to web
host 2. Nothing else starts anything: ``make test-faults`` is ``pytest`` with this folder's
pytest.ini.

The test process reaches the stack's database as the hosts do: before Django is set up, it
takes the stack's production environment (``DATABASE_URL`` of the private server, its keys,
``REDIS_URL``), so its ORM reads the very rows the hosts write, and ``task_enqueue`` from here
goes to the same broker. pytest-django is off for this suite (``-p no:django`` in
tests/faults/pytest.ini): its test database is not the one the processes use, and its
blocker would refuse the connection.

Time is scaled so that the suite fits in CI: order retries 200 times faster
(``ORDER_RETRY_BASE_SECONDS`` 0.15, ``ORDER_RETRY_CAP_SECONDS`` 18 instead of 30 and 3600), a
transfer task's limit 15 s (so a claim of a killed worker expires after 45 s, not 180 s).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from portal.stack import (
    BASE_DIR,
    FrontProxy,
    Part,
    PostgresServer,
    RedisServer,
    cluster_host,
    free_port,
    migrate,
    production_env,
    sandbox,
    stop_all,
    web_host,
)
from tests.faults.fuzz import fuzz_start

# Real time per simulated time for order retries (ORDER_RETRY_*): 1 s here is 200 s there.
RETRY_SCALE = 200
STACK_ENV = {
    "ORDER_RETRY_BASE_SECONDS": str(30 / RETRY_SCALE),
    "ORDER_RETRY_CAP_SECONDS": str(3600 / RETRY_SCALE),
    "ORDER_TRANSFER_TIME_LIMIT": "15",
    # One gunicorn process of 8 threads per web host: two hosts on two cores.
    "WEB_CONCURRENCY": "1",
    "WEB_THREADS": "8",
}
FUZZ_BODIES = int(os.environ.get("FAULTS_FUZZ_BODIES", 10_000))
SETTLED_STATES = ("invoiced", "credited", "held", "needs_attention", "filtered")
ARTIFACTS = BASE_DIR / "test-artifacts"

ROWS: list[dict] = []  # one per case, in the order they ran
SETUP: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    table = faults_table(ROWS)
    terminalreporter.write_sep("=", "fault suite: orders per case")
    terminalreporter.write_line(table)
    terminalreporter.write_line(
        f"stack set up in {SETUP.get('seconds', 0):.1f} s (migrate and collectstatic {SETUP.get('migrate', 0):.1f} s)"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "faults.md").write_text(table + "\n")


def faults_table(rows: list[dict]) -> str:
    lines = [
        "| case | placed | invoiced | held | needs attention | lost | duplicated | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['placed']} | {row['invoiced']} | {row['held']} | "
            f"{row['needs_attention']} | {row['lost']} | {row['duplicated']} | {row['seconds']:.1f} |"
        )
    notes = [f"- {row['case']}: {row['note']}" for row in rows if row.get("note")]
    return "\n".join(lines + ([""] + notes if notes else []))


class Stack:
    """The running stack: its parts, the customer and shops, and what the cases need of them."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.logs = folder / "logs"
        self.logs.mkdir()
        self.parts: list[Part] = []

    # -- parts ---------------------------------------------------------------------------------
    def check(self) -> None:
        """Every part that should be running is."""
        for part in self.parts:
            if part.process is not None and not getattr(part, "down_on_purpose", False):
                part.check()

    def cluster_restart(self, part: Part) -> None:
        part.down_on_purpose = False
        part.process = None
        part.start()

    def pause(self, part: Part) -> None:
        """SIGSTOP the whole process group: the host takes nothing from the broker meanwhile."""
        os.killpg(part.process.pid, signal.SIGSTOP)

    def resume(self, part: Part) -> None:
        os.killpg(part.process.pid, signal.SIGCONT)

    # -- Hogia Smart sandbox controls --------------------------------------------------------------
    def hogia_control(self, method: str, path: str, json: dict | None = None) -> dict:
        response = requests.request(method, f"{self.hogia_url}/_sandbox/{path}", json=json, timeout=30)
        response.raise_for_status()
        return response.json()

    def hogia_normal(self) -> None:
        """No fault queued, no rate limit: as at the start of every case."""
        self.hogia_control("DELETE", "faults")
        self.hogia_control("POST", "rate-limit", {"requests": 0})

    # -- orders ----------------------------------------------------------------------------------
    def place(self, count: int, *, shop, pause: float = 0.0) -> list[int]:
        """``count`` orders placed through the shop's REST API (its webhooks follow)."""
        from integrations.benchmarks.orders import FIXTURE_ORDERS

        front = self.fronts[self.shops.index(shop)]
        ids = []
        for n in range(count):
            ids.append(front.place(FIXTURE_ORDERS[n % len(FIXTURE_ORDERS)])["id"])
            if pause:
                time.sleep(pause)
        return ids

    def states(self, shop, ids: list[int]) -> dict[int, str]:
        from integrations.models import OrderTransfer

        return dict(
            OrderTransfer.objects.filter(shop=shop, woo_order_id__in=ids).values_list("woo_order_id", "state")
        )

    def settle(self, shop, ids: list[int], *, seconds: float, poll_after: float | None = None) -> float:
        """Wait until every order has a transfer in an end state (or ``seconds`` pass); the
        seconds waited. ``poll_after``: after that many seconds, queue the shops' order poll
        once (what the 5-minute schedule does, brought forward)."""
        from django.db import close_old_connections

        from integrations.tasks import poll_all_shops

        started = time.monotonic()
        polled = poll_after is None
        while True:
            self.check()
            close_old_connections()  # PostgreSQL may have restarted under this process too
            states = self.states(shop, ids)
            if len(states) == len(set(ids)) and all(state in SETTLED_STATES for state in states.values()):
                return time.monotonic() - started
            waited = time.monotonic() - started
            if not polled and waited >= poll_after:
                poll_all_shops()
                polled = True
            if waited > seconds:
                return waited
            time.sleep(0.25)

    def results_unrecorded(self) -> list[int]:
        """Per cluster host, the tasks its workers started that its monitor has not recorded yet
        (django-q2 logs "processing" for each start, "Processed" or "Failed" for each result).
        A task killed with its host (case 1) stays in the count for good: compare with a baseline."""
        behind = []
        for part in self.clusters:
            path = self.logs / f"{part.name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            behind.append(text.count(" processing ") - text.count("Processed '") - text.count("Failed '"))
        return behind

    def drain(self, *, seconds: float, baseline: list[int] | None = None) -> float:
        """Wait until the broker holds no task waiting and, given the ``baseline`` of
        ``results_unrecorded`` taken before the work, every host's monitor has recorded the
        results of its tasks (or ``seconds`` pass); the seconds waited.

        A host whose monitor is behind (it saves each result in the database) cannot replace its
        recycled workers: they wait to hand over their results. Seen in CI after the fuzz case's
        1,378 tasks: one host took no task for the whole next case."""
        from integrations.taskqueue import broker

        started = time.monotonic()
        while time.monotonic() - started < seconds:
            behind = self.results_unrecorded() if baseline is not None else []
            if not broker().queue_size() and all(now <= then for now, then in zip(behind, baseline or [])):
                break
            self.check()
            time.sleep(0.25)
        return time.monotonic() - started

    def hogia_invoices(self) -> list[dict]:
        """Every invoice in the Hogia Smart sandbox (credit invoices left out)."""
        from integrations.connections import hogia_client

        self.hogia_normal()
        client = hogia_client(connection=self.customer.hogia_connection)
        return [i for i in client.invoices_changed_since(0) if not i.get("creditedInvoiceId")]

    def count(self, shop, ids: list[int]) -> dict:
        """The case's orders at the end: placed, invoiced (in the portal and in Hogia Smart),
        held, needing attention, lost and duplicated.

        lost: an order with no transfer, or one still on its way (not invoiced, held, needing
        attention or filtered), or invoiced in the portal without that invoice in Hogia Smart.
        duplicated: an order with more than one invoice in Hogia Smart. Hogia Smart knows an
        invoice's order by its number only (``customerOrderNumber``), and both shops number
        from the same fixtures, so an invoice that another transfer recorded as its own is
        that transfer's, not a second one of this order.
        """
        from integrations.models import OrderTransfer

        ids = list(dict.fromkeys(ids))
        transfers = {t.woo_order_id: t for t in OrderTransfer.objects.filter(shop=shop, woo_order_id__in=ids)}
        owners = {
            invoice_id: (shop_id, woo_id)
            for invoice_id, shop_id, woo_id in OrderTransfer.objects.exclude(hogia_invoice_id="").values_list(
                "hogia_invoice_id", "shop_id", "woo_order_id"
            )
        }
        invoices_by_number: dict[str, list[str]] = {}
        in_hogia: set[str] = set()
        for invoice in self.hogia_invoices():
            in_hogia.add(str(invoice["id"]))
            invoices_by_number.setdefault(str(invoice.get("customerOrderNumber")), []).append(
                str(invoice["id"])
            )
        counts = {"placed": len(ids), "invoiced": 0, "held": 0, "needs_attention": 0, "filtered": 0}
        lost, duplicated = [], []
        for woo_id in ids:
            transfer = transfers.get(woo_id)
            if transfer is None:
                lost.append(woo_id)
                continue
            own = {
                invoice_id
                for invoice_id in invoices_by_number.get(transfer.order_number, [])
                if owners.get(invoice_id, (shop.pk, woo_id)) == (shop.pk, woo_id)
            }
            # A signed delivery may renumber an order after its invoice was made (the fuzz case
            # does): the invoice the transfer recorded is its own whatever number it carries.
            if transfer.hogia_invoice_id in in_hogia:
                own.add(transfer.hogia_invoice_id)
            if len(own) > 1:
                duplicated.append(woo_id)
            if transfer.state in ("invoiced", "credited"):
                if transfer.hogia_invoice_id in own:
                    counts["invoiced"] += 1
                else:
                    lost.append(woo_id)
            elif transfer.state in ("held", "needs_attention", "filtered"):
                counts[transfer.state] += 1
            else:
                lost.append(woo_id)
        counts.update(lost=len(lost), duplicated=len(duplicated), lost_ids=lost, duplicated_ids=duplicated)
        counts["states"] = {woo_id: t.state for woo_id, t in transfers.items() if t.state != "invoiced"}
        return counts

    def record(self, case: str, counts: dict, seconds: float, note: str = "") -> None:
        ROWS.append({"case": case, **counts, "seconds": seconds, "note": note})

    def logs_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _customer(stack: Stack):
    """Benchmark's customer (package 800, flow 3, no rate budget) with both demo shops."""
    from django.conf import settings

    from integrations.benchmarks.orders import TRIGGER_STATUSES, _customer, _ShopFront
    from integrations.intake import shop_webhooks_register
    from integrations.models import Shop
    from integrations.sandboxes import demo

    customer, shop1 = _customer(woo_url=stack.woo_url, hogia_url=stack.hogia_url)
    prefix, name, key, secret, unit = demo.WOO_STORES[1]
    shop2 = Shop.objects.create(
        customer=customer,
        name=name,
        url=f"{stack.woo_url}{prefix}/",
        consumer_key=key,
        consumer_secret=secret,
        result_unit=unit,
        trigger_statuses=TRIGGER_STATUSES,
    )
    # Each shop's webhooks to its own web host (through the host's front proxy).
    for shop, proxy in ((shop1, stack.proxies[0]), (shop2, stack.proxies[1])):
        settings.PORTAL_PUBLIC_URL = proxy.url
        shop_webhooks_register(shop=shop)
    settings.PORTAL_PUBLIC_URL = stack.proxies[0].url
    stack.customer, stack.shops = customer, [shop1, shop2]
    stack.fronts = [_ShopFront(shop1), _ShopFront(shop2)]


@pytest.fixture(scope="session")
def stack(request):
    if request.config.inipath != Path(__file__).with_name("pytest.ini"):
        # With the main pytest.ini, pytest-django has set Django up on its own database.
        pytest.skip("the fault suite runs with its own configuration: make test-faults")
    # SIGTERM (CI's timeout, a stopped job) ends the session as Ctrl-C does: with this teardown,
    # so no server or host of the stack outlives the run.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    folder = Path(tempfile.mkdtemp(prefix="portal-faults-"))
    folder.chmod(0o755)  # PostgreSQL's folder in it belongs to the user postgres
    started = time.monotonic()
    with ExitStack() as exits:
        exits.callback(signal.signal, signal.SIGTERM, previous)
        exits.callback(shutil.rmtree, folder, ignore_errors=True)
        result = Stack(folder)
        exits.callback(_logs_keep, result)
        pg = PostgresServer(folder / "postgres")
        exits.enter_context(pg)
        redis = RedisServer(folder / "redis")
        exits.enter_context(redis)
        result.postgres, result.redis = pg, redis
        ports = {name: free_port() for name in ("woocommerce", "hogia", "web1", "web2")}
        proxies = [FrontProxy(ports["web1"]), FrontProxy(ports["web2"])]
        env = production_env(
            folder=folder / "portal",
            database_url=pg.url,
            redis_url=redis.url,
            public_url=proxies[0].url,
            extra=STACK_ENV,
        )
        woo = sandbox(folder=result.logs, name="woocommerce", port=ports["woocommerce"], env=env)
        hogia = sandbox(folder=result.logs, name="hogia", port=ports["hogia"], env=env)
        webs = [web_host(folder=result.logs, name=f"web{n}", port=ports[f"web{n}"], env=env) for n in (1, 2)]
        clusters = [cluster_host(folder=result.logs, name=f"cluster{n}", env=env) for n in (1, 2)]
        result.parts = [woo, hogia, *webs, *clusters]
        # At the end nothing needs a graceful stop: what has not stopped 5 s after SIGTERM is killed.
        exits.callback(stop_all, result.parts, grace=5)
        # The sandboxes need no database: they start while it is migrated.
        for part in (woo, hogia):
            part.launch()
        mark = time.monotonic()
        migrate(env)
        SETUP["migrate"] = time.monotonic() - mark
        for part in (*webs, *clusters):
            part.launch()
        for part in result.parts:
            part.ready()
        # This process too: its ORM on the stack's database, its tasks to the stack's broker.
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
        import django

        django.setup()
        result.env = env
        for proxy in proxies:
            exits.enter_context(proxy)
        result.woo, result.hogia, result.webs, result.clusters, result.proxies = (
            woo,
            hogia,
            webs,
            clusters,
            proxies,
        )
        result.woo_url = f"http://127.0.0.1:{ports['woocommerce']}"
        result.hogia_url = f"http://127.0.0.1:{ports['hogia']}"
        result.hogia_normal()
        _customer(result)
        SETUP["seconds"] = time.monotonic() - started
        # The fuzz case's bodies, made meanwhile by a process of their own (tests/faults/fuzz.py).
        result.fuzz_path = folder / "fuzz-bodies.pickle"
        result.fuzz = fuzz_start(path=result.fuzz_path, count=FUZZ_BODIES, env=env)
        exits.callback(_process_end, result.fuzz)
        yield result
        from django.db import connections

        connections.close_all()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _process_end(process) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


def _logs_keep(stack: Stack) -> None:
    """The parts' logs to test-artifacts/faults-logs/ (CI keeps the folder): what each process
    said, when a case fails."""
    target = ARTIFACTS / "faults-logs"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    for log in stack.logs.glob("*.log"):
        shutil.copy(log, target / log.name)
    for name, path in (("postgres", stack.folder / "postgres" / "server.log"),):
        if path.exists():
            shutil.copy(path, target / f"{name}.log")


@pytest.fixture
def case(stack):
    """Every case starts with Hogia Smart answering normally and every host running."""
    stack.hogia_normal()
    for part in stack.clusters:
        if not part.running:
            stack.cluster_restart(part)
    stack.check()
    return stack
