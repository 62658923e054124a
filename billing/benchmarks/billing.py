"""The billing report over 1,000 customers x 12 months of generated usage.

The data is created inside a transaction on the default database and rolled back at
the end, so the benchmark leaves a real database as it found it (it does hold the
write lock for its duration: run it while the task cluster is idle). Timed: building
the report (every database aggregate and the revenue of every statement) and
rendering it (HTML with the SVG chart, and each CSV table). The order-volume summary
(``MonthlyOrderVolume``) is generated with the orders, as the quota services keep it,
and checked against a recount of the orders before the timing.
"""

from __future__ import annotations

import random
import time
from datetime import date, datetime
from datetime import time as clock
from decimal import Decimal

from django.core.management import call_command
from django.db import connection, reset_queries, transaction
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.charts import stacked_bars
from billing.dates import add_months
from billing.models import (
    Customer,
    HourPack,
    MonthlyOrderVolume,
    OrderUsage,
    Package,
    ServiceHourEntry,
    ShopCount,
    Subscription,
)
from billing.reports import CSV_TABLES, REVENUE_KINDS, billing_report, report_csv, report_filter
from billing.selectors import order_volume_differences

CUSTOMERS = 1000
MONTHS = 12
FIRST_MONTH = date(2024, 1, 1)
# Share of customers per package, smallest first, as a small-shop market would look.
MIX = [("100", 0.40), ("200", 0.30), ("400", 0.18), ("800", 0.10), ("premium", 0.02)]


class _Rollback(Exception):
    pass


def _generate(say) -> dict:
    rng = random.Random(5)
    packages = {p.code: p for p in Package.objects.all()}
    codes = [code for code, _ in MIX]
    weights = [share for _, share in MIX]
    customers = Customer.objects.bulk_create(
        [Customer(name=f"Benchmark {i:04d} AB") for i in range(CUSTOMERS)], batch_size=500
    )
    subscriptions, shop_rows, usage, hours = [], [], [], []
    # The summary the quota services would have kept: (customer, month, package) -> [counted, held].
    volume: dict[tuple, list[int]] = {}
    pack = HourPack.objects.filter(is_active=True).first()
    tz = timezone.get_current_timezone()
    for customer in customers:
        code = rng.choices(codes, weights)[0]
        start = FIRST_MONTH.replace(day=rng.randint(1, 28)) if rng.random() < 0.3 else FIRST_MONTH
        subscriptions.append(
            Subscription(
                customer=customer,
                package=packages[code],
                start_date=start,
                monthly_fee=packages[code].monthly_fee or Decimal("2500"),
                installation_fee=packages[code].installation_fee,
                extra_shop_fee=Decimal("295"),
            )
        )
        changed = None
        if code in ("100", "200", "400") and rng.random() < 0.15:  # an upgrade during the year
            changed = codes[codes.index(code) + 1]
            subscriptions.append(
                Subscription(
                    customer=customer,
                    package=packages[changed],
                    start_date=add_months(FIRST_MONTH, rng.randint(3, 10)).replace(day=rng.randint(1, 28)),
                    monthly_fee=packages[changed].monthly_fee,
                    installation_fee=None,
                    extra_shop_fee=Decimal("295"),
                )
            )
        if packages[changed or code].multishop and rng.random() < 0.3:
            shop_rows.append(ShopCount(customer=customer, effective_from=FIRST_MONTH, active_shops=1))
            shop_rows.append(
                ShopCount(
                    customer=customer,
                    effective_from=date(2024, rng.randint(2, 12), 15),
                    active_shops=rng.randint(2, 3),
                )
            )
        limit = packages[code].monthly_order_limit or 600
        load = rng.uniform(0.03, 0.35) if rng.random() < 0.9 else rng.uniform(0.8, 1.1)
        for m in range(MONTHS):
            month = add_months(FIRST_MONTH, m)
            orders = int(limit * load * rng.uniform(0.7, 1.1))
            counted = min(orders, limit)
            arrived = timezone.make_aware(datetime.combine(month, clock(12)), tz)
            if counted:
                volume.setdefault((customer.pk, month, packages[code].pk), [0, 0])[0] += counted
            if orders > counted:
                volume.setdefault((customer.pk, month, packages[code].pk), [0, 0])[1] += orders - counted
                volume.setdefault((customer.pk, add_months(month, 1), packages[code].pk), [0, 0])[0] += (
                    orders - counted
                )
            for n in range(orders):
                key = f"{m}-{n}"
                if n < counted:
                    usage.append(
                        OrderUsage(
                            customer=customer,
                            order_key=key,
                            arrived_at=arrived,
                            status="counted",
                            month=month,
                            package=packages[code],
                        )
                    )
                else:  # held over the limit and released on the 1st of the next month
                    usage.append(
                        OrderUsage(
                            customer=customer,
                            order_key=key,
                            arrived_at=arrived,
                            status="counted",
                            month=add_months(month, 1),
                            held_month=month,
                            package=packages[code],
                        )
                    )
            if rng.random() < 0.1:
                hours.append(
                    ServiceHourEntry(
                        customer=customer,
                        kind="hour_pack",
                        hours=pack.hours,
                        hour_pack=pack,
                        price=pack.price,
                        occurred_at=arrived,
                    )
                )
            if rng.random() < 0.2:
                hours.append(
                    ServiceHourEntry(
                        customer=customer,
                        kind="time_spent",
                        category="qualified_support",
                        hours=Decimal("-1.5"),
                        occurred_at=arrived,
                        below_zero_reason="benchmark",
                        hourly_rate=Decimal("950"),
                    )
                )
        if len(usage) > 50_000:
            OrderUsage.objects.bulk_create(usage, batch_size=5000)
            usage.clear()
    # bulk_create skips save() and signals: agreed prices are set above, start hours here.
    Subscription.objects.bulk_create(subscriptions, batch_size=1000)
    ShopCount.objects.bulk_create(shop_rows, batch_size=1000)
    OrderUsage.objects.bulk_create(usage, batch_size=5000)
    MonthlyOrderVolume.objects.bulk_create(
        [
            MonthlyOrderVolume(customer_id=cid, month=month, package_id=package_id, counted=c, held=h)
            for (cid, month, package_id), (c, h) in volume.items()
        ],
        batch_size=5000,
    )
    ServiceHourEntry.objects.bulk_create(
        hours
        + [
            ServiceHourEntry(
                customer=c,
                kind="start_package",
                hours=Decimal("2"),
                occurred_at=timezone.make_aware(datetime.combine(FIRST_MONTH, clock.min), tz),
            )
            for c in customers
        ],
        batch_size=5000,
    )
    return {
        "customers": CUSTOMERS,
        "months": MONTHS,
        "order_usage_rows": OrderUsage.objects.filter(customer__in=customers).count(),
        "rows_summary": len(volume),
        "subscriptions": len(subscriptions),
        "ledger_entries": len(hours) + CUSTOMERS,
    }


def _render(report) -> int:
    chosen = report.filter
    chart = stacked_bars(months=chosen.months, series=report.volume_by_month, packages=report.packages)
    volume_table = [
        (
            m,
            [report.volume_by_month.get(m, {}).get(c, 0) for c, _ in report.packages],
            sum(report.volume_by_month.get(m, {}).values()),
        )
        for m in chosen.months
    ]
    html = render_to_string(
        "billing/reports.html",
        {
            "report": report,
            "chart": chart,
            "packages": report.packages,
            "volume_table": volume_table,
            "revenue_kinds": REVENUE_KINDS,
            "form": None,
            "csv_form": None,
        },
    )
    size = len(html)
    for table in CSV_TABLES:
        size += len(report_csv(report=report, table=table))
    return size


def run(*, say) -> dict:
    call_command("migrate", verbosity=0)
    figures: dict = {}
    try:
        with transaction.atomic():
            started = time.perf_counter()
            figures.update(_generate(say))
            figures["generate_seconds"] = round(time.perf_counter() - started, 2)
            say(
                f"generated {figures['order_usage_rows']} order-usage rows for {CUSTOMERS} customers "
                f"x {MONTHS} months in {figures['generate_seconds']} s (inside a transaction)"
            )
            # The report reads the summary: check it says what the orders say before timing it.
            drift = order_volume_differences()
            figures["summary_in_step"] = not drift
            say(
                f"{figures['rows_summary']} monthly order-volume rows, "
                + ("in step with the orders" if not drift else f"{len(drift)} differ from a recount!")
            )
            chosen = report_filter(first_month=FIRST_MONTH, last_month=add_months(FIRST_MONTH, MONTHS - 1))
            timings = []
            reset_queries()
            for attempt in range(3):
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    report = billing_report(report_filter=chosen)
                    built = time.perf_counter() - started
                    size = _render(report)
                    total = time.perf_counter() - started
                timings.append((total, built, len(queries)))
                say(
                    f"run {attempt + 1}: build {built:.3f} s, build + render {total:.3f} s, "
                    f"{len(queries)} queries"
                )
            best = min(timings)
            figures.update(
                {
                    "seconds": round(best[0], 3),
                    "build_seconds": round(best[1], 3),
                    "queries": best[2],
                    "rendered_bytes": size,
                    "report_customers": len(report.customers),
                    "volume_rows": len(report.volume),
                    "revenue_rows": len(report.revenue),
                    "revenue_total": str(sum((r.total for r in report.revenue), Decimal(0))),
                    "database": connection.vendor,
                    "data": "generated inside a transaction, rolled back",
                }
            )
            raise _Rollback
    except _Rollback:
        say("rolled back: the database is as it was")
    return figures
