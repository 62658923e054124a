"""``benchmark orders`` in small: every figure is there, and no order is lost or invoiced twice.

The full run (``manage.py benchmark orders``) takes a minute or two; this one the same
processes on its own throw-away database, with a handful of orders.
"""

import pytest

from integrations.benchmarks import orders

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

KEYS = {
    "webhooks_per_s",
    "webhook_errors",
    "order_to_invoice_p50_s",
    "order_to_invoice_p95_s",
    "retry_delay_error_s",
    "orders",
    "invoices",
    "duplicate_invoices",
    "lost_orders",
    "database",
}


def test_the_orders_benchmark_in_small_loses_nothing_and_invoices_nothing_twice():
    lines: list[str] = []
    figures = orders.run(
        say=lines.append, orders=5, order_rate=10, deliveries=50, retry_orders=1, unloaded_orders=2
    )
    report = "\n".join(lines)
    assert KEYS <= figures.keys(), report
    assert figures["lost_orders"] == 0 and figures["duplicate_invoices"] == 0, report
    # the warm-up order, 2 one at a time, 5 at a rate, 1 retried
    assert figures["orders"] == figures["invoices"] == 1 + 2 + 5 + 1, report
    assert figures["webhooks_accepted"] == 50 and figures["webhook_errors"] == 0, report
    assert figures["retries_measured"] == 1 and figures["retry_attempts"] == [2], report
    assert figures["database"] in ("sqlite", "postgresql")
    assert any("target" in line for line in lines)
