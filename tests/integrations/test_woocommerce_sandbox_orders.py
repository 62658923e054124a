"""The WooCommerce sandbox's orders against what WooCommerce 11's source does: status and
``set_paid``, coupons (``WC_Discounts``), line SKUs read at response time, refunds seeded as
the shop made them, and the demo's two kinds of store (prices incl. and excl. VAT)."""

from __future__ import annotations

import requests

from integrations.sandboxes import demo

# pytestmark skips the module without the fixtures; server is that module's sandbox, seeded with the demo.
from tests.integrations.test_woocommerce_sandbox import (  # noqa: F401
    FIX11,
    Woo,
    _load,
    _new_store,
    pytestmark,
    server,
)


def _control(client: Woo, path: str, body) -> requests.Response:
    return requests.post(f"{client.base}/_sandbox{path}", json=body, timeout=10)


# -- status and set_paid (WC_REST_Orders_Controller::save_object, WC_Order::payment_complete) ---------


def test_set_paid_with_status_completed_on_an_on_hold_order_ends_completed(server):
    """``save_object`` sets the posted status first, saves, and only then runs ``payment_complete``
    when ``$creating || $order->needs_payment()``; ``needs_payment`` is true for pending/failed
    orders with a total, so an order that is completed by then is left completed."""
    client = _new_store(server)
    line = [{"product_id": 25, "quantity": 1}]
    held = client.post("/orders", {"status": "on-hold", "line_items": line}).json()
    assert (held["status"], held["date_paid"]) == ("on-hold", None)

    done = client.put(f"/orders/{held['id']}", {"status": "completed", "set_paid": True}).json()
    assert done["status"] == "completed"
    assert (
        done["date_completed"] and done["date_paid"]
    )  # WC_Order::maybe_set_date_paid on the way to completed

    # set_paid alone on an on-hold order: it does not need payment, so nothing changes.
    other = client.post("/orders", {"status": "on-hold", "line_items": line}).json()
    unchanged = client.put(f"/orders/{other['id']}", {"set_paid": True}).json()
    assert (unchanged["status"], unchanged["date_paid"]) == ("on-hold", None)

    # A pending order needs payment: payment_complete moves it to processing.
    pending = client.post("/orders", {"line_items": line}).json()
    paid = client.put(f"/orders/{pending['id']}", {"set_paid": True}).json()
    assert paid["status"] == "processing" and paid["date_paid"]

    # Creating with a status and set_paid: the status is set first; payment_complete only acts on
    # on-hold, pending, failed and cancelled orders, so a completed one stays completed.
    created = client.post("/orders", {"status": "completed", "set_paid": True, "line_items": line}).json()
    assert created["status"] == "completed" and created["date_paid"]

    # An order without lines needs no processing (WC_Order::needs_processing), so paying completes it.
    empty = client.post("/orders", {"set_paid": True}).json()
    assert (empty["status"], empty["needs_processing"]) == ("completed", False)


# -- coupons (WC_Discounts) ------------------------------------------------------------------------


def test_fixed_cart_remainder_goes_to_the_dearest_units_first(server):
    """A percent and a fixed-cart coupon on a store keeping prices excl. VAT, worked out by hand from
    WooCommerce 11's ``includes/class-wc-discounts.php`` (amounts in öre):

    ``set_items_from_order``: each line's price is its subtotal in öre: Mugg 5 x 33.33 = 16665,
    Kaffe 1 x 89.00 = 8900, Bok 1 x 249.00 = 24900. ``sort_by_price`` orders them by unit price
    (``$a->price / $a->quantity`` when the quantity is above 1), dearest first:
        Bok 24900, Kaffe 8900, Mugg 3333 a unit.

    ``rabatt10``, ``apply_coupon_percent``: ``floor( price * 10 / 100 )`` per line:
        Bok 2490, Kaffe 890, Mugg floor(1666.5) = 1666; together 5046. The whole cart would get
        ``wc_round_discount( 50465 * 0.10, 0 )`` = 5046 (WC_DISCOUNT_ROUNDING_MODE is half down),
        so there is no remainder.

    ``avdrag50``, ``apply_coupon_fixed_cart``: 5000 öre over 7 units, ``absint( 5000 / 7 )`` = 714 a
    unit through ``apply_coupon_fixed_product``: Bok 714, Kaffe 714, Mugg 5 x 714 = 3570; 4998 in all.
    The 2 öre left go round again; 2 / 7 rounds down to 0, so ``apply_coupon_remainder`` gives one öre
    a unit in sorted order until 2 are given: Bok's unit, then Kaffe's unit:
        Bok 715, Kaffe 715, Mugg 3570.

    Line totals (``set_item_discount_amounts``: the subtotal less both coupons):
        Mugg 166.65 - 16.66 - 35.70 = 114.29   Kaffe 89.00 - 8.90 - 7.15 = 72.95
        Bok 249.00 - 24.90 - 7.15 = 216.95
    VAT: 25 % of 114.29 = 28.5725 -> 28.57, 12 % of 72.95 = 8.754 -> 8.75, 6 % of 216.95 = 13.017 ->
    13.02; 50.34 in all. Total 404.19 + 50.34 = 454.53; discount_total 504.65 - 404.19 = 100.46.

    (Sorting on the line price, Mugg's 16665 would come before Kaffe and take the second öre; rounding
    the whole cart's 5046.5 half up would give Bok one öre more.)
    """
    client = _new_store(server, incl=False)
    response = client.post(
        "/orders",
        {
            "line_items": [
                {"product_id": 25, "quantity": 5},
                {"product_id": 23, "quantity": 1},
                {"product_id": 24, "quantity": 1},
            ],
            "coupon_lines": [{"code": "rabatt10"}, {"code": "avdrag50"}],
        },
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert [
        (li["product_id"], li["subtotal"], li["total"], li["total_tax"]) for li in order["line_items"]
    ] == [
        (25, "166.65", "114.29", "28.57"),
        (23, "89.00", "72.95", "8.75"),
        (24, "249.00", "216.95", "13.02"),
    ]
    assert [(c["code"], c["discount"]) for c in order["coupon_lines"]] == [
        ("rabatt10", "50.46"),
        ("avdrag50", "50"),
    ]
    assert (order["discount_total"], order["total_tax"], order["total"]) == ("100.46", "50.34", "454.53")


# -- line items: the product's current SKU (get_order_item_data) ----------------------------------


def test_line_item_sku_is_the_products_current_sku(server):
    """``WC_REST_Orders_V2_Controller::get_order_item_data`` reads ``sku`` from the item's product when
    it builds the answer (``$item->get_product() ? $item->get_product()->get_sku() : null``), so a SKU
    given to the product later shows on the order, and a deleted product's line has none."""
    client = _new_store(server)
    order = client.post(
        "/orders", {"line_items": [{"product_id": 27, "quantity": 2}, {"product_id": 30, "variation_id": 31}]}
    ).json()
    assert [li["sku"] for li in order["line_items"]] == ["", "SE-TS-S"]

    assert client.put("/products/27", {"sku": "SE-TYGKASSE"}).status_code == 200
    assert client.put("/products/30/variations/31", {"sku": "SE-TS-SMALL"}).status_code == 200
    again = client.get(f"/orders/{order['id']}").json()
    assert [li["sku"] for li in again["line_items"]] == ["SE-TYGKASSE", "SE-TS-SMALL"]
    listed = next(o for o in client.get("/orders").json() if o["id"] == order["id"])
    assert listed["line_items"][0]["sku"] == "SE-TYGKASSE"

    assert client.delete("/products/27", {"force": "true"}).status_code == 200
    assert client.get(f"/orders/{order['id']}").json()["line_items"][0]["sku"] is None


# -- refunds seeded as the shop made them ----------------------------------------------------------


def _without_links(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "_links"}


def test_seed_refunds_as_the_shop_made_them(server):
    """``POST {prefix}/_sandbox/orders/<id>/refunds`` stores refunds as WooCommerce answers them
    (``fixtures/woocommerce-11/refunds``): the refunds endpoints give them back unchanged, the order's
    ``refunds`` summary and status follow as ``wc_create_refund`` leaves them (a refund that leaves
    nothing to refund marks the order ``refunded``, a partial one leaves the status), ``total`` stays."""
    for name, status_before, incl in (
        ("B3_guest_full_refund", "completed", False),
        ("A5_rounding_partial_refund", "processing", True),
    ):
        client = _new_store(server, incl=incl)
        final = _load(FIX11 / "orders" / f"{name}.json")
        refunds = _load(FIX11 / "refunds" / f"{name}.refunds.json")
        before = dict(final, status=status_before, refunds=[])
        assert _control(client, "/orders", before).status_code == 201

        for refund in reversed(refunds):  # oldest first, as they were made
            seeded = _control(client, f"/orders/{final['id']}/refunds", refund)
            assert seeded.status_code == 201, seeded.text

        order = client.get(f"/orders/{final['id']}").json()
        assert (order["status"], order["total"], order["refunds"]) == (
            final["status"],
            final["total"],
            final["refunds"],
        )
        listed = client.get(f"/orders/{final['id']}/refunds").json()
        assert [_without_links(r) for r in listed] == [_without_links(r) for r in refunds]
        one = client.get(f"/orders/{final['id']}/refunds/{refunds[0]['id']}").json()
        assert _without_links(one) == _without_links(refunds[0])
        assert refunds[0]["id"] in [r["id"] for r in client.get("/refunds").json()]

    single = _load(FIX11 / "refunds" / "A5_refund_partial_single.json")
    assert _without_links(one) == _without_links(single)


def test_seeded_refund_needs_an_existing_order(server):
    client = _new_store(server)
    refund = _load(FIX11 / "refunds" / "A5_refund_partial_single.json")
    missing = _control(client, "/orders/999999/refunds", refund)
    assert (missing.status_code, missing.json()["code"]) == (404, "woocommerce_rest_shop_order_invalid_id")


# -- the demo: one store with prices incl. VAT, one excl. VAT --------------------------------------


def test_demo_has_a_store_with_prices_incl_vat_and_one_excl_vat(server):
    """``settings/store_A_prices_incl_tax.json`` and ``store_B_prices_excl_tax.json``: the same Swedish
    store with ``woocommerce_prices_include_tax`` yes and no; the demo has one of each."""
    stores = {s["prefix"]: s for s in requests.get(server.url + "/_sandbox/stores", timeout=5).json()}
    by_prefix = {prefix: stores[prefix]["prices_include_tax"] for prefix, *_ in demo.WOO_STORES}
    assert sorted(by_prefix.values()) == [False, True]
    for prefix, _name, key, secret, _unit in demo.WOO_STORES:
        client = Woo(server.url + prefix, key, secret)
        order = client.post("/orders", {"line_items": [{"product_id": 25, "quantity": 3}]}).json()
        # 3 x 33.33 entered incl. VAT is 79.99 + 20.00; entered excl. VAT it is 99.99 + 25.00.
        expected = ("79.99", "20.00", "99.99") if by_prefix[prefix] else ("99.99", "25.00", "124.99")
        assert (
            order["line_items"][0]["total"],
            order["line_items"][0]["total_tax"],
            order["total"],
        ) == expected
