"""Articles between WooCommerce and Hogia Smart: campaigns to the shop, stock articles to Hogia.

Products are the real WooCommerce 11 store's (``../shared/fixtures/woocommerce-11/products``);
Hogia articles are as the Hogia Smart sandbox returns them (prices excluding VAT).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest

from integrations.mapping.articles import (
    ShopTaxes,
    Switches,
    article_from_product,
    new_product_from_article,
    shop_fields_from_article,
)
from integrations.sandboxes.fixtures import WOOCOMMERCE_11

PRODUCTS = WOOCOMMERCE_11 / "products"
pytestmark = pytest.mark.skipif(not PRODUCTS.is_dir(), reason="shared WooCommerce fixtures not available")

TODAY = date(2026, 12, 2)
CAMPAIGN = Switches(campaign=True)
NO_CAMPAIGN = {"sale_price": "", "date_on_sale_from": "", "date_on_sale_to": ""}


def _product(name: str) -> dict:
    return json.loads((PRODUCTS / f"{name}.json").read_text("utf-8"))


def _variation(sku: str) -> dict:
    return next(
        v
        for v in json.loads((PRODUCTS / "variable_tshirt_variations.json").read_text("utf-8"))
        if v["sku"] == sku
    )


def mug(**prices) -> dict:
    """SE-MUGG-35: 99.20 excl. VAT (124.00 incl. 25 %), with the campaign fields given."""
    return {
        "number": "SE-MUGG-35",
        "name": "Mugg 35 cl",
        "vatPercent": 25,
        "prices": {
            "ordinary": Decimal("99.20"),
            "campaign": None,
            "campaignFrom": None,
            "campaignTo": None,
            **prices,
        },
    }


def campaign(**prices) -> dict:
    return shop_fields_from_article(mug(**prices), switches=CAMPAIGN, prices_include_tax=True, today=TODAY)


# -- campaigns, Hogia Smart -> WooCommerce -------------------------------------------------------------


def test_no_campaign_clears_the_sale_price_and_dates_with_empty_strings_not_null():
    # WooCommerce applies a date only if isset(): null would leave the old sale window.
    assert campaign() == NO_CAMPAIGN


def test_a_campaign_price_without_dates_clears_both_dates():
    assert campaign(campaign=Decimal("79.20")) == {
        "sale_price": "99.00",
        "date_on_sale_from": "",
        "date_on_sale_to": "",
    }


def test_an_open_ended_campaign_clears_the_date_it_has_not():
    started = campaign(campaign=Decimal("79.20"), campaignFrom="2026-11-20")
    assert started == {
        "sale_price": "99.00",
        "date_on_sale_from": "2026-11-20T00:00:00",
        "date_on_sale_to": "",
    }
    ending = campaign(campaign=Decimal("79.20"), campaignTo="2026-12-24")
    assert ending == {
        "sale_price": "99.00",
        "date_on_sale_from": "",
        "date_on_sale_to": "2026-12-24T23:59:59",
    }


def test_a_running_campaign_is_written_with_its_dates():
    running = campaign(campaign=Decimal("79.20"), campaignFrom="2026-11-20", campaignTo="2026-12-24")
    assert running == {
        "sale_price": "99.00",
        "date_on_sale_from": "2026-11-20T00:00:00",
        "date_on_sale_to": "2026-12-24T23:59:59",
    }


def test_a_campaign_on_its_last_day_is_still_written():
    last_day = campaign(campaign=Decimal("79.20"), campaignFrom="2026-11-20", campaignTo="2026-12-02")
    assert last_day["sale_price"] == "99.00" and last_day["date_on_sale_to"] == "2026-12-02T23:59:59"


def test_a_campaign_that_starts_later_is_written_with_its_dates_for_woocommerce_to_schedule():
    future = campaign(campaign=Decimal("79.20"), campaignFrom="2026-12-20T00:00:00", campaignTo="2026-12-31")
    assert future == {
        "sale_price": "99.00",
        "date_on_sale_from": "2026-12-20T00:00:00",
        "date_on_sale_to": "2026-12-31T23:59:59",
    }


def test_an_ended_campaign_is_no_campaign():
    ended = campaign(campaign=Decimal("79.20"), campaignFrom="2026-11-20", campaignTo="2026-12-01T00:00:00")
    assert ended == NO_CAMPAIGN


def test_an_ended_campaign_is_not_put_on_a_new_product():
    product = new_product_from_article(
        mug(campaign=Decimal("79.20"), campaignFrom="2026-11-20", campaignTo="2026-11-30"),
        taxes=ShopTaxes(),
        switches=CAMPAIGN,
        prices_include_tax=True,
        today=TODAY,
    )
    assert (product["regular_price"], product["sale_price"], product["date_on_sale_to"]) == ("124.00", "", "")


def test_today_is_the_swedish_date_by_default(monkeypatch):
    # 23:30 UTC on 30 November is already 1 December in Stockholm: a campaign that ended on
    # the 30th has ended.
    monkeypatch.setattr(
        "django.utils.timezone.now", lambda: datetime(2026, 11, 30, 23, 30, tzinfo=dt_timezone.utc)
    )
    ended = shop_fields_from_article(
        mug(campaign=Decimal("79.20"), campaignTo="2026-11-30"), switches=CAMPAIGN, prices_include_tax=True
    )
    assert ended == NO_CAMPAIGN
    running = shop_fields_from_article(
        mug(campaign=Decimal("79.20"), campaignTo="2026-12-01"), switches=CAMPAIGN, prices_include_tax=True
    )
    assert running["sale_price"] == "99.00"


# -- stock articles, WooCommerce -> Hogia Smart ----------------------------------------------------------


def test_a_product_that_keeps_no_stock_becomes_a_non_stock_article():
    tea = article_from_product(
        _product("simple_scheduled_sale_future_no_manage_stock_te"),
        taxes=ShopTaxes(),
        prices_include_tax=True,
    )
    assert tea["isStockArticle"] is False and "stockBalance" not in tea
    gift_card = article_from_product(
        _product("simple_zero_rate_0_presentkort"), taxes=ShopTaxes(), prices_include_tax=True
    )
    assert gift_card["isStockArticle"] is False and "stockBalance" not in gift_card


def test_a_product_that_keeps_stock_becomes_a_stock_article_with_its_balance():
    mugg = article_from_product(
        _product("simple_standard_25_rounding_mugg"), taxes=ShopTaxes(), prices_include_tax=True
    )
    assert (mugg["isStockArticle"], mugg["stockBalance"]) == (True, Decimal(617))
    parent = _product("variable_parent_tshirt")
    medium = article_from_product(
        _variation("SE-TS-M"), taxes=ShopTaxes(), parent=parent, prices_include_tax=True
    )
    assert (medium["isStockArticle"], medium["stockBalance"]) == (True, Decimal(3))


def test_a_variation_on_its_parents_stock_is_a_stock_article_only_while_the_parent_keeps_stock():
    # Invented: the store has no parent that keeps stock; WooCommerce then shows "parent"
    # on a variation that keeps none of its own (WC_Product_Variation::get_manage_stock).
    variation_on_parent_stock_invented = {**_variation("SE-TS-M"), "manage_stock": "parent"}
    parent_with_stock_invented = {
        **_product("variable_parent_tshirt"),
        "manage_stock": True,
        "stock_quantity": 40,
    }
    on_parent = article_from_product(
        variation_on_parent_stock_invented,
        taxes=ShopTaxes(),
        parent=parent_with_stock_invented,
        prices_include_tax=True,
    )
    assert (on_parent["isStockArticle"], on_parent["stockBalance"]) == (True, Decimal(40))
    parent_without_stock = _product("variable_parent_tshirt")
    alone = article_from_product(
        variation_on_parent_stock_invented,
        taxes=ShopTaxes(),
        parent=parent_without_stock,
        prices_include_tax=True,
    )
    assert alone["isStockArticle"] is False and "stockBalance" not in alone
    own_none = article_from_product(
        {**_variation("SE-TS-M"), "manage_stock": False},
        taxes=ShopTaxes(),
        parent=parent_with_stock_invented,
        prices_include_tax=True,
    )
    assert own_none["isStockArticle"] is False


def test_the_kind_of_article_is_said_also_without_prices():
    tea = article_from_product(_product("simple_scheduled_sale_future_no_manage_stock_te"), taxes=ShopTaxes())
    assert tea == {
        "number": "SE-TE-100",
        "name": tea["name"],
        "unit": "st",
        "vatPercent": 12,
        "isStockArticle": False,
    }
