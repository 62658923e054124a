"""Articles between WooCommerce and Hogia Smart: campaigns to the shop.

Hogia articles are as the Hogia Smart sandbox returns them (prices excluding VAT).
"""
from __future__ import annotations

from decimal import Decimal

from integrations.mapping.articles import Switches, shop_fields_from_article

CAMPAIGN = Switches(campaign=True)
NO_CAMPAIGN = {"sale_price": "", "date_on_sale_from": "", "date_on_sale_to": ""}


def mug(**prices) -> dict:
    """SE-MUGG-35: 99.20 excl. VAT (124.00 incl. 25 %), with the campaign fields given."""
    return {"number": "SE-MUGG-35", "name": "Mugg 35 cl", "vatPercent": 25,
            "prices": {"ordinary": Decimal("99.20"), "campaign": None, "campaignFrom": None, "campaignTo": None,
                       **prices}}


def campaign(**prices) -> dict:
    return shop_fields_from_article(mug(**prices), switches=CAMPAIGN, prices_include_tax=True)


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
