"""Test helpers: act as the shop owner (orders placed through the shop's REST API) and
set up a customer connected to the sandboxes."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import urlencode

import requests
from django.utils import timezone

from billing.models import Customer
from integrations.clients.oauth1 import oauth1_sign
from integrations.models import Flow, FlowSettings, HogiaConnection, Shop, ShopCatalog
from integrations.sandboxes import demo
from integrations.sandboxes.fixtures import WOOCOMMERCE_11
from tests.factories import CustomerFactory, SubscriptionFactory, package

# A third store in the sandbox that keeps prices excluding VAT (the fixtures' store B).
NET_STORE = (
    "/butik-netto",
    "ck_netto_00000000000000000000000000000003",
    "cs_netto_00000000000000000000000000000003",
)


class ShopFront:
    """What the shop does by itself (checkouts, status changes), through its REST API."""

    def __init__(self, base: str, key: str, secret: str):
        self.base, self.key, self.secret = base.rstrip("/") + "/", key, secret
        self.session = requests.Session()

    def call(self, method: str, path: str, body=None) -> dict | list:
        url = f"{self.base}wp-json/wc/v3/{path}"
        query = oauth1_sign(
            method=method, url=url, params=[], consumer_key=self.key, consumer_secret=self.secret
        )
        response = self.session.request(method, f"{url}?{urlencode(query)}", json=body, timeout=10)
        assert response.status_code < 300, response.text
        return response.json(parse_float=Decimal)

    def place(self, fixture: str) -> dict:
        """Place one of the real store's orders again, from the request that created it."""
        body = json.loads((WOOCOMMERCE_11 / "orders" / f"{fixture}.request.json").read_text())
        return self.call("POST", "orders", body)

    def flush_webhooks(self) -> list:
        return requests.post(f"{self.base}_sandbox/webhooks/flush", timeout=30).json()


def net_store(woo_sandbox) -> None:
    prefix, key, secret = NET_STORE
    requests.post(
        f"{woo_sandbox.url}/_sandbox/seed",
        json={
            "stores": [
                {
                    "prefix": prefix,
                    "consumer_key": key,
                    "consumer_secret": secret,
                    "prices_include_tax": False,
                    "fixtures": True,
                }
            ]
        },
        timeout=10,
    ).raise_for_status()


def connected_customer(
    woo_sandbox,
    hogia_sandbox,
    *,
    package_code: str = "400",
    stores=None,
    flow: int = Flow.COMBO,
    name: str = "Demo Handel AB",
    trigger_statuses=("processing", "completed", "on-hold"),
    overwrite_accepted: bool = True,
) -> tuple[Customer, list[Shop]]:
    """A customer with a package, flow settings, the Hogia sandbox company and shops on the
    WooCommerce sandbox (default: the two demo stores). The shops have been syncing (overwriting
    accepted) unless ``overwrite_accepted`` is False: then they are newly connected."""
    customer = CustomerFactory(name=name)
    SubscriptionFactory(customer=customer, package=package(package_code))
    FlowSettings.objects.create(customer=customer, flow=flow)
    HogiaConnection.objects.create(
        customer=customer,
        organization_id=demo.HOGIA_ORGANIZATION_ID,
        client_id=demo.HOGIA_CLIENT_ID,
        client_secret=demo.HOGIA_CLIENT_SECRET,
        api_base=hogia_sandbox.url,
        auth_base=hogia_sandbox.url,
    )
    shops = []
    for prefix, shop_name, key, secret, unit in stores or demo.WOO_STORES:
        shop = Shop.objects.create(
            customer=customer,
            name=shop_name,
            url=f"{woo_sandbox.url}{prefix}/",
            consumer_key=key,
            consumer_secret=secret,
            result_unit=unit,
            trigger_statuses=list(trigger_statuses),
        )
        if overwrite_accepted:
            ShopCatalog.objects.create(
                shop=shop, overwrite_accepted_at=timezone.now(), overwrite_accepted_by="tests"
            )
        shops.append(shop)
    return customer, shops


# The demo company's campaign (SE-MUGG-35, 2026-11-20 to 2026-11-30) is running on this day.
DEMO_CAMPAIGN_DAY = date(2026, 11, 25)


def campaign_day(monkeypatch, day: date = DEMO_CAMPAIGN_DAY) -> None:
    """Make ``day`` the day the article mapping judges campaigns by: the flows let it default to
    today, and a campaign that has ended is not written (only the mapping's clock is replaced)."""
    from integrations.mapping import articles

    monkeypatch.setattr(articles, "timezone", SimpleNamespace(localdate=lambda: day))


def front(shop: Shop) -> ShopFront:
    return ShopFront(shop.home_url, shop.consumer_key, shop.consumer_secret)


def sandbox_fault(sandbox, **fault) -> None:
    """Queue a fault for the sandbox's next calls, e.g. ``mode="status", status=503, count=4``."""
    requests.post(f"{sandbox.url}/_sandbox/faults", json=fault, timeout=10).raise_for_status()


def retry_due_now(transfer) -> None:
    """The back-off is minutes long: let it be over without waiting for it."""
    from django.utils import timezone

    from integrations.models import OrderTransfer

    OrderTransfer.objects.filter(pk=transfer.pk).update(next_attempt_at=timezone.now())


def _queued(func: str) -> list[tuple]:
    """The arguments of the tasks ``func`` waiting in django-q2's ORM broker, oldest first; the
    tasks are taken off the queue."""
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    taken = []
    for row in OrmQ.objects.order_by("id"):
        task = SignedPackage.loads(row.payload)
        if task["func"] == func:
            row.delete()
            taken.append(tuple(task["args"]))
    return taken


def webhook_orders_run() -> list[str]:
    """Run the order deliveries' tasks waiting in the queue, as a worker would (the order recorded,
    then transferred): for tests that post webhooks without a task cluster."""
    from integrations.tasks import webhook_order

    return [webhook_order(*args) for args in _queued("integrations.tasks.webhook_order")]


def webhook_orders_record() -> list:
    """Only the first half of those tasks: the orders recorded from the stored deliveries
    (for shops no sandbox answers)."""
    from integrations.intake import webhook_order_take

    return [webhook_order_take(delivery_id=args[0]) for args in _queued("integrations.tasks.webhook_order")]
