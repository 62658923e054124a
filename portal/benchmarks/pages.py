"""Server time of the pages people keep open: the admin home and the customer overview.

A portal a few years in: 200 customers with 2 shops each, 100,000 order transfers and
1,000,000 sync log rows spread over 90 days, 10,000 sync runs, this month's quota usage.
Each page is asked for through Django's test client (middleware, view, template: what
the server does for a request), once to warm up, then ``ROUNDS`` times; the median is
reported. Queries are counted on the same pages with 1 % of the data and with all of it:
``queries_constant`` says whether the page costs the same number of queries with 1 % of the
rows as with all of them.

Everything is written in one transaction that is rolled back at the end.
"""

from __future__ import annotations

import os
import random
import statistics
import time
import uuid
from datetime import date, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.dates import month_start
from billing.models import Customer, OrderUsage, Package, Subscription
from integrations.models import Flow, FlowSettings, OrderTransfer, Shop, ShopCatalog, SyncLogEntry, SyncRun

# BENCHMARK_PAGES_SCALE shrinks the tables for a quick look (the targets are for 1).
SCALE = float(os.environ.get("BENCHMARK_PAGES_SCALE", "1"))
CUSTOMERS = 200
TRANSFERS = int(100_000 * SCALE)
LOG_ROWS = int(1_000_000 * SCALE)
RUNS = int(10_000 * SCALE)
ROUNDS = 15
BATCH = 10_000
State = OrderTransfer.State
STATES = (
    [State.INVOICED] * 90
    + [State.FILTERED] * 5
    + [State.NEEDS_ATTENTION, State.HELD, State.QUEUED, State.CREDITED, State.RECEIVED]
)


class _Rollback(Exception):
    pass


def _people() -> tuple:
    from django.contrib.auth import get_user_model

    users = get_user_model()
    staff = users.objects.create_user(
        username=f"bench-staff-{uuid.uuid4().hex[:8]}", password=None, is_staff=True, is_superuser=True
    )
    owner = users.objects.create_user(username=f"bench-owner-{uuid.uuid4().hex[:8]}", password=None)
    return staff, owner


def _customers() -> list[Shop]:
    package = Package.objects.get(code="400")
    shops = []
    for n in range(CUSTOMERS):
        customer = Customer.objects.create(
            name=f"Benchmark kund {n:03d} AB", organisation_number="556036-0793"
        )
        Subscription.objects.create(customer=customer, package=package, start_date=date(2025, 1, 1))
        FlowSettings.objects.create(customer=customer, flow=Flow.COMBO)
        for s in range(2):
            shop = Shop.objects.create(
                customer=customer,
                name=f"Butik {n}-{s}",
                url=f"https://b{n}-{s}.example.invalid/",
                consumer_key=f"ck_{n:03d}{s}" + "0" * 36,
                consumer_secret=f"cs_{n:03d}{s}" + "0" * 36,
                result_unit="1",
                last_check_ok=True,
                registered_webhooks={"order.created": 1, "order.updated": 2},
            )
            ShopCatalog.objects.create(shop=shop, overwrite_accepted_at=timezone.now())
            shops.append(shop)
    return shops


def _bulk(shops: list[Shop], say, *, part: range = range(0, 100)) -> None:
    """The rows of percentiles ``part`` of the tables (numbered so that two parts never collide)."""
    rng = random.Random(9)
    now = timezone.now()
    today = timezone.localdate()
    say(f"{TRANSFERS:,} order transfers")
    rows = []
    for n in range(TRANSFERS * part.start // 100, TRANSFERS * part.stop // 100):
        shop = shops[n % len(shops)]
        created = now - timedelta(minutes=rng.randrange(90 * 24 * 60))
        rows.append(
            OrderTransfer(
                shop=shop,
                woo_order_id=1000 + n,
                order_number=str(1000 + n),
                state=rng.choice(STATES),
                woo_status="processing",
                sequence_id=uuid.uuid4(),
                quota_key=f"bench:{n}",
                buyer=f"Köpare {n}",
                total="399.00",
                currency="SEK",
                created_at=created,
                order_created_gmt=created,
            )
        )
        if len(rows) == BATCH:
            OrderTransfer.objects.bulk_create(rows)
            rows = []
    OrderTransfer.objects.bulk_create(rows)
    say(f"{LOG_ROWS:,} sync log rows")
    _log_rows(shops, rng=rng, now=now, rows=range(LOG_ROWS * part.start // 100, LOG_ROWS * part.stop // 100))
    say(f"{RUNS:,} sync runs and this month's quota usage")
    SyncRun.objects.bulk_create(
        [
            SyncRun(
                customer_id=shops[n % len(shops)].customer_id,
                shop=shops[n % len(shops)],
                kind=SyncRun.Kind.ORDERS,
                outcome=SyncRun.Outcome.SUCCEEDED,
                started_at=now - timedelta(minutes=5 * n),
                finished_at=now,
            )
            for n in range(RUNS * part.start // 100, RUNS * part.stop // 100)
        ],
        batch_size=BATCH,
    )
    OrderUsage.objects.bulk_create(
        [
            OrderUsage(
                customer_id=shops[n % len(shops)].customer_id,
                order_key=f"use:{n}",
                arrived_at=now,
                status=OrderUsage.Status.COUNTED,
                month=month_start(today),
            )
            for n in range(200 * part.start, 200 * part.stop)
        ],
        batch_size=BATCH,
    )


def _log_rows(shops: list[Shop], *, rng: random.Random, now, rows: range) -> None:
    """A million rows through the cursor: model instances would take minutes to build."""
    table = connection.ops.quote_name(SyncLogEntry._meta.db_table)
    sql = (
        f"INSERT INTO {table} (customer_id, shop_id, run_id, created_at, level, message, object_type, "
        f"object_ref, details) VALUES (%s, %s, NULL, %s, 'info', %s, 'order', %s, '{{}}')"
    )
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        for start in range(rows.start, rows.stop, BATCH):
            batch = []
            for n in range(start, min(start + BATCH, rows.stop)):
                shop = shops[n % len(shops)]
                number = 1000 + n % TRANSFERS
                batch.append(
                    (
                        shop.customer_id,
                        shop.pk,
                        adapt(now - timedelta(seconds=rng.randrange(90 * 24 * 3600))),
                        f"Order {number} transferred",
                        str(number),
                    )
                )
            cursor.executemany(sql, batch)


def _measure(client: Client, url: str) -> tuple[float, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    # Counted now: every request starts by emptying the connection's query log.
    queries = len(captured)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1), queries


def run(*, say) -> dict:
    figures: dict = {}
    debug = settings.DEBUG
    settings.DEBUG = False  # as served in production: no query log kept in memory
    try:
        with transaction.atomic():
            staff, owner = _people()
            shops = _customers()
            shops[0].customer.users.add(owner)
            support, customer = Client(), Client()
            support.force_login(staff)
            customer.force_login(owner)
            home, overview = reverse("admin:index"), reverse("account")
            _bulk(shops, lambda line: None, part=range(0, 1))  # 1 %: every kind of row exists
            _ms, small_home = _measure(support, home)
            _ms, small_overview = _measure(customer, overview)
            started = time.perf_counter()
            _bulk(shops, say, part=range(1, 100))
            say(f"  written in {time.perf_counter() - started:.0f} s")
            home_ms, home_queries = _measure(support, home)
            overview_ms, overview_queries = _measure(customer, overview)
            say(
                f"admin home {home_ms} ms ({home_queries} queries), customer overview {overview_ms} ms "
                f"({overview_queries} queries), median of {ROUNDS}"
            )
            figures = {
                "transfers": TRANSFERS,
                "log_rows": LOG_ROWS,
                "customers": CUSTOMERS,
                "admin_home_ms": home_ms,
                "overview_ms": overview_ms,
                "queries": {"admin_home": home_queries, "overview": overview_queries},
                "queries_small": {"admin_home": small_home, "overview": small_overview},
                "queries_constant": (home_queries, overview_queries) == (small_home, small_overview),
                "database": connection.vendor,
            }
            raise _Rollback
    except _Rollback:
        pass
    finally:
        settings.DEBUG = debug
    return figures
