"""Who an order is, for ever: derived from the store it was placed in, not from our shop row.

A shop removed from the portal and added again (a new row, a new webhook token) is the
same WooCommerce store with the same orders: their Hogia ``sequenceId``, their quota
key and their invoice reference must come out the same, so that nothing is invoiced or
counted twice.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

# Namespace of the sequence ids: uuid5(namespace, store + order id) is the same on every
# attempt, from every worker and every shop row of that store, for ever.
SEQUENCE_NAMESPACE = uuid.UUID("8f0b6c1e-4f5d-4b43-9a57-3c2de0f1a7b2")
REFERENCE_LENGTH = 50  # yourReference in Hogia Smart


def store_key(url: str) -> str:
    """The store behind a shop URL: host (and port) and path, lower case, without the scheme
    (http and https reach the same WordPress) or a trailing slash."""
    parts = urlsplit(url.strip() if "//" in url else f"//{url.strip()}")
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    path = parts.path.rstrip("/").lower()
    return f"{host}{port}{path}"


def order_sequence_id(*, shop_url: str, woo_order_id: int) -> uuid.UUID:
    return uuid.uuid5(SEQUENCE_NAMESPACE, f"{store_key(shop_url)}:order:{woo_order_id}")


def refund_sequence_id(*, order_sequence: uuid.UUID, woo_refund_id: int) -> uuid.UUID:
    """0 as the refund id: the credit of the whole order (cancelled or refunded in full)."""
    return uuid.uuid5(SEQUENCE_NAMESPACE, f"{order_sequence}:refund:{woo_refund_id}")


def order_quota_key(*, sequence_id: uuid.UUID) -> str:
    return f"order-{sequence_id}"


def _with_name(shop_name: str, tail: str) -> str:
    """The shop's name, shortened if need be, before a tail that is never cut."""
    room = REFERENCE_LENGTH - len(tail) - 1
    if room < 1:
        return tail[:REFERENCE_LENGTH]
    return f"{shop_name.strip()[:room].rstrip()} {tail}"


def invoice_reference(*, shop_name: str, order_number: str, woo_order_id: int) -> str:
    """``yourReference`` of an order's invoice, unique per order of the store.

    People read "Butik order 41". Where the shop numbers its orders itself (plugins, or a
    number reused after a reinstall), the WooCommerce id follows, because the number alone
    may belong to an older order: "Butik order A-1001 (id 5521)". The name is what gets
    shortened, never the part that makes it unique.
    """
    number = str(order_number or woo_order_id)
    tail = f"order {number}" if number == str(woo_order_id) else f"order {number} (id {woo_order_id})"
    if len(tail) > REFERENCE_LENGTH - 2:
        tail = f"order id {woo_order_id}"
    return _with_name(shop_name, tail)


def credit_reference(*, shop_name: str, order_number: str, woo_refund_id: int) -> str:
    """``yourReference`` of a credit invoice: the shop's name, as on the invoice it credits."""
    what = f"refund {woo_refund_id}" if woo_refund_id else "credit"
    return _with_name(shop_name, f"{what} of order {order_number}")
