"""The WooCommerce sandbox's orders against what WooCommerce 11's source does: status and
``set_paid``, coupons (``WC_Discounts``), line SKUs read at response time, refunds seeded as
the shop made them, and the demo's two kinds of store (prices incl. and excl. VAT)."""
from __future__ import annotations

# pytestmark skips the module without the fixtures; server is that module's sandbox, seeded with the demo.
from tests.integrations.test_woocommerce_sandbox import _new_store, pytestmark, server  # noqa: F401


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
    assert done["date_completed"] and done["date_paid"]  # WC_Order::maybe_set_date_paid on the way to completed

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
