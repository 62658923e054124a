"""One rate budget per Hogia Smart company, shared by every shop, flow and process."""
from __future__ import annotations

import threading
import time

import pytest
import requests
from django.db import connection as db_connection

from integrations.connections import hogia_client, woocommerce_client
from integrations.catalog.bindings import shop_taxes
from integrations.catalog.to_hogia import hogia_article_write, products_map, shop_products_all
from integrations.models import Flow, HogiaConnection
from integrations.ratebudget import SAFETY_SECONDS, rate_slot_take
from tests.integrations.helpers import connected_customer

pytestmark = pytest.mark.postgres  # also run on PostgreSQL: the budget is shared through the database

ORG = "11111111-2222-4333-8444-555555555555"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.django_db
def test_a_full_window_makes_the_caller_wait_until_the_oldest_call_leaves_it():
    clock = FakeClock()
    waits = [rate_slot_take(organization_id=ORG, requests=3, seconds=1, clock=clock, sleep=clock.sleep)
             for _ in range(3)]
    assert waits == [0, 0, 0]
    clock.now += 0.4
    waited = rate_slot_take(organization_id=ORG, requests=3, seconds=1, clock=clock, sleep=clock.sleep)
    assert waited == pytest.approx(0.6 + SAFETY_SECONDS)
    # Another company has its own window.
    assert rate_slot_take(organization_id="99999999-2222-4333-8444-555555555555", requests=3, seconds=1,
                          clock=clock, sleep=clock.sleep) == 0


@pytest.mark.django_db
def test_no_budget_means_no_wait():
    assert rate_slot_take(organization_id=ORG, requests=0, seconds=5) == 0


@pytest.mark.django_db
def test_the_client_of_a_connection_takes_slots_from_the_shared_budget(woo_sandbox, hogia_sandbox):
    customer, _shops = connected_customer(woo_sandbox, hogia_sandbox)
    connection = HogiaConnection.objects.get(customer=customer)
    connection.rate_limit_requests, connection.rate_limit_seconds = 4, 1
    requests.post(f"{hogia_sandbox.url}/_sandbox/rate-limit", json={"requests": 0}).raise_for_status()
    client = hogia_client(connection=connection)
    started = time.monotonic()
    for _ in range(8):
        client.organization()
    # Eight calls at four a second: the second four wait for the first to leave the window.
    assert time.monotonic() - started >= 1.0


@pytest.mark.django_db(transaction=True)
def test_two_shops_syncing_at_once_stay_within_the_companys_limit(woo_sandbox, hogia_sandbox):
    customer, shops = connected_customer(woo_sandbox, hogia_sandbox, flow=Flow.ECOM)
    # The sandbox's limit, scaled down so that the test takes seconds: 10 calls a second.
    requests.post(f"{hogia_sandbox.url}/_sandbox/rate-limit",
                  json={"requests": 10, "seconds": 1}).raise_for_status()
    HogiaConnection.objects.filter(customer=customer).update(rate_limit_requests=10, rate_limit_seconds=1)
    statuses: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(shops))

    def sync(shop):
        session = requests.Session()
        session.hooks["response"].append(lambda response, *args, **kwargs: statuses.append(response.status_code))
        try:
            connection = HogiaConnection.objects.get(customer=customer)
            client = hogia_client(connection=connection, session=session)
            woo = woocommerce_client(shop=shop)
            mapped = products_map(shop_products_all(woo=woo), taxes=shop_taxes(woo=woo))
            barrier.wait()
            # The Hogia half of each shop's article sync, at the same time. (The flows' own
            # bookkeeping is left out: the in-memory test database locks whole tables.)
            for _sku, (_item, article) in sorted(mapped.articles.items()):
                hogia_article_write(customer=customer, hogia=client, article=article, known=None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            db_connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=sync, args=(shop,)) for shop in shops]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert not errors, errors
    api_calls = [s for s in statuses if s != 429]
    assert len(api_calls) > 20  # more than two windows' worth, from two shops at once
    assert statuses.count(429) == 0
    assert elapsed >= (len(api_calls) - 1) // 10 * 1.0 * 0.9
