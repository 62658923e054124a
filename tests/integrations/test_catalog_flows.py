"""Articles, prices and stock in flows 1, 2 and 3, end to end through the sandboxes.

The shops are the two demo stores (the Swedish fixture catalogue, prices incl. VAT) and
the Hogia company is the demo company (prices excl. VAT). What must hold: articles
one way, prices and stock the other, per flow; nothing written when nothing changed;
an older Hogia value never replaces a newer one; stock pushed net of orders the shops
sold that Hogia Smart has not invoiced yet.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from billing.models import Customer
from integrations.catalog.hogia_feed import hogia_articles_record
from integrations.catalog.overwrite import shop_overwrite_allow
from integrations.catalog.stock import stock_reserved
from integrations.catalog.sync import catalog_sync
from integrations.catalog.to_hogia import product_change_note
from integrations.catalog.to_shop import hogia_to_shop, to_shop_plan
from integrations.clients import HogiaSmartClient
from integrations.connections import woocommerce_client
from integrations.models import (
    ArticleBinding,
    Flow,
    FlowSettings,
    HogiaArticle,
    HogiaConnection,
    OrderTransfer,
    ShopCatalog,
    SyncLogEntry,
)
from integrations.orders.attempt import order_transfer
from integrations.orders.poll import orders_poll
from integrations.sandboxes import demo
from tests.integrations.helpers import campaign_day, connected_customer, front

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hogia_without_rate_limit")]

ORG = demo.HOGIA_ORGANIZATION_ID


def hogia(hogia_sandbox) -> HogiaSmartClient:
    return HogiaSmartClient(
        api_base=hogia_sandbox.url,
        organization_id=ORG,
        client_id=demo.HOGIA_CLIENT_ID,
        client_secret=demo.HOGIA_CLIENT_SECRET,
    )


def customer_with(
    woo_sandbox,
    hogia_sandbox,
    *,
    flow: int,
    package_code: str = "400",
    overwrite_accepted: bool = True,
    **switches,
) -> tuple[Customer, list]:
    customer, shops = connected_customer(
        woo_sandbox,
        hogia_sandbox,
        flow=flow,
        package_code=package_code,
        overwrite_accepted=overwrite_accepted,
    )
    FlowSettings.objects.filter(customer=customer).update(**switches)
    HogiaConnection.objects.filter(customer=customer).update(rate_limit_requests=0)
    return customer, shops


def sandbox_articles(hogia_sandbox, *articles: dict) -> list[dict]:
    response = requests.post(f"{hogia_sandbox.url}/_sandbox/{ORG}/articles", json=list(articles))
    response.raise_for_status()
    return response.json()


def by_sku(shop, sku: str) -> dict:
    (product,) = woocommerce_client(shop=shop).products_by_sku([sku])
    return product


def batch_requests(woo_sandbox) -> int:
    stats = requests.get(f"{woo_sandbox.url}/_sandbox/stats").json()["by_route"]
    return sum(count for route, count in stats.items() if "batch" in route)


# -- flow 1: articles from the shop ----------------------------------------------------------------


def test_flow_1_creates_and_updates_articles_for_simple_products_and_variations(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = customer_with(woo_sandbox, hogia_sandbox, flow=Flow.ECOM)
    shop_front = front(shop)
    new = shop_front.call(
        "POST",
        "products",
        {
            "name": "Kaffefilter 100 st",
            "sku": "NY-FILTER",
            "regular_price": "25.00",
            "tax_class": "reduced-rate",
        },
    )
    hoodie = shop_front.call(
        "POST",
        "products",
        {
            "name": "Hoodie",
            "type": "variable",
            "sku": "HOOD",
            "attributes": [{"name": "Färg", "options": ["Röd", "Blå"], "variation": True}],
        },
    )
    for colour, sku in (("Röd", "HOOD-RED"), ("Blå", "HOOD-BLUE")):
        shop_front.call(
            "POST",
            f"products/{hoodie['id']}/variations",
            {"sku": sku, "regular_price": "399.00", "attributes": [{"name": "Färg", "option": colour}]},
        )

    report = catalog_sync(customer=customer)

    client = hogia(hogia_sandbox)
    article = client.article_by_number("NY-FILTER")
    assert (article["name"], article["vatPercent"], article["unit"]) == ("Kaffefilter 100 st", 12, "st")
    red = client.article_by_number("HOOD-RED")
    assert red["name"] == "Hoodie - Röd" and red["vatPercent"] == 25
    assert client.article_by_number("HOOD") is None  # no variant structure: the parent is no article
    # The shop is master: the demo article's name follows the shop's.
    assert client.article_by_number("SE-KAFFE-500")["name"] == "Kaffe Mellanrost 500 g"
    assert client.article_by_number("SE-TS-M")["name"] == "T-shirt Logga - M"
    assert report.writes_hogia > 0
    missing = SyncLogEntry.objects.filter(message__contains="has no SKU")
    assert missing.exists() and "Tygkasse" in missing.first().message

    shop_front.call("PUT", f"products/{new['id']}", {"name": "Kaffefilter 200 st"})
    again = catalog_sync(customer=customer)
    assert client.article_by_number("NY-FILTER")["name"] == "Kaffefilter 200 st"
    assert again.writes_hogia == 1

    assert catalog_sync(customer=customer).writes == 0
    assert catalog_sync(customer=customer, full=True).writes == 0


def test_flow_1_a_variation_named_by_webhook_is_read(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = customer_with(woo_sandbox, hogia_sandbox, flow=Flow.ECOM)
    catalog_sync(customer=customer)
    # Variation 32 (SE-TS-M) is renamed by a new attribute value; its parent is untouched.
    front(shop).call(
        "PUT", "products/30/variations/32", {"attributes": [{"name": "Storlek", "option": "Medium"}]}
    )
    ArticleBinding.objects.filter(shop=shop)  # the overlap re-reads the parent anyway in a test;
    product_change_note(shop=shop, woo_id=32)  # the webhook is what finds it in real life
    catalog_sync(customer=customer)
    assert hogia(hogia_sandbox).article_by_number("SE-TS-M")["name"] == "T-shirt Logga - Medium"


# -- flow 2: products, prices and stock from Hogia Smart ------------------------------------------


def test_flow_2_creates_and_updates_products_prices_campaigns_and_stock(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    campaign_day(monkeypatch)  # HS-NY-1's campaign is still to come, the demo mug's is running
    customer, (shop, second) = customer_with(
        woo_sandbox,
        hogia_sandbox,
        flow=Flow.ERP,
        sync_prices=True,
        sync_campaign_prices=True,
        sync_stock=True,
    )
    sandbox_articles(
        hogia_sandbox,
        {
            "number": "HS-NY-1",
            "name": "Ny artikel",
            "vatPercent": 25,
            "sendToWebshop": True,
            "prices": {
                "ordinary": "100.00",
                "campaign": "80.00",
                "campaignFrom": "2026-12-01",
                "campaignTo": "2026-12-24",
            },
            "stockBalance": "7",
        },
    )

    report = catalog_sync(customer=customer)

    for each in (shop, second):
        created = by_sku(each, "HS-NY-1")
        assert created["type"] == "simple" and created["name"] == "Ny artikel"
        assert (created["regular_price"], created["sale_price"]) == ("125.00", "100.00")  # incl. 25 % VAT
        assert created["date_on_sale_from"].startswith("2026-12-01")
        assert created["date_on_sale_to"].startswith("2026-12-24")
        assert (created["manage_stock"], created["stock_quantity"]) == (True, 7)
    # A SKU that is a variation in the shop updates the variation.
    medium = by_sku(shop, "SE-TS-M")
    assert medium["type"] == "variation" and medium["regular_price"] == "199.00"
    assert medium["stock_quantity"] == 25 and medium["sale_price"] == ""
    mugg = by_sku(shop, "SE-MUGG-35")
    assert mugg["name"] == "Mugg 35 cl" and (mugg["regular_price"], mugg["sale_price"]) == ("124.00", "99.00")
    assert by_sku(shop, "SE-BOK-001")["regular_price"] == "295.74"  # 279.00 + 6 %
    # Not marked "send to webshop": left alone.
    assert by_sku(shop, "SE-BRYGG-01")["name"] == "Kaffebryggare Deluxe"
    assert report.writes_woo > 0

    client = hogia(hogia_sandbox)
    article = client.article_by_number("HS-NY-1")
    client.article_update(
        article["id"],
        {
            "prices": {
                "ordinary": Decimal("120.00"),
                "campaign": None,
                "campaignFrom": None,
                "campaignTo": None,
            }
        },
    )
    before = batch_requests(woo_sandbox)
    again = catalog_sync(customer=customer)
    updated = by_sku(shop, "HS-NY-1")
    assert (updated["regular_price"], updated["sale_price"], updated["date_on_sale_from"]) == (
        "150.00",
        "",
        None,
    )
    assert again.writes_woo == 2  # one product in each shop
    assert batch_requests(woo_sandbox) - before == 2

    # Unchanged: zero writes, also in a full re-read of both systems.
    before = batch_requests(woo_sandbox)
    assert catalog_sync(customer=customer).writes == 0
    assert catalog_sync(customer=customer, full=True).writes == 0
    assert batch_requests(woo_sandbox) == before


SALE_FIELDS = (
    "sale_price",
    "date_on_sale_from",
    "date_on_sale_from_gmt",
    "date_on_sale_to",
    "date_on_sale_to_gmt",
)


def test_flow_2_a_campaign_removed_in_hogia_leaves_no_sale_price_or_dates_in_the_shop(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    # WooCommerce leaves a field sent as null as it was: only "" clears a sale date.
    campaign_day(monkeypatch, date(2026, 11, 25))
    customer, shops = customer_with(
        woo_sandbox, hogia_sandbox, flow=Flow.ERP, sync_prices=True, sync_campaign_prices=True
    )
    client = hogia(hogia_sandbox)
    campaign = {"campaignFrom": "2026-11-20", "campaignTo": "2026-12-24"}
    kaffe, medium = client.article_by_number("SE-KAFFE-500"), client.article_by_number("SE-TS-M")
    client.article_update(kaffe["id"], {"prices": {"campaign": Decimal("62.50"), **campaign}})
    client.article_update(medium["id"], {"prices": {"campaign": Decimal("119.20"), **campaign}})

    catalog_sync(customer=customer)
    for shop in shops:
        # A simple product (products/batch) and a variation (variations/batch).
        for sku, sale in (("SE-KAFFE-500", "70.00"), ("SE-TS-M", "149.00")):
            product = by_sku(shop, sku)
            assert (product["sale_price"], product["date_on_sale_from"], product["date_on_sale_to"]) == (
                sale,
                "2026-11-20T00:00:00",
                "2026-12-24T23:59:59",
            )

    for article in (kaffe, medium):
        client.article_update(
            article["id"], {"prices": {"campaign": None, "campaignFrom": None, "campaignTo": None}}
        )
    report = catalog_sync(customer=customer)
    assert report.writes_woo == 4
    for shop in shops:
        for sku, regular in (("SE-KAFFE-500", "88.48"), ("SE-TS-M", "199.00")):
            product = by_sku(shop, sku)
            assert [product[key] for key in SALE_FIELDS] == ["", None, None, None, None], (shop, sku)
            assert (product["price"], product["regular_price"], product["on_sale"]) == (
                regular,
                regular,
                False,
            )
    assert catalog_sync(customer=customer).writes == 0


def test_flow_2_a_campaign_that_has_ended_is_cleared_from_the_shop_by_the_full_sync(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    campaign_day(monkeypatch, date(2026, 11, 30))  # the demo mug's campaign: its last day
    customer, (shop, _second) = customer_with(
        woo_sandbox, hogia_sandbox, flow=Flow.ERP, sync_prices=True, sync_campaign_prices=True
    )
    catalog_sync(customer=customer)
    mugg = by_sku(shop, "SE-MUGG-35")
    assert (mugg["sale_price"], mugg["date_on_sale_to"]) == ("99.00", "2026-11-30T23:59:59")

    campaign_day(monkeypatch, date(2026, 12, 1))
    assert catalog_sync(customer=customer).writes == 0  # Hogia's article has not changed
    report = catalog_sync(customer=customer, full=True)
    mugg = by_sku(shop, "SE-MUGG-35")
    assert [mugg[key] for key in SALE_FIELDS] == ["", None, None, None, None]
    assert report.writes_woo == 2  # the mug, in each shop


def test_flow_2_create_and_update_are_separate_choices(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = customer_with(
        woo_sandbox, hogia_sandbox, flow=Flow.ERP, create_products=False, sync_prices=True
    )
    sandbox_articles(
        hogia_sandbox,
        {
            "number": "HS-NY-2",
            "name": "Ej skapad",
            "vatPercent": 25,
            "sendToWebshop": True,
            "prices": {"ordinary": "10.00"},
        },
    )
    catalog_sync(customer=customer)
    assert woocommerce_client(shop=shop).products_by_sku(["HS-NY-2"]) == []
    assert by_sku(shop, "SE-KAFFE-500")["regular_price"] == "88.48"  # 79.00 + 12 %
    assert by_sku(shop, "SE-KAFFE-500")["name"] == "Kaffe mellanrost 500 g"  # update_products: names too


def test_flow_1_a_product_without_stock_management_becomes_a_non_stock_article(woo_sandbox, hogia_sandbox):
    # Hogia Smart makes an article a stock article unless the create says otherwise.
    customer, (shop, _second) = customer_with(woo_sandbox, hogia_sandbox, flow=Flow.ECOM)
    shop_front = front(shop)
    shop_front.call(
        "POST",
        "products",
        {
            "name": "Presentkort 250 kr",
            "sku": "NY-PRESENT-250",
            "regular_price": "250.00",
            "tax_class": "zero-rate",
            "virtual": True,
            "manage_stock": False,
        },
    )
    shop_front.call(
        "POST",
        "products",
        {
            "name": "Kaffefilter 100 st",
            "sku": "NY-FILTER",
            "regular_price": "25.00",
            "tax_class": "reduced-rate",
            "manage_stock": True,
            "stock_quantity": 40,
        },
    )

    catalog_sync(customer=customer)

    client = hogia(hogia_sandbox)
    gift_card = client.article_by_number("NY-PRESENT-250")
    assert gift_card["isStockArticle"] is False
    assert gift_card["prices"]["ordinary"] == Decimal("250.0000")
    stocked = client.article_by_number("NY-FILTER")
    assert (stocked["isStockArticle"], stocked["stockBalance"]) == (True, 40)


# -- flow 3: articles from the shop, prices and stock from Hogia Smart ----------------------------


def test_flow_3_articles_one_way_prices_and_stock_the_other(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = customer_with(
        woo_sandbox, hogia_sandbox, flow=Flow.COMBO, sync_prices=True, sync_stock=True
    )
    shop_front = front(shop)
    shop_front.call(
        "POST",
        "products",
        {
            "name": "Te Rooibos",
            "sku": "NY-TE-2",
            "regular_price": "56.00",
            "tax_class": "reduced-rate",
            "manage_stock": True,
            "stock_quantity": 12,
        },
    )
    catalog_sync(customer=customer)
    client = hogia(hogia_sandbox)
    article = client.article_by_number("NY-TE-2")
    # Created from the shop, with the shop's price (net) and stock to start from.
    assert article["name"] == "Te Rooibos" and article["prices"]["ordinary"] == Decimal("50.0000")
    assert article["stockBalance"] == 12
    assert by_sku(shop, "NY-TE-2")["regular_price"] == "56.00"  # written back unchanged
    # Names stay the shop's; prices and stock are Hogia's.
    kaffe = by_sku(shop, "SE-KAFFE-500")
    assert kaffe["name"] == "Kaffe Mellanrost 500 g"
    assert (kaffe["regular_price"], kaffe["stock_quantity"]) == ("88.48", 120)

    client.article_update(
        article["id"], {"prices": {"ordinary": Decimal("60.00")}, "stockBalance": Decimal("3")}
    )
    catalog_sync(customer=customer)
    te = by_sku(shop, "NY-TE-2")
    assert (te["regular_price"], te["stock_quantity"], te["stock_status"]) == ("67.20", 3, "instock")
    assert catalog_sync(customer=customer).writes == 0


def test_a_till_sale_reaches_both_shops_of_a_multishop_customer(woo_sandbox, hogia_sandbox):
    customer, shops = customer_with(woo_sandbox, hogia_sandbox, flow=Flow.COMBO, sync_stock=True)
    catalog_sync(customer=customer)
    assert [by_sku(s, "SE-TS-L")["stock_quantity"] for s in shops] == [8, 8]
    requests.post(
        f"{hogia_sandbox.url}/_sandbox/{ORG}/till-sale",
        json={"lines": [{"articleNumber": "SE-TS-L", "quantity": 8}]},
    ).raise_for_status()
    report = catalog_sync(customer=customer)
    for each in shops:
        variation = by_sku(each, "SE-TS-L")
        assert (variation["stock_quantity"], variation["stock_status"]) == (0, "outofstock")
    assert report.writes_woo == 2


# -- no stale overwrite, the stock window ---------------------------------------------------------


def test_an_older_hogia_value_never_overwrites_a_newer_one(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = customer_with(woo_sandbox, hogia_sandbox, flow=Flow.ERP, sync_stock=True)
    client = hogia(hogia_sandbox)
    v5 = client.article_by_number("SE-BOK-001")
    v6 = client.article_update(v5["id"], {"stockBalance": Decimal("11")})
    assert v6["rowVersion"] > v5["rowVersion"]
    # Feed pages processed in reverse order: v6 first, then the late v5.
    assert hogia_articles_record(customer=customer, articles=[v6]) == ["SE-BOK-001"]
    assert hogia_articles_record(customer=customer, articles=[v5]) == []
    settings = FlowSettings.objects.get(customer=customer)
    run = hogia_to_shop(
        shop=shop, numbers=["SE-BOK-001"], woo=woocommerce_client(shop=shop), plan=to_shop_plan(settings)
    )
    assert run.updated_count == 1 and by_sku(shop, "SE-BOK-001")["stock_quantity"] == 11
    assert HogiaArticle.objects.get(customer=customer, number="SE-BOK-001").row_version == v6["rowVersion"]
    # The sync reads the feed (which ends at v6) and the late v5 is never written.
    catalog_sync(customer=customer)
    assert by_sku(shop, "SE-BOK-001")["stock_quantity"] == 11
    assert catalog_sync(customer=customer).writes_woo == 0


def test_a_shop_that_was_down_during_a_push_catches_up_at_the_next_sync(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    from integrations.clients import WooCommerceClient
    from integrations.errors import RemoteUnavailable

    customer, (shop, second) = customer_with(woo_sandbox, hogia_sandbox, flow=Flow.ERP, sync_stock=True)
    catalog_sync(customer=customer)
    client = hogia(hogia_sandbox)
    article = client.article_by_number("SE-BOK-001")
    client.article_update(article["id"], {"stockBalance": Decimal("7")})
    real_batch = WooCommerceClient.products_batch

    def second_shop_down(self, **kwargs):
        if self.base_url == second.home_url:
            raise RemoteUnavailable("connection refused", system="WooCommerce")
        return real_batch(self, **kwargs)

    monkeypatch.setattr(WooCommerceClient, "products_batch", second_shop_down)
    catalog_sync(customer=customer)
    assert by_sku(shop, "SE-BOK-001")["stock_quantity"] == 7
    assert by_sku(second, "SE-BOK-001")["stock_quantity"] != 7
    monkeypatch.setattr(WooCommerceClient, "products_batch", real_batch)
    report = catalog_sync(customer=customer)  # nothing new in Hogia's feed, yet the shop catches up
    assert by_sku(second, "SE-BOK-001")["stock_quantity"] == 7 and report.writes_woo == 1


def test_stock_pushed_is_hogia_minus_what_the_shops_sold_and_hogia_has_not_invoiced(
    woo_sandbox, hogia_sandbox
):
    customer, (shop, second) = customer_with(woo_sandbox, hogia_sandbox, flow=Flow.ERP, sync_stock=True)
    catalog_sync(customer=customer)
    assert by_sku(shop, "SE-KAFFE-500")["stock_quantity"] == 120
    order = front(shop).call(
        "POST",
        "orders",
        {
            "status": "processing",
            "billing": {"first_name": "Eva", "last_name": "Ek", "email": "eva@example.se"},
            "line_items": [{"product_id": 23, "quantity": 2}],
        },
    )
    assert by_sku(shop, "SE-KAFFE-500")["stock_quantity"] == 118  # WooCommerce's own reduction
    orders_poll(shop=shop)
    transfer = OrderTransfer.objects.get(woo_order_id=order["id"])
    assert transfer.state == OrderTransfer.State.QUEUED
    assert stock_reserved(customer=customer) == {"SE-KAFFE-500": Decimal(2)}
    # The till sells one while the order waits for its invoice: Hogia says 119.
    requests.post(
        f"{hogia_sandbox.url}/_sandbox/{ORG}/till-sale",
        json={"lines": [{"articleNumber": "SE-KAFFE-500", "quantity": 1}]},
    ).raise_for_status()
    catalog_sync(customer=customer)
    # 119 - 2 in both shops: the web order is sold everywhere, not only where it was placed.
    assert [by_sku(s, "SE-KAFFE-500")["stock_quantity"] for s in (shop, second)] == [117, 117]
    # Invoiced: Hogia now says 117 itself and nothing is held back; nothing to write.
    order_transfer(transfer_id=transfer.pk)
    transfer.refresh_from_db()
    assert transfer.state == OrderTransfer.State.INVOICED
    assert hogia(hogia_sandbox).article_by_number("SE-KAFFE-500")["stockBalance"] == 117
    assert stock_reserved(customer=customer) == {}
    report = catalog_sync(customer=customer)
    assert report.writes_woo == 0
    assert [by_sku(s, "SE-KAFFE-500")["stock_quantity"] for s in (shop, second)] == [117, 117]


# -- a newly connected shop: nothing overwritten before support accepts ------------------------------


def test_a_new_shop_gets_no_prices_or_stock_until_overwriting_is_allowed(woo_sandbox, hogia_sandbox):
    customer, (shop, second) = customer_with(
        woo_sandbox,
        hogia_sandbox,
        flow=Flow.COMBO,
        sync_prices=True,
        sync_campaign_prices=True,
        sync_stock=True,
        overwrite_accepted=False,
    )
    held_warnings = SyncLogEntry.objects.filter(
        object_type="overwrite_held", level=SyncLogEntry.Level.WARNING
    )

    report = catalog_sync(customer=customer)

    assert report.writes_woo == 0 and report.writes_hogia > 0  # flow 3's other direction goes on
    assert (by_sku(shop, "SE-BRYGG-01")["regular_price"], by_sku(shop, "SE-BRYGG-01")["sale_price"]) == (
        "1299.00",
        "999.00",
    )
    assert by_sku(shop, "SE-KAFFE-500")["stock_quantity"] == 203
    assert [r for r in report.skipped if "until the initial sync's differences are accepted" in r] == [
        "Butik 1: Prices and stock are not written to this shop until the initial sync's differences are "
        "accepted.",
        "Butik 2: Prices and stock are not written to this shop until the initial sync's "
        "differences are accepted.",
    ]
    assert sorted(held_warnings.values_list("shop__name", flat=True)) == ["Butik 1", "Butik 2"]
    # Every five minutes the sync skips again, and says so in its report, but warns once a day.
    assert catalog_sync(customer=customer).writes_woo == 0
    assert held_warnings.count() == 2
    held_warnings.update(created_at=timezone.now() - timedelta(hours=25))
    catalog_sync(customer=customer)
    assert held_warnings.count() == 4

    assert shop_overwrite_allow(shop=shop, by="support")
    assert not shop_overwrite_allow(shop=shop, by="someone else")  # once
    # The feed's mark moved past every article while the shop was held: the whole catalogue goes now.
    report = catalog_sync(customer=customer)
    assert report.writes_woo > 0
    brygg = by_sku(shop, "SE-BRYGG-01")
    assert (brygg["regular_price"], brygg["sale_price"], brygg["stock_quantity"]) == ("799.00", "", 6)
    assert by_sku(shop, "SE-KAFFE-500")["stock_quantity"] == 120
    assert by_sku(second, "SE-BRYGG-01")["regular_price"] == "1299.00"  # still held
    assert ShopCatalog.objects.get(shop=shop).behind_from is None
    assert catalog_sync(customer=customer).writes_woo == 0


def test_flow_2_creates_new_products_in_a_held_shop_but_leaves_its_products_alone(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = customer_with(
        woo_sandbox, hogia_sandbox, flow=Flow.ERP, sync_prices=True, sync_stock=True, overwrite_accepted=False
    )
    sandbox_articles(
        hogia_sandbox,
        {
            "number": "HS-NY-3",
            "name": "Ny i butiken",
            "vatPercent": 25,
            "sendToWebshop": True,
            "prices": {"ordinary": "40.00"},
            "stockBalance": "5",
        },
    )

    catalog_sync(customer=customer)

    created = by_sku(shop, "HS-NY-3")  # overwrites nothing: the shop did not have it
    assert (created["regular_price"], created["stock_quantity"]) == ("50.00", 5)
    kaffe = by_sku(shop, "SE-KAFFE-500")
    assert (kaffe["name"], kaffe["regular_price"], kaffe["stock_quantity"]) == (
        "Kaffe Mellanrost 500 g",
        "89.00",
        203,
    )


# -- package gates ---------------------------------------------------------------------------------


def test_a_switch_the_package_no_longer_includes_is_skipped_with_a_logged_reason(woo_sandbox, hogia_sandbox):
    # Ticked under a larger package (saved without the form's check), then the package was lowered.
    customer, (shop, _second) = customer_with(
        woo_sandbox,
        hogia_sandbox,
        flow=Flow.ERP,
        package_code="100",
        sync_prices=True,
        sync_stock=True,
        sync_campaign_prices=True,
    )
    report = catalog_sync(customer=customer)
    assert any("package" in reason.lower() for reason in report.skipped), report.skipped
    assert SyncLogEntry.objects.filter(message__startswith="Skipped:").count() == 2  # stock, campaign
    mugg = by_sku(shop, "SE-MUGG-35")
    assert mugg["regular_price"] == "124.00" and mugg["sale_price"] == ""  # prices yes, campaign no
    assert mugg["stock_quantity"] == 617  # the shop's own figure: stock needs package 200


def test_flow_3_after_a_downgrade_below_400_is_skipped_with_a_logged_reason(woo_sandbox, hogia_sandbox):
    customer, _shops = customer_with(
        woo_sandbox, hogia_sandbox, flow=Flow.COMBO, package_code="200", sync_stock=True
    )
    report = catalog_sync(customer=customer)
    assert report.runs == [] and report.skipped
    assert SyncLogEntry.objects.filter(message__contains="Catalogue sync skipped").exists()


# -- product webhooks --------------------------------------------------------------------------------


def _signed(shop, topic: str, payload: dict):
    import base64
    import hashlib
    import hmac
    import json

    from integrations.intake import webhook_receive

    body = json.dumps(payload).encode()
    signature = base64.b64encode(
        hmac.new(shop.webhook_secret.encode(), body, hashlib.sha256).digest()
    ).decode()
    return webhook_receive(
        token=str(shop.webhook_token),
        body=body,
        headers={
            "x-wc-webhook-topic": topic,
            "x-wc-webhook-signature": signature,
            "x-wc-webhook-source": shop.home_url,
        },
    )


def test_product_webhooks_mark_products_for_the_next_sync(woo_sandbox, hogia_sandbox):
    from integrations.models import ProductChange

    customer, (shop, _second) = customer_with(woo_sandbox, hogia_sandbox, flow=Flow.ECOM)
    catalog_sync(customer=customer)
    assert _signed(shop, "product.updated", {"id": 32, "type": "variation", "parent_id": 30}).status == 200
    assert _signed(shop, "product.deleted", {"id": 26}).status == 200
    assert sorted(ProductChange.objects.values_list("woo_id", "deleted")) == [(26, True), (32, False)]
    catalog_sync(customer=customer)
    assert not ProductChange.objects.exists()
    assert not ArticleBinding.objects.filter(shop=shop, woo_id=26).exists()  # its SKU is free again
