"""Articles between WooCommerce and Hogia Smart: campaigns to the shop.

Hogia articles are as the Hogia Smart sandbox returns them (prices excluding VAT).
"""
from __future__ import annotations

from datetime import date, datetime, timezone as dt_timezone
from decimal import Decimal

from integrations.mapping.articles import ShopTaxes, Switches, new_product_from_article, shop_fields_from_article

TODAY = date(2026, 12, 2)
CAMPAIGN = Switches(campaign=True)
NO_CAMPAIGN = {"sale_price": "", "date_on_sale_from": "", "date_on_sale_to": ""}


def mug(**prices) -> dict:
    """SE-MUGG-35: 99.20 excl. VAT (124.00 incl. 25 %), with the campaign fields given."""
    return {"number": "SE-MUGG-35", "name": "Mugg 35 cl", "vatPercent": 25,
            "prices": {"ordinary": Decimal("99.20"), "campaign": None, "campaignFrom": None, "campaignTo": None,
                       **prices}}


def campaign(**prices) -> dict:
    return shop_fields_from_article(mug(**prices), switches=CAMPAIGN, prices_include_tax=True, today=TODAY)


# -- campaigns, Hogia Smart -> WooCommerce -------------------------------------------------------------

def test_no_campaign_clears_the_sale_price_and_dates_with_empty_strings_not_null():
    # WooCommerce applies a date only if isset(): null would leave the old sale window.
    assert campaign() == NO_CAMPAIGN


def test_a_campaign_price_without_dates_clears_both_dates():
    assert campaign(campaign=Decimal("79.20")) == {"sale_price": "99.00", "date_on_sale_from": "",
                                                   "date_on_sale_to": ""}


def test_an_open_ended_campaign_clears_the_date_it_has_not():
    started = campaign(campaign=Decimal("79.20"), campaignFrom="2026-11-20")
    assert started == {"sale_price": "99.00", "date_on_sale_from": "2026-11-20T00:00:00", "date_on_sale_to": ""}
    ending = campaign(campaign=Decimal("79.20"), campaignTo="2026-12-24")
    assert ending == {"sale_price": "99.00", "date_on_sale_from": "", "date_on_sale_to": "2026-12-24T23:59:59"}


def test_a_running_campaign_is_written_with_its_dates():
    running = campaign(campaign=Decimal("79.20"), campaignFrom="2026-11-20", campaignTo="2026-12-24")
    assert running == {"sale_price": "99.00", "date_on_sale_from": "2026-11-20T00:00:00",
                       "date_on_sale_to": "2026-12-24T23:59:59"}


def test_a_campaign_on_its_last_day_is_still_written():
    last_day = campaign(campaign=Decimal("79.20"), campaignFrom="2026-11-20", campaignTo="2026-12-02")
    assert last_day["sale_price"] == "99.00" and last_day["date_on_sale_to"] == "2026-12-02T23:59:59"


def test_a_campaign_that_starts_later_is_written_with_its_dates_for_woocommerce_to_schedule():
    future = campaign(campaign=Decimal("79.20"), campaignFrom="2026-12-20T00:00:00", campaignTo="2026-12-31")
    assert future == {"sale_price": "99.00", "date_on_sale_from": "2026-12-20T00:00:00",
                      "date_on_sale_to": "2026-12-31T23:59:59"}


def test_an_ended_campaign_is_no_campaign():
    ended = campaign(campaign=Decimal("79.20"), campaignFrom="2026-11-20", campaignTo="2026-12-01T00:00:00")
    assert ended == NO_CAMPAIGN


def test_an_ended_campaign_is_not_put_on_a_new_product():
    product = new_product_from_article(
        mug(campaign=Decimal("79.20"), campaignFrom="2026-11-20", campaignTo="2026-11-30"), taxes=ShopTaxes(),
        switches=CAMPAIGN, prices_include_tax=True, today=TODAY)
    assert (product["regular_price"], product["sale_price"], product["date_on_sale_to"]) == ("124.00", "", "")


def test_today_is_the_swedish_date_by_default(monkeypatch):
    # 23:30 UTC on 30 November is already 1 December in Stockholm: a campaign that ended on
    # the 30th has ended.
    monkeypatch.setattr("django.utils.timezone.now",
                        lambda: datetime(2026, 11, 30, 23, 30, tzinfo=dt_timezone.utc))
    ended = shop_fields_from_article(mug(campaign=Decimal("79.20"), campaignTo="2026-11-30"), switches=CAMPAIGN,
                                     prices_include_tax=True)
    assert ended == NO_CAMPAIGN
    running = shop_fields_from_article(mug(campaign=Decimal("79.20"), campaignTo="2026-12-01"),
                                       switches=CAMPAIGN, prices_include_tax=True)
    assert running["sale_price"] == "99.00"
