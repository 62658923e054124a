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

from integrations.catalog import initial_sync as initial
from integrations.catalog.initial_sync import (
    InitialSyncRefused,
    initial_sync_create,
    initial_sync_preview,
    initial_sync_progress,
    initial_sync_run,
)
from integrations.catalog.sync import catalog_sync
from integrations.catalog.to_shop import ShopProductNow, shop_fields_wanted
from integrations.clients import HogiaSmartClient
from integrations.connections import hogia_client, woocommerce_client
from integrations.mapping.articles import Switches
from integrations.models import (
    ArticleBinding,
    Flow,
    FlowSettings,
    HogiaConnection,
    InitialSync,
    InitialSyncItem,
    Shop,
    ShopCatalog,
)
from integrations.orders.poll import orders_poll
from integrations.sandboxes import demo
from tests.integrations.helpers import campaign_day, connected_customer, front

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hogia_without_rate_limit")]

EMPTY_ORG = "22222222-3333-4444-8555-666666666666"
EMPTY_STORE = (
    "/tom-butik",
    "ck_tom_000000000000000000000000000000000001",
    "cs_tom_000000000000000000000000000000000001",
)


class Crash(BaseException):
    """The worker dies (not an error the code handles)."""


def empty_hogia_company(hogia_sandbox, articles: list[dict]) -> None:
    requests.post(
        f"{hogia_sandbox.url}/_sandbox/organizations",
        json={
            "id": EMPTY_ORG,
            "name": "Tom AB",
            "organizationNumber": "556000-0001",
            "clientId": demo.HOGIA_CLIENT_ID,
            "clientSecret": demo.HOGIA_CLIENT_SECRET,
            "articles": articles,
        },
    ).raise_for_status()


def hogia_numbers(hogia_sandbox, org: str) -> Counter:
    client = HogiaSmartClient(
        api_base=hogia_sandbox.url,
        organization_id=org,
        client_id=demo.HOGIA_CLIENT_ID,
        client_secret=demo.HOGIA_CLIENT_SECRET,
    )
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
    empty_hogia_company(
        hogia_sandbox,
        [
            {"number": "SE-BOK-001", "name": "Bokföring", "vatPercent": 6},  # matches the shop
            {"number": "SE-MUGG-35", "name": "Mugg", "vatPercent": 25},  # two numbers that are
            {"number": "se-mugg-35", "name": "Mugg (gammal)", "vatPercent": 25},  # one SKU to a person
            {"number": "BARA-HOGIA", "name": "Bara i Hogia", "vatPercent": 25},
        ],
    )
    HogiaConnection.objects.filter(customer=customer).update(organization_id=EMPTY_ORG, rate_limit_requests=0)
    # A second product with the SKU of another (WooCommerce refuses this; an import may not).
    requests.post(
        f"{woo_sandbox.url}/_sandbox/products?new_id=1",
        json=[{"name": "Kaffe (dubblett)", "sku": "SE-KAFFE-500", "type": "simple", "regular_price": "1.00"}],
    ).raise_for_status()

    job = initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_HOGIA, requested_by="support")
    job = initial_sync_preview(job_id=job.pk)

    assert job.state == InitialSync.State.READY
    preview = job.preview
    assert [m[0] for m in preview["match"]] == ["SE-BOK-001"]
    assert preview["only_in_shop"] == [
        "SE-BRYGG-01",
        "SE-PRESENT-500",
        "SE-TE-100",
        "SE-TS-L",
        "SE-TS-M",
        "SE-TS-S",
    ]
    assert preview["only_in_hogia"] == ["BARA-HOGIA"]
    assert list(preview["duplicated_in_shop"]) == ["SE-KAFFE-500"]
    assert preview["duplicated_in_hogia"] == {"SE-MUGG-35": ["SE-MUGG-35", "se-mugg-35"]}
    assert [m["id"] for m in preview["missing_sku"]] == [27]  # Tygkasse
    assert job.total == 6
    # Flow 1 writes nothing to the shop: the match is bound, its product left as it is.
    assert (
        preview["shop_writes"] == {"writes": False, "why_not": "flow_1"} and preview["shop_differences"] == []
    )
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
        False,
        False,
    ]
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
    requests.post(
        f"{woo_sandbox.url}/_sandbox/stores",
        json={"prefix": prefix, "consumer_key": key, "consumer_secret": secret},
    ).raise_for_status()
    requests.post(
        f"{woo_sandbox.url}{prefix}/_sandbox/products",
        json=[
            {"name": "Kokbok", "sku": "SE-BOK-001", "type": "simple", "regular_price": "300.00"},
            {"name": "Påse", "sku": "", "type": "simple"},
            {"name": "Dubbel A", "sku": "DUBBEL", "type": "simple"},
            {"name": "Dubbel B", "sku": "DUBBEL", "type": "simple"},
        ],
    ).raise_for_status()
    customer, (shop,) = connected_customer(
        woo_sandbox, hogia_sandbox, flow=Flow.ERP, stores=[(prefix, "Tom butik", key, secret, "1")]
    )
    # Often done long before go-live, with the flows still off.
    FlowSettings.objects.filter(customer=customer).update(sync_articles=False)
    HogiaConnection.objects.filter(customer=customer).update(rate_limit_requests=0)

    job = initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_SHOP)
    job = initial_sync_preview(job_id=job.pk)
    preview = job.preview
    assert [m[0] for m in preview["match"]] == ["SE-BOK-001"]
    assert preview["only_in_hogia"] == [
        "SE-BRYGG-01",
        "SE-KAFFE-500",
        "SE-MUGG-35",
        "SE-PRESENT-500",
        "SE-TE-100",
        "SE-TS-L",
        "SE-TS-M",
        "SE-TS-S",
        "expavg",
        "fraktavg",
        "rabatt",
    ]
    assert preview["not_for_webshop"] == ["SE-BRYGG-01", "expavg", "fraktavg", "rabatt"]
    assert list(preview["duplicated_in_shop"]) == ["DUBBEL"] and len(preview["missing_sku"]) == 1
    assert job.total == 7
    assert preview["shop_writes"] == {"writes": False, "why_not": "switches_off"}

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
    for number in (
        "SE-KAFFE-500",
        "SE-MUGG-35",
        "SE-PRESENT-500",
        "SE-TE-100",
        "SE-TS-L",
        "SE-TS-M",
        "SE-TS-S",
        "SE-BOK-001",
    ):
        assert skus[number] == 1, (number, skus)
    assert skus["SE-BRYGG-01"] == 0 and skus["fraktavg"] == 0
    mugg = woo.products_by_sku(["SE-MUGG-35"])[0]
    assert (mugg["regular_price"], mugg["sale_price"], mugg["stock_quantity"]) == ("124.00", "99.00", 48)
    assert woo.products_by_sku(["SE-BOK-001"])[0]["regular_price"] == "300.00"  # a match is not changed
    assert job.items.filter(message__contains="found after a restart").count() == 3

    # Later the flow is switched on: its first sync writes only what differs.
    FlowSettings.objects.filter(customer=customer).update(
        sync_articles=True, sync_prices=True, sync_stock=True, sync_campaign_prices=True
    )
    report = catalog_sync(customer=customer)
    assert report.writes_woo == 1  # only SE-BOK-001, whose shop price was not Hogia's


# -- the matched products: what the periodic sync would change -------------------------------------


def changes_by_sku(preview: dict) -> dict[str, dict[str, tuple]]:
    return {
        entry["sku"]: {
            c["field"]: "left alone" if c.get("left_alone") else (c["shop"], c["portal"])
            for c in entry["changes"]
        }
        for entry in preview["shop_differences"]
    }


def test_the_preview_shows_what_flow_3_would_overwrite_and_the_run_accepts_it(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    """Issue 9, case 10: a shop connected under flow 3 has its own prices; the preview must show them
    beside what the portal would write, before the first periodic sync writes anything."""
    campaign_day(monkeypatch)  # the demo mug's campaign is running
    customer, (shop, second) = connected_customer(
        woo_sandbox, hogia_sandbox, flow=Flow.COMBO, overwrite_accepted=False
    )
    FlowSettings.objects.filter(customer=customer).update(
        sync_prices=True, sync_campaign_prices=True, sync_stock=True
    )
    HogiaConnection.objects.filter(customer=customer).update(rate_limit_requests=0)
    # Two coffees sold in the shop that Hogia Smart has not invoiced: the stock rule takes them off.
    front(shop).call(
        "POST",
        "orders",
        {
            "status": "processing",
            "line_items": [{"product_id": 23, "quantity": 2}],
            "billing": {"first_name": "Eva", "last_name": "Ek", "email": "eva@example.se"},
        },
    )
    orders_poll(shop=shop)

    job = initial_sync_preview(
        job_id=initial_sync_create(
            shop=shop, direction=InitialSync.Direction.TO_HOGIA, requested_by="support"
        ).pk
    )

    changes = changes_by_sku(job.preview)
    # The shop enters prices including VAT: Hogia's 639.20 + 25 % is 799.00; its campaign-less
    # article removes the shop's sale price and dates.
    assert changes["SE-BRYGG-01"] == {
        "regular_price": ("1299.00", "799.00"),
        "sale_price": ("999.00", ""),
        "date_on_sale_from": ("2026-11-20T00:00:00", None),
        "date_on_sale_to": ("2026-12-31T23:59:59", None),
        "stock_quantity": (19, 6),
    }
    assert changes["SE-KAFFE-500"] == {"regular_price": ("89.00", "88.48"), "stock_quantity": (201, 118)}
    assert changes["SE-MUGG-35"]["sale_price"] == ("", "99.00")
    assert changes["SE-MUGG-35"]["date_on_sale_to"] == (None, "2026-11-30T23:59:59")
    assert changes["SE-TS-S"] == {"stock_quantity": (7, 10)}  # 159.20 + 25 % is the shop's 199.00
    assert changes["SE-TE-100"]["stock_quantity"] == "left alone"  # the shop does not manage its stock
    assert changes["SE-PRESENT-500"] == {"stock_quantity": "left alone"}
    counts = job.preview["counts"]
    assert (counts["match"], counts["would_change"], counts["unchanged"], counts["stock_left_alone"]) == (
        9,
        8,
        1,
        2,
    )
    assert by_sku_price(shop, "SE-BRYGG-01") == ("1299.00", "999.00")  # the preview wrote nothing

    # A shop that enters prices excluding VAT is shown net prices.
    ShopCatalog.objects.create(shop=second, prices_include_tax=False)
    net = initial_sync_preview(
        job_id=initial_sync_create(shop=second, direction=InitialSync.Direction.TO_HOGIA).pk
    )
    assert changes_by_sku(net.preview)["SE-BRYGG-01"]["regular_price"] == ("1299.00", "639.20")
    assert changes_by_sku(net.preview)["SE-KAFFE-500"]["regular_price"] == ("89.00", "79.00")

    # The periodic sync leaves the new shop alone until the differences are accepted...
    assert catalog_sync(customer=customer).writes_woo == 0
    assert by_sku_price(shop, "SE-BRYGG-01") == ("1299.00", "999.00")
    # ...which running the initial sync whose preview support saw does.
    job = initial_sync_run(job_id=job.pk)
    assert job.state == InitialSync.State.DONE
    catalog = ShopCatalog.objects.get(shop=shop)
    assert catalog.overwrite_accepted_at is not None
    assert catalog.overwrite_accepted_by == f"support (initial sync #{job.pk})"
    catalog_sync(customer=customer)
    # The shop now has what the preview said it would get, and nothing else changed.
    woo = woocommerce_client(shop=shop)
    for sku, fields in changes.items():
        (product,) = woo.products_by_sku([sku])
        for name, change in fields.items():
            if change == "left alone":
                assert product["manage_stock"] is False and product["stock_quantity"] is None, sku
            else:
                assert product[name] == change[1], (sku, name, product[name], change)
    assert by_sku_price(second, "SE-BRYGG-01") == ("1299.00", "999.00")  # not accepted: still held
    assert ShopCatalog.objects.get(shop=shop).behind_from is None


def by_sku_price(shop: Shop, sku: str) -> tuple[str, str]:
    (product,) = woocommerce_client(shop=shop).products_by_sku([sku])
    return product["regular_price"], product["sale_price"]


def test_flow_2_previews_names_and_only_the_articles_it_sends_to_the_shop(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(
        woo_sandbox, hogia_sandbox, flow=Flow.ERP, overwrite_accepted=False
    )
    FlowSettings.objects.filter(customer=customer).update(sync_prices=True)
    HogiaConnection.objects.filter(customer=customer).update(rate_limit_requests=0)

    job = initial_sync_preview(
        job_id=initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_SHOP).pk
    )

    changes = changes_by_sku(job.preview)
    assert changes["SE-KAFFE-500"] == {
        "name": ("Kaffe Mellanrost 500 g", "Kaffe mellanrost 500 g"),
        "regular_price": ("89.00", "88.48"),
    }
    assert "name" not in changes.get("SE-TS-L", {})  # a variation keeps its name (no variant structure)
    assert "SE-BRYGG-01" not in changes  # not marked "send to webshop": flow 2 does not write it
    assert job.preview["counts"]["match_not_written"] == 1


def test_prices_compare_as_amounts_and_unmanaged_stock_is_left_alone():
    product = {
        "id": 5,
        "name": "Kaffebryggare",
        "regular_price": "1299",
        "sale_price": "",
        "date_on_sale_from": None,
        "date_on_sale_to": None,
        "manage_stock": False,
        "stock_quantity": None,
        "backorders": "no",
    }
    article = {
        "number": "SE-BRYGG-01",
        "vatPercent": 25,
        "prices": {"ordinary": "1039.20"},
        "stockBalance": "4",
    }
    switches = Switches(prices=True, stock=True)
    now = ShopProductNow.of(product)
    fields, stock = shop_fields_wanted(
        article, now, switches=switches, prices_include_tax=True, reserved=Decimal(0)
    )
    # 1039.20 + 25 % = 1299.00, which is the shop's "1299"; no count for a product that keeps none.
    assert (fields, stock) == ({"regular_price": "1299.00"}, None)
    assert all(now.same(name, value) for name, value in fields.items())
    # An article Hogia Smart keeps no stock of, for a product whose stock the shop counts.
    managed = ShopProductNow.of(
        {**product, "manage_stock": True, "stock_quantity": 3, "stock_status": "instock"}
    )
    fields, _ = shop_fields_wanted(
        {**article, "isStockArticle": False},
        managed,
        switches=switches,
        prices_include_tax=True,
        reserved=Decimal(0),
    )
    assert {name: value for name, value in fields.items() if not managed.same(name, value)} == {
        "manage_stock": False
    }


def test_a_long_run_goes_on_in_chunks_each_ending_on_time(woo_sandbox, hogia_sandbox, monkeypatch):
    """Issue 9, case 12: 10,000 articles under Hogia's rate limit take longer than a task may run;
    each chunk stops on time, says the job continues, and the next takes it at once."""
    campaign_day(monkeypatch)
    prefix, key, secret = EMPTY_STORE
    requests.post(
        f"{woo_sandbox.url}/_sandbox/stores",
        json={"prefix": prefix, "consumer_key": key, "consumer_secret": secret},
    ).raise_for_status()
    customer, (shop,) = connected_customer(
        woo_sandbox, hogia_sandbox, flow=Flow.ERP, stores=[(prefix, "Tom butik", key, secret, "1")]
    )
    HogiaConnection.objects.filter(customer=customer).update(rate_limit_requests=0)
    job = initial_sync_preview(
        job_id=initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_SHOP).pk
    )
    assert job.total == 8  # the empty shop gets every article marked "send to webshop"
    monkeypatch.setattr(initial, "CHUNK", 3)
    chunks = []
    while True:
        job = initial_sync_run(job_id=job.pk, seconds=0)  # time is up after every chunk of 3
        chunks.append((job.state, job.done))
        if not job.report.get("continues"):
            break
    assert chunks == [
        (InitialSync.State.RUNNING, 3),
        (InitialSync.State.RUNNING, 6),
        (InitialSync.State.DONE, 8),
    ]
    assert job.report["resumed"] == 0  # continuing is not resuming after a crash
    assert sum(shop_skus(shop).values()) == 8
