"""The initial catalogue sync, both ways: preview, run, a crash in the middle and a resume.

Case 1 copies the demo shop's catalogue into an empty Hogia Smart company; case 2 copies
the demo company's articles into an empty WooCommerce store. Each side is given a SKU
that matches, one duplicated and (in the shop) a product without SKU.
"""
from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
import requests

from integrations.clients import HogiaSmartClient
from integrations.connections import hogia_client, woocommerce_client
from integrations.catalog import initial_sync as initial
from integrations.catalog.sync import catalog_sync
from integrations.catalog.initial_sync import (InitialSyncRefused, initial_sync_create, initial_sync_preview,
                                             initial_sync_progress, initial_sync_run)
from integrations.models import (ArticleBinding, Flow, FlowSettings, HogiaConnection, InitialSync,
                                 InitialSyncItem, Shop)
from integrations.sandboxes import demo
from tests.integrations.helpers import campaign_day, connected_customer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hogia_without_rate_limit")]

EMPTY_ORG = "22222222-3333-4444-8555-666666666666"
EMPTY_STORE = ("/tom-butik", "ck_tom_000000000000000000000000000000000001",
               "cs_tom_000000000000000000000000000000000001")


class Crash(BaseException):
    """The worker dies (not an error the code handles)."""



def empty_hogia_company(hogia_sandbox, articles: list[dict]) -> None:
    requests.post(f"{hogia_sandbox.url}/_sandbox/organizations", json={
        "id": EMPTY_ORG, "name": "Tom AB", "organizationNumber": "556000-0001",
        "clientId": demo.HOGIA_CLIENT_ID, "clientSecret": demo.HOGIA_CLIENT_SECRET,
        "articles": articles}).raise_for_status()


def hogia_numbers(hogia_sandbox, org: str) -> Counter:
    client = HogiaSmartClient(api_base=hogia_sandbox.url, organization_id=org,
                              client_id=demo.HOGIA_CLIENT_ID, client_secret=demo.HOGIA_CLIENT_SECRET)
    return Counter(a["number"] for a in client.articles_iter())


def shop_skus(shop: Shop) -> Counter:
    woo = woocommerce_client(shop=shop)
    skus = Counter()
    for product in woo.products_iter():
        skus[product["sku"]] += 1
        if product["type"] == "variable":
            skus.update(v["sku"] for v in woo.variations_iter(product["id"]))
    return skus


# -- case 1: shop → Hogia Smart ----------------------------------------------------------------------

def test_case_1_preview_run_crash_and_resume(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox, flow=Flow.ECOM)
    empty_hogia_company(hogia_sandbox, [
        {"number": "SE-BOK-001", "name": "Bokföring", "vatPercent": 6},      # matches the shop
        {"number": "SE-MUGG-35", "name": "Mugg", "vatPercent": 25},          # two numbers that are
        {"number": "se-mugg-35", "name": "Mugg (gammal)", "vatPercent": 25},  # one SKU to a person
        {"number": "BARA-HOGIA", "name": "Bara i Hogia", "vatPercent": 25}])
    HogiaConnection.objects.filter(customer=customer).update(organization_id=EMPTY_ORG, rate_limit_requests=0)
    # A second product with the SKU of another (WooCommerce refuses this; an import may not).
    requests.post(f"{woo_sandbox.url}/_sandbox/products?new_id=1", json=[
        {"name": "Kaffe (dubblett)", "sku": "SE-KAFFE-500", "type": "simple", "regular_price": "1.00"}]
                  ).raise_for_status()

    job = initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_HOGIA, requested_by="support")
    job = initial_sync_preview(job_id=job.pk)

    assert job.state == InitialSync.State.READY
    preview = job.preview
    assert [m[0] for m in preview["match"]] == ["SE-BOK-001"]
    assert preview["only_in_shop"] == ["SE-BRYGG-01", "SE-PRESENT-500", "SE-TE-100", "SE-TS-L", "SE-TS-M",
                                       "SE-TS-S"]
    assert preview["only_in_hogia"] == ["BARA-HOGIA"]
    assert list(preview["duplicated_in_shop"]) == ["SE-KAFFE-500"]
    assert preview["duplicated_in_hogia"] == {"SE-MUGG-35": ["SE-MUGG-35", "se-mugg-35"]}
    assert [m["id"] for m in preview["missing_sku"]] == [27]  # Tygkasse
    assert job.total == 6
    assert hogia_numbers(hogia_sandbox, EMPTY_ORG)["SE-TS-S"] == 0  # the preview wrote nothing

    connection = HogiaConnection.objects.get(customer=customer)
    client = hogia_client(connection=connection)
    real_create, calls = client.article_create, []

    def dying_create(data, sequence_id):
        answer = real_create(data, sequence_id)
        calls.append(data["number"])
        if len(calls) == 3:
            raise Crash("killed after Hogia created the third article, before it was recorded")
        return answer

    client.article_create = dying_create
    with pytest.raises(Crash):
        initial_sync_run(job_id=job.pk, hogia=client)
    job.refresh_from_db()
    assert job.state == InitialSync.State.RUNNING and job.done == 2
    assert job.items.filter(state=InitialSyncItem.State.SENDING).count() == 1
    # "Run" refuses while the run might still be alive, then resumes once it is stale.
    with pytest.raises(InitialSyncRefused):
        initial_sync_run(job_id=job.pk)
    job = initial_sync_run(job_id=job.pk, stale_after=timedelta(0))

    assert job.state == InitialSync.State.DONE and (job.done, job.total, job.failed) == (6, 6, 0)
    numbers = hogia_numbers(hogia_sandbox, EMPTY_ORG)
    assert all(numbers[sku] == 1 for sku in preview["only_in_shop"]), numbers
    assert numbers["SE-KAFFE-500"] == 0 and numbers["SE-TS"] == 0
    written = hogia_client(connection=connection)
    article = written.article_by_number("SE-TS-M")
    assert article["name"] == "T-shirt Logga - M" and article["prices"]["ordinary"] == Decimal("159.2000")
    # The shop keeps no stock of its tea and gift cards: nor does Hogia Smart.
    assert [written.article_by_number(n)["isStockArticle"] for n in ("SE-TE-100", "SE-PRESENT-500")] == [
        False, False]
    assert (article["isStockArticle"], article["stockBalance"]) == (True, 3)
    assert job.report["written"] == 6 and job.report["resumed"] == 1
    assert job.report["left_out"]["duplicated_in_shop"] == 1 and job.report["left_out"]["missing_sku"] == 1
    assert ArticleBinding.objects.filter(shop=shop, sku="SE-BOK-001").exists()  # the match is bound
    progress = initial_sync_progress(job=job)
    assert progress["done"] == progress["total"] == 6 and progress["percent"] == 100.0
    # Done is done: the flow's periodic sync takes over and has nothing left to create.
    with pytest.raises(InitialSyncRefused):
        initial_sync_run(job_id=job.pk)


# -- case 2: Hogia Smart → shop ----------------------------------------------------------------------

def test_case_2_preview_run_crash_and_resume(woo_sandbox, hogia_sandbox, monkeypatch):
    campaign_day(monkeypatch)  # the demo mug's campaign is running
    prefix, key, secret = EMPTY_STORE
    requests.post(f"{woo_sandbox.url}/_sandbox/stores", json={
        "prefix": prefix, "consumer_key": key, "consumer_secret": secret}).raise_for_status()
    requests.post(f"{woo_sandbox.url}{prefix}/_sandbox/products", json=[
        {"name": "Kokbok", "sku": "SE-BOK-001", "type": "simple", "regular_price": "300.00"},
        {"name": "Påse", "sku": "", "type": "simple"},
        {"name": "Dubbel A", "sku": "DUBBEL", "type": "simple"},
        {"name": "Dubbel B", "sku": "DUBBEL", "type": "simple"}]).raise_for_status()
    customer, (shop,) = connected_customer(
        woo_sandbox, hogia_sandbox, flow=Flow.ERP,
        stores=[(prefix, "Tom butik", key, secret, "1")])
    # Often done long before go-live, with the flows still off.
    FlowSettings.objects.filter(customer=customer).update(sync_articles=False)
    HogiaConnection.objects.filter(customer=customer).update(rate_limit_requests=0)

    job = initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_SHOP)
    job = initial_sync_preview(job_id=job.pk)
    preview = job.preview
    assert [m[0] for m in preview["match"]] == ["SE-BOK-001"]
    assert preview["only_in_hogia"] == ["SE-BRYGG-01", "SE-KAFFE-500", "SE-MUGG-35", "SE-PRESENT-500",
                                        "SE-TE-100", "SE-TS-L", "SE-TS-M", "SE-TS-S", "expavg", "fraktavg",
                                        "rabatt"]
    assert preview["not_for_webshop"] == ["SE-BRYGG-01", "expavg", "fraktavg", "rabatt"]
    assert list(preview["duplicated_in_shop"]) == ["DUBBEL"] and len(preview["missing_sku"]) == 1
    assert job.total == 7

    monkeypatch.setattr(initial, "CHUNK", 3)
    woo = woocommerce_client(shop=shop)
    real_batch, batches = woo.products_batch, []

    def dying_batch(**kwargs):
        result = real_batch(**kwargs)
        batches.append(len(kwargs.get("create", ())))
        if len(batches) == 2:
            raise Crash("killed after the shop created the second batch, before it was recorded")
        return result

    woo.products_batch = dying_batch
    with pytest.raises(Crash):
        initial_sync_run(job_id=job.pk, woo=woo)
    job.refresh_from_db()
    assert job.done == 3 and job.items.filter(state=InitialSyncItem.State.SENDING).count() == 3

    job = initial_sync_run(job_id=job.pk, stale_after=timedelta(0))
    assert job.state == InitialSync.State.DONE and (job.done, job.failed) == (7, 0)
    skus = shop_skus(shop)
    for number in ("SE-KAFFE-500", "SE-MUGG-35", "SE-PRESENT-500", "SE-TE-100", "SE-TS-L", "SE-TS-M",
                   "SE-TS-S", "SE-BOK-001"):
        assert skus[number] == 1, (number, skus)
    assert skus["SE-BRYGG-01"] == 0 and skus["fraktavg"] == 0
    mugg = woo.products_by_sku(["SE-MUGG-35"])[0]
    assert (mugg["regular_price"], mugg["sale_price"], mugg["stock_quantity"]) == ("124.00", "99.00", 48)
    assert woo.products_by_sku(["SE-BOK-001"])[0]["regular_price"] == "300.00"  # a match is not changed
    assert job.items.filter(message__contains="found after a restart").count() == 3

    # Later the flow is switched on: its first sync writes only what differs.
    FlowSettings.objects.filter(customer=customer).update(sync_articles=True, sync_prices=True,
                                                          sync_stock=True, sync_campaign_prices=True)
    report = catalog_sync(customer=customer)
    assert report.writes_woo == 1  # only SE-BOK-001, whose shop price was not Hogia's
