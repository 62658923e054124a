"""The catalogue sync against the sandboxes: a 10,000-article catalogue, then the rate limit.

1. Flow 2 (Hogia Smart is master, prices, campaign prices and stock on): 10,000 articles
   marked "send to webshop" in the Hogia sandbox reach an empty WooCommerce store
   through the periodic sync (rowversion feed, pages of 500; the shop listed once;
   creates in batches of 100). Requests are counted by the sandboxes themselves and
   set against the minimum the APIs allow.
2. The same catalogue synced again, reading every article of both systems (a full
   reconciliation, the strictest case): ``writes_second_run`` must be 0.
3. A mixed day of business on a 60-article shop (orders in processing, on-hold, completed
   and cancelled, some invoiced, one refund waiting for support, a till sale, an order
   placed while a push runs), then the periodic sync: ``stock_errors`` is the number of
   articles whose shop stock is not what the stock rule says, computed from the two
   systems themselves (target 0).
4. With the Hogia rate limit on (configured higher than 25/5 s so that this part takes
   about a minute; the ratio is what counts): the initial sync case 1 of a 1,000-product
   shop into an empty Hogia company, one create per article. ``rate_limit_floor_seconds``
   is the time the limit alone forces for the requests made; 429s are counted.

Everything the benchmark writes to the portal's database is rolled back at the end.
"""

from __future__ import annotations

import math
import resource
import time
from datetime import date
from decimal import Decimal

import requests
from django.db import transaction
from django.utils import timezone

from billing.models import Customer, Package, Subscription
from integrations.catalog.initial_sync import initial_sync_create, initial_sync_preview, initial_sync_run
from integrations.catalog.stock import order_stock_taken
from integrations.catalog.sync import catalog_sync
from integrations.connections import hogia_client, woocommerce_client
from integrations.models import (
    Flow,
    FlowSettings,
    HogiaConnection,
    InitialSync,
    OrderTransfer,
    Shop,
    ShopCatalog,
)
from integrations.sandboxes import demo
from integrations.sandboxes.hogia import DEMO_ARTICLES
from integrations.sandboxes.process import SandboxProcess

ARTICLES = 10_000
RATE_PRODUCTS = 1_000
RATE_REQUESTS, RATE_SECONDS = 50, 2
STORE = (
    "/bench",
    "ck_bench_00000000000000000000000000000000001",
    "cs_bench_00000000000000000000000000000000001",
)
RATE_STORE = (
    "/bench-rate",
    "ck_brate_0000000000000000000000000000000001",
    "cs_brate_0000000000000000000000000000000001",
)
RATE_ORG = "33333333-4444-4555-8666-777777777777"
STOCK_ARTICLES = 60
STOCK_STORE = (
    "/bench-stock",
    "ck_bstock_000000000000000000000000000000001",
    "cs_bstock_000000000000000000000000000000001",
)
STOCK_ORG = "44444444-5555-4666-8777-888888888888"


class _Rollback(Exception):
    pass


def _stats(url: str) -> int:
    return requests.get(f"{url}/_sandbox/stats", timeout=30).json()["requests"]


def _reset_stats(*urls: str) -> None:
    for url in urls:
        requests.post(f"{url}/_sandbox/stats/reset", timeout=30).raise_for_status()


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _customer(
    *,
    name: str,
    flow: int,
    hogia_url: str,
    org: str,
    store: tuple,
    woo_url: str,
    rate_requests: int,
    rate_seconds: int,
    transfer_orders: bool = False,
) -> Customer:
    customer = Customer.objects.create(name=name, organisation_number="556036-0793")
    Subscription.objects.create(
        customer=customer, package=Package.objects.get(code="400"), start_date=date(2025, 1, 1)
    )
    FlowSettings.objects.create(
        customer=customer,
        flow=flow,
        sync_prices=True,
        sync_campaign_prices=True,
        sync_stock=True,
        transfer_orders=transfer_orders,
    )
    HogiaConnection.objects.create(
        customer=customer,
        organization_id=org,
        client_id=demo.HOGIA_CLIENT_ID,
        client_secret=demo.HOGIA_CLIENT_SECRET,
        api_base=hogia_url,
        auth_base=hogia_url,
        rate_limit_requests=rate_requests,
        rate_limit_seconds=rate_seconds,
    )
    prefix, key, secret = store
    shop = Shop.objects.create(
        customer=customer,
        name=name,
        url=f"{woo_url}{prefix}/",
        consumer_key=key,
        consumer_secret=secret,
        result_unit="1",
    )
    # Measured as a shop whose overwriting is allowed: a held shop would skip the work being timed.
    ShopCatalog.objects.create(
        shop=shop, overwrite_accepted_at=timezone.now(), overwrite_accepted_by="benchmark"
    )
    return customer


def _catalogue(count: int) -> list[dict]:
    articles = []
    for n in range(count):
        vat = (25, 12, 6, 25)[n % 4]
        prices = {"ordinary": f"{100 + n % 900}.00"}
        if n % 10 == 0:
            prices.update(
                {"campaign": f"{80 + n % 900}.00", "campaignFrom": "2026-12-01", "campaignTo": "2026-12-24"}
            )
        articles.append(
            {
                "number": f"B-{n:05d}",
                "name": f"Benchmarkartikel {n}",
                "vatPercent": vat,
                "prices": prices,
                "stockBalance": str(n % 50),
                "sendToWebshop": True,
            }
        )
    return articles


def _flow_2(*, say, woo, hogia) -> dict:
    prefix, key, secret = STORE
    requests.post(
        f"{woo.url}/_sandbox/stores",
        json={"prefix": prefix, "consumer_key": key, "consumer_secret": secret},
        timeout=30,
    ).raise_for_status()
    requests.post(f"{hogia.url}/_sandbox/rate-limit", json={"requests": 0}, timeout=30).raise_for_status()
    catalogue = _catalogue(ARTICLES)
    for start in range(0, ARTICLES, 2000):
        requests.post(
            f"{hogia.url}/_sandbox/{demo.HOGIA_ORGANIZATION_ID}/articles",
            json=catalogue[start : start + 2000],
            timeout=120,
        ).raise_for_status()
    customer = _customer(
        name="Benchmark flöde 2",
        flow=Flow.ERP,
        hogia_url=hogia.url,
        org=demo.HOGIA_ORGANIZATION_ID,
        store=STORE,
        woo_url=woo.url,
        rate_requests=0,
        rate_seconds=5,
    )
    say(f"flow 2: {ARTICLES} Hogia articles (+ the demo's) → an empty shop")
    _reset_stats(woo.url, hogia.url)
    started = time.perf_counter()
    first = catalog_sync(customer=customer, triggered_by="benchmark")
    seconds = time.perf_counter() - started
    requests_woo, requests_hogia = _stats(woo.url), _stats(hogia.url)
    created = sum(run.created_count for run in first.runs)
    say(
        f"  {created} products created in {seconds:.1f} s; {requests_woo} WooCommerce and "
        f"{requests_hogia} Hogia Smart requests"
    )
    total = ARTICLES + sum(1 for a in DEMO_ARTICLES if a.get("sendToWebshop"))
    hogia_total = ARTICLES + len(DEMO_ARTICLES)

    _reset_stats(woo.url, hogia.url)
    started = time.perf_counter()
    second = catalog_sync(customer=customer, full=True, triggered_by="benchmark")
    second_seconds = time.perf_counter() - started
    second_woo, second_hogia = _stats(woo.url), _stats(hogia.url)
    _reset_stats(woo.url, hogia.url)
    third = catalog_sync(customer=customer, triggered_by="benchmark")
    say(
        f"  again, reading everything: {second.writes} writes in {second_seconds:.1f} s "
        f"({second_woo} + {second_hogia} requests); by the change feed: {third.writes} writes, "
        f"{_stats(woo.url)} + {_stats(hogia.url)} requests"
    )
    return {
        "articles": total,
        "created": created,
        "seconds": round(seconds, 2),
        "requests_woo": requests_woo,
        "requests_hogia": requests_hogia,
        # one page to see the shop (empty), batches of 100 / feed pages of 500, one token
        "min_requests_woo": 1 + math.ceil(total / 100),
        "min_requests_hogia": 1 + math.ceil(hogia_total / 500),
        "requests_woo_ratio": round(requests_woo / (1 + math.ceil(total / 100)), 3),
        "requests_hogia_ratio": round(requests_hogia / (1 + math.ceil(hogia_total / 500)), 3),
        "writes_second_run": second.writes,
        "second_run_seconds": round(second_seconds, 2),
        "second_run_requests_woo": second_woo,
        "second_run_requests_hogia": second_hogia,
        "writes_feed_run": third.writes,
    }


def _rate_limited(*, say, woo, hogia) -> dict:
    prefix, key, secret = RATE_STORE
    products = [
        {
            "name": f"Produkt {n}",
            "sku": f"R-{n:05d}",
            "type": "simple",
            "regular_price": f"{50 + n % 500}.00",
            "tax_class": ("", "reduced-rate")[n % 2],
        }
        for n in range(RATE_PRODUCTS)
    ]
    requests.post(
        f"{woo.url}/_sandbox/seed",
        json={
            "stores": [
                {"prefix": prefix, "consumer_key": key, "consumer_secret": secret, "products": products}
            ]
        },
        timeout=60,
    ).raise_for_status()
    requests.post(
        f"{hogia.url}/_sandbox/organizations",
        json={
            "id": RATE_ORG,
            "name": "Benchmark Tom AB",
            "organizationNumber": "556000-0002",
            "clientId": demo.HOGIA_CLIENT_ID,
            "clientSecret": demo.HOGIA_CLIENT_SECRET,
        },
        timeout=30,
    ).raise_for_status()
    requests.post(
        f"{hogia.url}/_sandbox/rate-limit",
        json={"requests": RATE_REQUESTS, "seconds": RATE_SECONDS},
        timeout=30,
    ).raise_for_status()
    customer = _customer(
        name="Benchmark gränsad",
        flow=Flow.ECOM,
        hogia_url=hogia.url,
        org=RATE_ORG,
        store=RATE_STORE,
        woo_url=woo.url,
        rate_requests=RATE_REQUESTS,
        rate_seconds=RATE_SECONDS,
    )
    shop = customer.shops.get()
    statuses: list[int] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, *a, **k: statuses.append(response.status_code))
    client = hogia_client(connection=customer.hogia_connection, session=session)
    say(
        f"rate limit {RATE_REQUESTS} requests / {RATE_SECONDS} s: initial sync case 1 of "
        f"{RATE_PRODUCTS} products into an empty company"
    )
    job = initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_HOGIA, requested_by="benchmark")
    _reset_stats(hogia.url)
    started = time.perf_counter()
    initial_sync_preview(job_id=job.pk, hogia=client)
    job = initial_sync_run(job_id=job.pk, hogia=client)
    seconds = time.perf_counter() - started
    made = _stats(hogia.url)
    floor = max(0, made - RATE_REQUESTS) / RATE_REQUESTS * RATE_SECONDS
    say(
        f"  {job.done} articles in {seconds:.1f} s; {made} requests, floor {floor:.1f} s, "
        f"{statuses.count(429)} answered 429"
    )
    return {
        "rate_limit": f"{RATE_REQUESTS}/{RATE_SECONDS}s",
        "rate_limited_articles": job.done,
        "rate_limited_requests_hogia": made,
        "rate_limited_seconds": round(seconds, 2),
        "rate_limit_floor_seconds": round(floor, 2),
        "rate_limited_429s": statuses.count(429),
        "rate_limited_ratio": round(seconds / floor, 3) if floor else None,
    }


def _stock_mixed(*, say, woo, hogia) -> dict:
    """A shop's stock after a day of mixed business, checked against the stock rule article by article.

    Orders in processing, on-hold, completed and cancelled; some invoiced; one invoiced and
    then refunded by amount only (it waits for support); a till sale in Hogia; an order placed
    while a push runs. Then the periodic sync runs as it would (twice: the next interval).
    ``stock_errors`` counts articles whose shop stock is not Hogia's balance minus the pieces
    the shop's orders took (``_reduced_stock``, read back from the shop) whose invoice does
    not exist in Hogia Smart (looked up there by order number).
    """
    from integrations.catalog import to_shop
    from integrations.orders.attempt import order_transfer
    from integrations.orders.poll import orders_poll

    prefix, key, secret = STOCK_STORE
    requests.post(
        f"{woo.url}/_sandbox/stores",
        json={"prefix": prefix, "consumer_key": key, "consumer_secret": secret},
        timeout=30,
    ).raise_for_status()
    requests.post(f"{hogia.url}/_sandbox/rate-limit", json={"requests": 0}, timeout=30).raise_for_status()
    requests.post(
        f"{hogia.url}/_sandbox/organizations",
        json={
            "id": STOCK_ORG,
            "name": "Benchmark Lager AB",
            "organizationNumber": "556000-0003",
            "resultUnits": [{"number": "1", "name": "Webbutik"}],
            "modules": {"bookkeeping": True, "invoicing": True, "pointOfSale": True},
            "clientId": demo.HOGIA_CLIENT_ID,
            "clientSecret": demo.HOGIA_CLIENT_SECRET,
        },
        timeout=30,
    ).raise_for_status()
    articles = [
        {
            "number": f"L-{n:03d}",
            "name": f"Lagervara {n}",
            "vatPercent": 25,
            "prices": {"ordinary": "80.00"},
            "stockBalance": "20",
            "sendToWebshop": True,
        }
        for n in range(STOCK_ARTICLES)
    ]
    requests.post(f"{hogia.url}/_sandbox/{STOCK_ORG}/articles", json=articles, timeout=60).raise_for_status()
    customer = _customer(
        name="Benchmark lager",
        flow=Flow.ERP,
        hogia_url=hogia.url,
        org=STOCK_ORG,
        store=STOCK_STORE,
        woo_url=woo.url,
        rate_requests=0,
        rate_seconds=5,
        transfer_orders=True,
    )
    shop = customer.shops.get()
    shop.trigger_statuses = ["processing", "completed"]
    shop.save(update_fields=["trigger_statuses"])
    catalog_sync(customer=customer, triggered_by="benchmark")
    client = woocommerce_client(shop=shop)
    ids = {p["sku"]: p["id"] for p in client.products_iter()}
    buyer = {"first_name": "Eva", "last_name": "Ek", "email": "eva@example.se", "country": "SE"}

    def order(status: str, *lines: tuple[int, int]) -> dict:
        return client._request(
            "POST",
            client._url("orders"),
            json={
                "status": status,
                "billing": buyer,
                "line_items": [{"product_id": ids[f"L-{n:03d}"], "quantity": q} for n, q in lines],
            },
        ).data

    placed = []
    for n in range(0, 40, 2):
        placed.append(
            order(("processing", "on-hold", "completed", "processing")[n % 4], (n, 1 + n % 3), (n + 1, 2))
        )
    cancelled = order("on-hold", (3, 4), (5, 1))
    client.order_update(cancelled["id"], {"status": "cancelled"})
    orders_poll(shop=shop)
    queued = list(OrderTransfer.objects.filter(shop=shop, state=OrderTransfer.State.QUEUED).order_by("id"))
    for transfer in queued[: len(queued) // 2]:
        order_transfer(transfer_id=transfer.pk)
    refunded = OrderTransfer.objects.filter(shop=shop, state=OrderTransfer.State.INVOICED).first()
    client._request(
        "POST",
        client._url(f"orders/{refunded.woo_order_id}/refunds"),
        json={"amount": "10.00", "api_refund": False},
    )
    orders_poll(shop=shop)
    order_transfer(transfer_id=refunded.pk)
    requests.post(
        f"{hogia.url}/_sandbox/{STOCK_ORG}/till-sale",
        json={
            "lines": [{"articleNumber": "L-010", "quantity": 3}, {"articleNumber": "L-041", "quantity": 23}]
        },
        timeout=30,
    ).raise_for_status()
    real_reserved = to_shop.stock_reserved
    during = []

    def order_during_the_push(**kwargs):
        reserved = real_reserved(**kwargs)
        if not during:
            during.append(order("processing", (10, 2), (11, 1)))
            orders_poll(shop=shop)
        return reserved

    to_shop.stock_reserved = order_during_the_push
    try:
        catalog_sync(customer=customer, triggered_by="benchmark")
    finally:
        to_shop.stock_reserved = real_reserved
    catalog_sync(customer=customer, triggered_by="benchmark")
    errors = _stock_errors(shop=shop, hogia_client=hogia_client(connection=customer.hogia_connection))
    say(
        f"mixed stock run: {len(placed) + 2} orders, {len(queued) // 2} invoiced, one refund waiting, "
        f"a till sale, an order during the push: {errors} article(s) off the stock rule"
    )
    return {"stock_articles": STOCK_ARTICLES, "stock_errors": errors}


def _stock_errors(*, shop: Shop, hogia_client) -> int:
    """Articles whose shop stock differs from the rule, computed from the two systems themselves."""
    woo = woocommerce_client(shop=shop)
    taken: dict[str, Decimal] = {}
    for order in woo.orders_iter():
        if hogia_client.invoices_find(customer_order_number=str(order["number"])):
            continue
        for sku, pieces in order_stock_taken(order).items():
            taken[sku] = taken.get(sku, Decimal(0)) + Decimal(pieces)
    balances = {
        str(a["number"]): Decimal(str(a.get("stockBalance") or 0)) for a in hogia_client.articles_iter()
    }
    errors = 0
    for product in woo.products_iter():
        sku = product["sku"]
        expected = max(0, int(balances[sku] - taken.get(sku, Decimal(0))))
        if product.get("stock_quantity") != expected:
            errors += 1
    return errors


def run(*, say) -> dict:
    figures: dict = {}
    with SandboxProcess("woocommerce") as woo, SandboxProcess("hogia") as hogia:
        try:
            with transaction.atomic():
                figures.update(_flow_2(say=say, woo=woo, hogia=hogia))
                figures.update(_stock_mixed(say=say, woo=woo, hogia=hogia))
                figures.update(_rate_limited(say=say, woo=woo, hogia=hogia))
                raise _Rollback
        except _Rollback:
            pass
    figures["peak_rss_mb"] = _peak_rss_mb()
    say(f"peak RSS {figures['peak_rss_mb']} MB")
    return figures
