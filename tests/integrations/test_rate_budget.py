"""One rate budget per Hogia Smart API client, shared by every company, shop, flow and process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import requests
from django.db import connection as db_connection

from integrations.connections import hogia_client
from integrations.models import HogiaArticle, HogiaConnection
from integrations.ratebudget import SAFETY_SHARE, hogia_rate_key, rate_slot_take
from integrations.sandboxes import demo
from tests.factories import CustomerFactory
from tests.integrations.helpers import connected_customer
from tests.workers import MANAGE, database_url

pytestmark = pytest.mark.postgres  # also run on PostgreSQL: the budget is shared through the database

ORG = "11111111-2222-4333-8444-555555555555"
OTHER_ORG = "22222222-3333-4444-8555-666666666666"
SECRET = "hemlig-klienthemlighet-0001"


def unsaved_connection(**fields) -> HogiaConnection:
    return HogiaConnection(
        **{
            "organization_id": ORG,
            "client_id": "portal-client",
            "client_secret": SECRET,
            "auth_base": "https://id.hogia.se",
            **fields,
        }
    )


# -- the key: which calls count together ------------------------------------------------------------


def test_companies_reached_with_one_api_client_have_one_key_whatever_their_secret():
    key = hogia_rate_key(connection=unsaved_connection())
    assert (
        hogia_rate_key(connection=unsaved_connection(organization_id=OTHER_ORG, client_secret="a new secret"))
        == key
    )
    assert SECRET not in key


def test_the_key_ignores_case_and_a_trailing_slash():
    key = hogia_rate_key(connection=unsaved_connection())
    assert (
        hogia_rate_key(
            connection=unsaved_connection(auth_base="HTTPS://ID.Hogia.se/", client_id="Portal-Client")
        )
        == key
    )


def test_another_client_id_or_token_address_is_another_api_client():
    key = hogia_rate_key(connection=unsaved_connection())
    assert hogia_rate_key(connection=unsaved_connection(client_id="annan-klient")) != key
    assert hogia_rate_key(connection=unsaved_connection(auth_base="https://id.test.hogia.se")) != key


# -- the window --------------------------------------------------------------------------------------


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
    company = hogia_rate_key(connection=unsaved_connection())
    waits = [
        rate_slot_take(client_key=company, requests=3, seconds=1, clock=clock, sleep=clock.sleep)
        for _ in range(3)
    ]
    assert waits == [0, 0, 0]
    clock.now += 0.4
    # Another company on the same API client finds the window full.
    same_client = hogia_rate_key(connection=unsaved_connection(organization_id=OTHER_ORG))
    waited = rate_slot_take(client_key=same_client, requests=3, seconds=1, clock=clock, sleep=clock.sleep)
    assert waited == pytest.approx(0.6 + SAFETY_SHARE * 1)
    # Another API client has its own window.
    other_client = hogia_rate_key(connection=unsaved_connection(client_id="annan-klient"))
    assert rate_slot_take(client_key=other_client, requests=3, seconds=1, clock=clock, sleep=clock.sleep) == 0


@pytest.mark.django_db
def test_on_hogias_5_s_window_the_margin_stays_0_15_s():
    clock = FakeClock()
    key = hogia_rate_key(connection=unsaved_connection())
    for _ in range(25):
        rate_slot_take(client_key=key, requests=25, seconds=5, clock=clock, sleep=clock.sleep)
    assert rate_slot_take(
        client_key=key, requests=25, seconds=5, clock=clock, sleep=clock.sleep
    ) == pytest.approx(5.15)


@pytest.mark.django_db
def test_no_budget_means_no_wait():
    assert (
        rate_slot_take(client_key=hogia_rate_key(connection=unsaved_connection()), requests=0, seconds=5) == 0
    )


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


# -- two processes at once ---------------------------------------------------------------------------

# The sandbox's limit, scaled down so that a test takes seconds; the connections' budget matches it.
RATE_REQUESTS, RATE_SECONDS = 10, 2

# One company's articles written to Hogia Smart as the initial sync writes them (the create, then
# the portal's record of it), in a process of its own that starts when told to.
SYNC = """
import json, sys, time
from decimal import Decimal
import django
django.setup()
import requests
from integrations.catalog.to_hogia import article_base, hogia_article_write, hogia_article_written
from integrations.connections import hogia_client
from integrations.mapping.articles import content_hash
from integrations.models import HogiaConnection

connection = HogiaConnection.objects.select_related("customer").get(pk=int(sys.argv[1]))
statuses = []
session = requests.Session()
session.hooks["response"].append(
    lambda response, *args, **kwargs: None if response.url.endswith("/connect/token")
    else statuses.append(response.status_code))
hogia = hogia_client(connection=connection, session=session)
print("ready", flush=True)
sys.stdin.readline()
started = time.time()
for n in range(int(sys.argv[2])):
    article = {"number": f"P{connection.pk}-{n:03}", "name": f"Artikel {n}", "unit": "st",
               "vatPercent": Decimal(25), "prices": {"ordinary": Decimal("10.00")}}
    _action, answer = hogia_article_write(customer=connection.customer, hogia=hogia, article=article, known=None)
    hogia_article_written(customer=connection.customer, number=article["number"], answer=answer,
                          written_hash=content_hash(article_base(article)))
print(json.dumps({"statuses": statuses, "started": started, "finished": time.time()}), flush=True)
"""


def company(
    hogia_sandbox, *, name: str, org: str, client_id: str, client_secret: str, auth_base: str
) -> HogiaConnection:
    """A customer's Hogia Smart company, created in the sandbox unless it is the demo's."""
    if org != demo.HOGIA_ORGANIZATION_ID:
        requests.post(
            f"{hogia_sandbox.url}/_sandbox/organizations",
            json={
                "id": org,
                "name": name,
                "organizationNumber": "556000-0000",
                "clientId": client_id,
                "clientSecret": client_secret,
            },
            timeout=10,
        ).raise_for_status()
    return HogiaConnection.objects.create(
        customer=CustomerFactory(name=name),
        organization_id=org,
        client_id=client_id,
        client_secret=client_secret,
        api_base=hogia_sandbox.url,
        auth_base=auth_base,
        rate_limit_requests=RATE_REQUESTS,
        rate_limit_seconds=RATE_SECONDS,
    )


def sync_in_processes(connections: list[HogiaConnection], *, articles: int) -> list[dict]:
    """Each connection's articles written by a process of its own, all started at once."""
    db_connection.close()  # SQLite: no open transaction of ours may hold a lock the processes wait for
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "LOG_LEVEL": "WARNING",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SYNC, str(c.pk), str(articles)],
            env=env,
            cwd=MANAGE.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in connections
    ]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready", process.communicate(timeout=30)
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        outcomes = [process.communicate(timeout=90) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    assert all(process.returncode == 0 for process in processes), outcomes
    return [json.loads(out.strip().splitlines()[-1]) for out, _err in outcomes]


@pytest.mark.django_db(transaction=True)
def test_two_companies_on_one_api_client_syncing_in_two_processes_stay_within_its_limit(hogia_sandbox):
    requests.post(
        f"{hogia_sandbox.url}/_sandbox/rate-limit",
        json={"requests": RATE_REQUESTS, "seconds": RATE_SECONDS},
        timeout=10,
    ).raise_for_status()
    first = company(
        hogia_sandbox,
        name="Första AB",
        org=demo.HOGIA_ORGANIZATION_ID,
        client_id=demo.HOGIA_CLIENT_ID,
        client_secret=demo.HOGIA_CLIENT_SECRET,
        auth_base=hogia_sandbox.url,
    )
    # The same API client, its token address spelt with a trailing slash.
    second = company(
        hogia_sandbox,
        name="Andra AB",
        org=OTHER_ORG,
        client_id=demo.HOGIA_CLIENT_ID,
        client_secret=demo.HOGIA_CLIENT_SECRET,
        auth_base=f"{hogia_sandbox.url}/",
    )
    articles = 15
    results = sync_in_processes([first, second], articles=articles)

    statuses = [status for result in results for status in result["statuses"]]
    assert statuses.count(429) == 0, statuses
    assert len(statuses) == 2 * articles  # one create each: more than two windows' worth together
    assert max(r["started"] for r in results) < min(r["finished"] for r in results)  # at the same time
    # In a sliding window of R calls per W seconds, call k (from 0) cannot go before (k // R) * W.
    elapsed = max(r["finished"] for r in results) - min(r["started"] for r in results)
    assert elapsed >= (2 * articles - 1) // RATE_REQUESTS * RATE_SECONDS
    assert HogiaArticle.objects.filter(customer__in=[first.customer, second.customer]).count() == 2 * articles


@pytest.mark.django_db(transaction=True)
def test_two_api_clients_syncing_in_two_processes_do_not_wait_for_each_other(hogia_sandbox):
    requests.post(
        f"{hogia_sandbox.url}/_sandbox/rate-limit",
        json={"requests": RATE_REQUESTS, "seconds": RATE_SECONDS},
        timeout=10,
    ).raise_for_status()
    first = company(
        hogia_sandbox,
        name="Första AB",
        org=demo.HOGIA_ORGANIZATION_ID,
        client_id=demo.HOGIA_CLIENT_ID,
        client_secret=demo.HOGIA_CLIENT_SECRET,
        auth_base=hogia_sandbox.url,
    )
    second = company(
        hogia_sandbox,
        name="Andra AB",
        org=OTHER_ORG,
        client_id="andra-klienten",
        client_secret="andra-hemligheten",
        auth_base=hogia_sandbox.url,
    )
    # A full window each: sharing one budget, the later half of the calls would wait a window.
    results = sync_in_processes([first, second], articles=RATE_REQUESTS)

    statuses = [status for result in results for status in result["statuses"]]
    assert statuses == [201] * (2 * RATE_REQUESTS), statuses
    assert max(r["started"] for r in results) < min(r["finished"] for r in results)
    assert all(r["finished"] - r["started"] < RATE_SECONDS for r in results), results
