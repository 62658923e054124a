"""WooCommerce order buyer -> Hogia Smart contact (customer). Pure functions, no I/O.

The flow asks ``buyer_key`` who the buyer is under the customer's matching policy,
finds the contact with ``HogiaSmartClient.contacts_find(**hogia_contact_filters(key))``
(or, for the shop's customer number, through its own binding), and creates a missing
one from ``hogia_contact_body(order)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EMAIL, ORGANISATION_NUMBER, SHOP_CUSTOMER_NUMBER = "email", "organisation_number", "shop_customer_number"
POLICIES = (EMAIL, ORGANISATION_NUMBER, SHOP_CUSTOMER_NUMBER)

# WooCommerce has no organisation-number field: checkout plugins and our own order
# requests store it under one of these, the first one found wins.
ORG_NUMBER_META_KEYS = ("_billing_org_number", "_billing_company_number")
ORG_NUMBER_BILLING_KEYS = ("org_number",)

DEFAULT_PAYMENT_TERMS_DAYS = 30


@dataclass(frozen=True)
class BuyerKey:
    """Who the buyer is, normalised so that two orders of one buyer give equal keys.

    ``kind`` is ``email`` (value lower-cased and stripped), ``organisation_number``
    (``NNNNNN-NNNN``) or ``shop_customer_number`` (``shop:<customer_id>``, a key for the
    portal's own binding: Hogia Smart knows nothing of the shop's ids).
    """

    kind: str
    value: str


def buyer_key(order: dict, *, policy: str) -> BuyerKey:
    """The key to match this order's buyer by, under ``policy`` (a ``CustomerMatch`` value).

    Guests (``customer_id`` 0) are always matched by e-mail: they have no customer number,
    and an organisation number typed by a guest is not trusted to pick an existing
    customer. Under ``organisation_number`` a registered buyer without one falls back to
    e-mail. Raises ``ValueError`` (plain words) when the order carries neither the chosen
    key nor an e-mail address, or an organisation number that is not one.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown buyer matching policy {policy!r}; use one of {', '.join(POLICIES)}")
    number = order.get("number") or order.get("id")
    customer_id = order.get("customer_id") or 0
    email = normalise_email((order.get("billing") or {}).get("email"))

    if customer_id and policy == SHOP_CUSTOMER_NUMBER:
        return BuyerKey(SHOP_CUSTOMER_NUMBER, f"shop:{customer_id}")
    if customer_id and policy == ORGANISATION_NUMBER:
        org_number = organisation_number(order)
        if org_number:
            return BuyerKey(ORGANISATION_NUMBER, org_number)
    if email:
        return BuyerKey(EMAIL, email)
    if not customer_id:
        missing = "is a guest order without an e-mail address"
    elif policy == ORGANISATION_NUMBER:
        missing = "has neither an organisation number nor an e-mail address"
    else:
        missing = "has no e-mail address"
    raise ValueError(
        f"order {number} {missing}, so its buyer cannot be matched to a customer in "
        "Hogia Smart; add it in WooCommerce, then retry."
    )


def hogia_contact_filters(key: BuyerKey) -> dict:
    """Keyword arguments for ``HogiaSmartClient.contacts_find`` that find the buyer.

    Empty for ``shop_customer_number``: Hogia Smart assigns its own customer numbers, so
    a shop's customer id is looked up in the portal's bindings, never searched remotely
    (searching ``number=2`` would find whichever Hogia customer happens to have it).
    """
    if key.kind == EMAIL:
        return {"email": key.value}
    if key.kind == ORGANISATION_NUMBER:
        return {"identification_number": key.value}
    if key.kind == SHOP_CUSTOMER_NUMBER:
        return {}
    raise ValueError(f"unknown buyer key kind {key.kind!r}")


def hogia_contact_body(order: dict) -> dict:
    """A new Hogia Smart contact (camelCase, as the contract) for the order's buyer.

    Without ``number``: Hogia Smart gives the next free customer number. A shipping
    address is added only when it is filled in and differs from the billing address.
    Raises ``ValueError`` when the order has neither a company nor a buyer name, or an
    organisation number that is not 10 digits.
    """
    billing = order.get("billing") or {}
    shipping = order.get("shipping") or {}
    company = _text(billing.get("company"))
    given, sur = _text(billing.get("first_name")), _text(billing.get("last_name"))
    if not (company or given or sur):
        raise ValueError(
            f"order {order.get('number') or order.get('id')} has neither a company nor a "
            "buyer name; Hogia Smart needs one to create the customer."
        )
    country = _text(billing.get("country")).upper() or None
    addresses = []
    billing_address = _address("Billing", billing)
    if billing_address:
        addresses.append(billing_address)
    shipping_address = _address("Shipping", shipping)
    if shipping_address and not _same_place(shipping_address, billing_address):
        addresses.append(shipping_address)
    return {
        "isOrganization": bool(company),
        "companyName": company or None,
        "givenName": given or None,
        "surName": sur or None,
        "email": normalise_email(billing.get("email")) or None,
        "phone": _text(billing.get("phone")) or None,
        "countryCode": country,
        "identificationNumber": organisation_number(order),
        "addresses": addresses,
        "customer": {
            "isActive": True,
            "paymentTerms": DEFAULT_PAYMENT_TERMS_DAYS,
            "currencyCode": order.get("currency") or "SEK",
        },
    }


def normalise_email(value: object) -> str:
    """E-mail as Hogia Smart is searched for it: stripped and lower-cased ("" when absent)."""
    return _text(value).lower()


def organisation_number(order: dict) -> str | None:
    """The buyer's organisation number as ``NNNNNN-NNNN``, or None when the order has none.

    Read from order meta (``_billing_org_number``, ``_billing_company_number``) or
    ``billing.org_number``. A 12-digit form (century or the "16" prefix) is cut to 10.
    Raises ``ValueError`` for a value that is not 10 digits, rather than match or create
    a customer by a mistyped number.
    """
    raw = _org_number_field(order)
    if not raw:
        return None
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 12 and digits[:2] in ("16", "18", "19", "20"):
        digits = digits[2:]
    if len(digits) != 10:
        raise ValueError(
            f"order {order.get('number') or order.get('id')} has organisation number {raw!r}, "
            "which is not 10 digits (NNNNNN-NNNN); correct it in WooCommerce."
        )
    return f"{digits[:6]}-{digits[6:]}"


def _org_number_field(order: dict) -> str:
    meta = {m.get("key"): m.get("value") for m in order.get("meta_data") or [] if isinstance(m, dict)}
    billing = order.get("billing") or {}
    for value in (
        *(meta.get(key) for key in ORG_NUMBER_META_KEYS),
        *(billing.get(key) for key in ORG_NUMBER_BILLING_KEYS),
    ):
        if _text(value):
            return _text(value)
    return ""


def _address(kind: str, source: dict) -> dict | None:
    address = {
        "addressType": kind,
        "street": _text(source.get("address_1")) or None,
        "streetExtraLine": _text(source.get("address_2")) or None,
        "zipCode": _text(source.get("postcode")) or None,
        "city": _text(source.get("city")) or None,
        "countryCode": _text(source.get("country")).upper() or None,
    }
    if not (address["street"] or address["zipCode"] or address["city"]):
        return None
    return address


def _same_place(one: dict, other: dict | None) -> bool:
    if other is None:
        return False
    keys = ("street", "streetExtraLine", "zipCode", "city", "countryCode")
    return all((one[k] or "").casefold() == (other[k] or "").casefold() for k in keys)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
