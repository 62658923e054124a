"""Order status back to the shop: how long a change in Hogia Smart takes to reach the shop's
order, and that each change is written once and each payment captured once.

Every part runs in its own process, as in ``benchmark orders`` (whose throw-away database and
process handling this uses): both sandboxes and the task cluster (``manage.py runworkers``:
django-q2 with its default 2 workers, and the stager). The schedule is the default one: the
stager has the invoice feed of every customer with the order status flow read every
``FEED_INTERVAL`` (30 s, looked at on its 10 s tick), and a change read becomes a push at once.

The customer (package 800, flow 3) has the shop's Shipment Tracking extension, Klarna as the
payment of every order, and the mapping Delivered → ``skickad`` (the shop's own status) with
tracking, Paid → ``completed`` (which makes Klarna's plugin capture). ``orders`` orders are
placed and invoiced; then, over ``window`` seconds, each invoice is delivered (with a tracking
number) and paid in the Hogia sandbox at random moments, as an accountant would, while the
shop answers ``faults`` random calls with a 500.

Figures: ``events`` (Hogia changes made), ``writes_woo`` (status writes the shop received
from the portal, from the sandbox's log), ``min_writes_woo`` (one per order per change),
``duplicate_writes`` (a status written twice to one order), ``event_to_shop_p95_s`` (from
the change in Hogia Smart to the shop's status write), ``captures`` and
``duplicate_captures`` (Klarna's captures per order, from the sandbox's payment records),
``tracking_items`` (one per order expected), ``lost`` (a change not in the shop at the end).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import requests

from integrations.benchmarks.orders import (
    _customer,
    _percentile,
    _say,
    _seconds,
    _ShopFront,
    _workers,
    child_run,
    run_measured,
    targets_report,
)

ORDERS = 40
WINDOW_SECONDS = 60
FAULTS = 8
GIVE_UP_SECONDS = 150
MAPPED = {"Delivered": "skickad", "Paid": "completed"}
TARGETS = [
    ("event_to_shop_p95_s", "<=", 60.0, " s"),
    ("duplicate_writes", "==", 0, ""),
    ("duplicate_captures", "==", 0, ""),
    ("lost", "==", 0, ""),
]


def run(*, say, orders: int = ORDERS, window: int = WINDOW_SECONDS, faults: int = FAULTS) -> dict:
    figures = run_measured(
        say=say,
        name="status",
        module="integrations.benchmarks.status",
        config={"orders": orders, "window": window, "faults": faults},
    )
    targets_report(say, figures, TARGETS)
    return figures


def measure(config: dict) -> None:
    child_run(
        config,
        _measure,
        {
            "schedule": "invoice feed read every 30 s per customer (stager, 10 s tick); "
            "a change read is pushed at once"
        },
    )


def _control(shop, method: str, path: str, body=None):
    response = requests.request(method, f"{shop.home_url}_sandbox/{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def _setup(shop, customer) -> None:
    from integrations.models import FlowSettings, StatusMapping
    from integrations.services import shop_connection_test

    _control(shop, "POST", "settings", {"plugins": ["klarna", "nexi", "svea", "shipment_tracking"]})
    _control(shop, "POST", "order-statuses", {"wc-skickad": "Skickad"})
    report = shop_connection_test(shop=shop)
    if not report.ok:
        raise RuntimeError(f"test connection failed: {report.summary}")
    FlowSettings.objects.filter(customer=customer).update(order_status_to_shop=True)
    StatusMapping.objects.create(
        customer=customer,
        hogia_status="Delivered",
        action="set_status",
        woo_status=MAPPED["Delivered"],
        pass_tracking=True,
    )
    StatusMapping.objects.create(
        customer=customer, hogia_status="Paid", action="set_status", woo_status=MAPPED["Paid"]
    )


def _invoiced_orders(shop, customer, count: int) -> dict[int, str]:
    """``count`` Klarna orders placed and invoiced; woo order id -> Hogia invoice id."""
    import uuid

    from integrations.models import OrderTransfer
    from integrations.orders.attempt import order_transfer
    from integrations.orders.invoice_status import invoice_statuses_read
    from integrations.orders.poll import orders_poll

    front = _ShopFront(shop)
    body = front.requests["A1_guest_mixed_vat_processing"]
    for _n in range(count):
        front.requests["klarna"] = {
            **body,
            "payment_method": "klarna_payments",
            "payment_method_title": "Klarna",
            "set_paid": True,
            "transaction_id": str(uuid.uuid4()),
        }
        front.place("klarna")
    orders_poll(shop=shop)
    for transfer_id in OrderTransfer.objects.filter(shop=shop, state=OrderTransfer.State.QUEUED).values_list(
        "pk", flat=True
    ):
        order_transfer(transfer_id=transfer_id)
    invoice_statuses_read(customer=customer)  # the invoices as created: drafts, nothing to do
    return dict(
        OrderTransfer.objects.filter(shop=shop, state=OrderTransfer.State.INVOICED).values_list(
            "woo_order_id", "hogia_invoice_id"
        )
    )


def _measure(config: dict, *, folder: Path) -> dict:
    from integrations.models import StatusPush
    from integrations.sandboxes import demo
    from integrations.sandboxes.process import SandboxProcess

    rng = random.Random(11)
    with ExitStack() as stack:
        woo = stack.enter_context(SandboxProcess("woocommerce"))
        hogia = stack.enter_context(SandboxProcess("hogia"))
        requests.post(f"{hogia.url}/_sandbox/rate-limit", json={"requests": 0}, timeout=30).raise_for_status()
        customer, shop = _customer(woo_url=woo.url, hogia_url=hogia.url)
        _setup(shop, customer)
        invoices = _invoiced_orders(shop, customer, config["orders"])
        _say(f"{len(invoices)} Klarna orders invoiced; Delivered and Paid over {config['window']} s")
        window = float(config["window"])
        events = []
        for order_id, invoice_id in invoices.items():
            delivered = rng.uniform(0, window * 0.7)
            events.append((delivered, order_id, invoice_id, "Delivered"))
            events.append((rng.uniform(delivered, window), order_id, invoice_id, "Paid"))
        events.sort()
        fault_times = sorted(rng.uniform(0, window) for _n in range(config["faults"]))
        made: list[tuple[int, str, float]] = []
        with _workers(folder) as workers:
            started = time.time()
            for at, order_id, invoice_id, status in events:
                while fault_times and fault_times[0] <= at:
                    fault_times.pop(0)
                    requests.post(
                        f"{woo.url}/_sandbox/faults",
                        json={"mode": "status", "status": 500, "count": 1},
                        timeout=10,
                    )
                time.sleep(max(0.0, started + at - time.time()))
                delivery = (
                    {
                        "carrier": "PostNord",
                        "trackingNumber": f"0037071{order_id:010d}",
                        "trackingUrl": f"https://tracking.postnord.com/se/?id=0037071{order_id:010d}",
                    }
                    if status == "Delivered"
                    else None
                )
                made.append((order_id, status, time.time()))
                requests.post(
                    f"{hogia.url}/_sandbox/{demo.HOGIA_ORGANIZATION_ID}/customerinvoices/{invoice_id}/status",
                    json={"status": status, **({"delivery": delivery} if delivery else {})},
                    timeout=30,
                ).raise_for_status()
            deadline = time.monotonic() + GIVE_UP_SECONDS
            while time.monotonic() < deadline:
                workers.check()
                writes = _writes(shop, started)
                if all(
                    any(w["to"] == MAPPED[s] and w["at"] >= t for w in writes.get(o, [])) for o, s, t in made
                ):
                    break
                time.sleep(1)
            pushes = Counter(StatusPush.objects.filter(transfer__shop=shop).values_list("state", flat=True))
        return _figures(shop, made, invoices, pushes, config["faults"], started)


def _writes(shop, since: float) -> dict[int, list[dict]]:
    """The status writes the shop got through its REST API since ``since`` (not the checkouts)."""
    by_order: dict[int, list[dict]] = {}
    for write in _control(shop, "GET", "status-writes")["status_writes"]:
        if write.get("by") == "rest" and write["at"] >= since:
            by_order.setdefault(int(write["order_id"]), []).append(write)
    return by_order


def _figures(shop, made, invoices, pushes, faults: int, started: float) -> dict:
    from integrations.connections import woocommerce_client

    writes = _writes(shop, started)
    latencies, lost = [], 0
    for order_id, status, at in made:
        written = [w["at"] for w in writes.get(order_id, []) if w["to"] == MAPPED[status] and w["at"] >= at]
        if written:
            latencies.append(min(written) - at)
        else:
            lost += 1
    pairs = Counter((order_id, w["to"]) for order_id, ws in writes.items() for w in ws)
    per_order = [len(r.get("captures") or []) for r in _control(shop, "GET", "payments")["payments"].values()]
    woo = woocommerce_client(shop=shop)
    trackings = [
        len(woo.shipment_trackings(order_id, namespace="wc-shipment-tracking/v3")) for order_id in invoices
    ]
    return {
        "orders": len(invoices),
        "events": len(made),
        "writes_woo": sum(pairs.values()),
        "min_writes_woo": len(made),
        "duplicate_writes": sum(n - 1 for n in pairs.values() if n > 1),
        "event_to_shop_p50_s": _seconds(_percentile(latencies, 0.5)),
        "event_to_shop_p95_s": _seconds(_percentile(latencies, 0.95)),
        "event_to_shop_max_s": _seconds(max(latencies) if latencies else None),
        "captures": sum(per_order),
        "duplicate_captures": sum(n - 1 for n in per_order if n > 1),
        "tracking_items": sum(trackings),
        "duplicate_tracking": sum(n - 1 for n in trackings if n > 1),
        "lost": lost,
        "pushes": dict(pushes),
        "faults_injected": faults,
    }
