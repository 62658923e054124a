"""Buyer matching and Hogia Smart contacts from the real WooCommerce 11 orders.

Orders whose name ends in ``derived`` are fixture orders changed in the test.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest

from integrations.mapping.contacts import (
    BuyerKey,
    buyer_key,
    hogia_contact_body,
    hogia_contact_filters,
    organisation_number,
)

ORDERS_DIR = (
    Path(__file__).resolve().parents[2]
    / "integrations"
    / "sandboxes"
    / "fixtures"
    / "woocommerce-11"
    / "orders"
)
ORDERS = {
    path.name[:2]: json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    for path in sorted(ORDERS_DIR.glob("*.json"))
    if not path.name.endswith(".request.json")
}
POLICIES = ["email", "organisation_number", "shop_customer_number"]


@pytest.mark.parametrize("policy", POLICIES)
def test_a_guest_is_matched_by_email_under_every_policy(policy):
    key = buyer_key(ORDERS["A1"], policy=policy)

    assert key == BuyerKey("email", "maria.lindqvist@example.se")
    assert hogia_contact_filters(key) == {"email": "maria.lindqvist@example.se"}


def test_a_guest_company_with_org_number_is_still_matched_by_email():
    # A3 is a guest (customer_id 0) with _billing_org_number 556677-8899 in its meta.
    assert buyer_key(ORDERS["A3"], policy="organisation_number") == BuyerKey(
        "email", "faktura@exempelhandel.example.se"
    )
    assert organisation_number(ORDERS["A3"]) == "556677-8899"


def test_a_registered_company_by_each_policy():
    order = ORDERS["B1"]  # customer 3, Nilsson Bygg AB, _billing_org_number 556123-4567

    by_number = buyer_key(order, policy="shop_customer_number")
    by_org = buyer_key(order, policy="organisation_number")

    assert by_number == BuyerKey("shop_customer_number", "shop:3")
    assert hogia_contact_filters(by_number) == {}  # found through the portal's binding, not searched
    assert by_org == BuyerKey("organisation_number", "556123-4567")
    assert hogia_contact_filters(by_org) == {"identification_number": "556123-4567"}
    assert buyer_key(order, policy="email") == BuyerKey("email", "ekonomi@nilssonbygg.example.se")


def test_a_registered_buyer_without_org_number_falls_back_to_email():
    assert buyer_key(ORDERS["A2"], policy="organisation_number") == BuyerKey(
        "email", "anna.andersson@example.se"
    )


def test_email_and_org_number_are_normalised_derived():
    order = copy.deepcopy(ORDERS["B1"])
    order["billing"]["email"] = "  Ekonomi@NilssonBygg.Example.SE "

    assert buyer_key(order, policy="email").value == "ekonomi@nilssonbygg.example.se"
    for typed in ("5561234567", "556123 4567", "16556123-4567", "165561234567"):
        order["meta_data"] = [{"id": 1, "key": "_billing_org_number", "value": typed}]
        assert buyer_key(order, policy="organisation_number").value == "556123-4567", typed


def test_org_number_from_other_places_derived():
    order = copy.deepcopy(ORDERS["B1"])
    order["meta_data"] = [{"id": 1, "key": "_billing_company_number", "value": "556123-4567"}]
    assert organisation_number(order) == "556123-4567"
    order["meta_data"] = []
    order["billing"]["org_number"] = "5561234567"
    assert organisation_number(order) == "556123-4567"


def test_a_mistyped_org_number_is_refused_not_guessed_derived():
    order = copy.deepcopy(ORDERS["B1"])
    order["meta_data"] = [{"id": 1, "key": "_billing_org_number", "value": "55612-345"}]

    with pytest.raises(ValueError, match="not 10 digits"):
        buyer_key(order, policy="organisation_number")


def test_without_email_or_key_there_is_a_plain_reason_derived():
    guest = copy.deepcopy(ORDERS["A1"])
    guest["billing"]["email"] = ""
    with pytest.raises(ValueError, match="order 39 is a guest order without an e-mail address"):
        buyer_key(guest, policy="email")

    registered = copy.deepcopy(ORDERS["A2"])
    registered["billing"]["email"] = " "
    with pytest.raises(ValueError, match="neither an organisation number nor an e-mail address"):
        buyer_key(registered, policy="organisation_number")
    assert buyer_key(registered, policy="shop_customer_number") == BuyerKey("shop_customer_number", "shop:2")
    with pytest.raises(ValueError, match="unknown buyer matching policy"):
        buyer_key(registered, policy="phone")


def test_contact_for_a_company_with_a_separate_delivery_address():
    body = hogia_contact_body(ORDERS["A3"])

    assert body == {
        "isOrganization": True,
        "companyName": "Exempel Handel AB",
        "givenName": "Karin",
        "surName": "Berg",
        "email": "faktura@exempelhandel.example.se",
        "phone": "+4640123456",
        "countryCode": "SE",
        "identificationNumber": "556677-8899",
        "addresses": [
            {
                "addressType": "Billing",
                "street": "Hamngatan 3",
                "streetExtraLine": None,
                "zipCode": "211 22",
                "city": "Malmö",
                "countryCode": "SE",
            },
            {
                "addressType": "Shipping",
                "street": "Lagergatan 7",
                "streetExtraLine": None,
                "zipCode": "212 15",
                "city": "Malmö",
                "countryCode": "SE",
            },
        ],
        "customer": {"isActive": True, "paymentTerms": 30, "currencyCode": "SEK"},
    }


def test_contact_for_a_private_person_has_one_address_and_no_number():
    body = hogia_contact_body(ORDERS["A1"])

    assert body["isOrganization"] is False and body["companyName"] is None
    assert (body["givenName"], body["surName"]) == ("Maria", "Lindqvist")
    assert body["identificationNumber"] is None
    assert [a["addressType"] for a in body["addresses"]] == ["Billing"]  # shipping is the same place
    assert "number" not in body


def test_contact_needs_a_name_derived():
    order = copy.deepcopy(ORDERS["A1"])
    order["billing"].update(first_name="", last_name="", company="")

    with pytest.raises(ValueError, match="neither a company nor a buyer name"):
        hogia_contact_body(order)
