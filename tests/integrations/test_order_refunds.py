"""Refunds in the shop become credit invoices against the order's invoice (or wait, flagged)."""

from decimal import Decimal

import pytest

from integrations.models import OrderTransfer
from integrations.orders.attempt import order_transfer
from integrations.orders.poll import orders_poll
from integrations.orders.support import refunds_mark_booked_by_hand
from tests.integrations.helpers import NET_STORE, connected_customer, front, net_store
from tests.integrations.test_order_transfer import hogia, transfer_all

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres,
    pytest.mark.usefixtures("hogia_without_rate_limit"),
]
State = OrderTransfer.State


def _refund_mug(shop_front, order):
    """A5's refund as the shop made it: one broken mug, 26.66 + 6.67 VAT, money not moved."""
    mug = next(line for line in order["line_items"] if line["sku"] == "SE-MUGG-35")
    return shop_front.call(
        "POST",
        f"orders/{order['id']}/refunds",
        {
            "amount": "33.33",
            "reason": "En mugg kom trasig",
            "api_refund": False,
            "line_items": [
                {
                    "id": mug["id"],
                    "quantity": 1,
                    "refund_total": "26.66",
                    "refund_tax": [{"id": 1, "refund_total": "6.67"}],
                }
            ],
        },
    )


def test_a_partial_refund_after_invoicing_becomes_a_credit_invoice(woo_sandbox, hogia_sandbox):
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    shop_front = front(shop)
    order = shop_front.place("A5_rounding_partial_refund")
    (transfer,) = transfer_all(shop)
    assert transfer.state == State.INVOICED
    _refund_mug(shop_front, order)
    (transfer,) = transfer_all(shop)  # the poll sees the order changed, with a refund
    assert transfer.state == State.INVOICED
    (credit,) = transfer.credits.all()
    client = hogia(hogia_sandbox)
    booked = client.invoice_get(credit.hogia_invoice_id)
    assert booked["grossAmount"] == Decimal("-33.33") and booked["vatAmount"] == Decimal("-6.67")
    assert booked["creditedInvoiceId"] == transfer.hogia_invoice_id
    assert "credited: credit invoice" in transfer.events.last().message
    for _ in range(2):  # seen again: no second credit
        orders_poll(shop=shop)
        order_transfer(transfer_id=transfer.pk)
    assert transfer.credits.count() == 1


def test_an_order_fully_refunded_before_transfer_is_never_invoiced(woo_sandbox, hogia_sandbox):
    net_store(woo_sandbox)
    prefix, key, secret = NET_STORE
    _customer, (shop,) = connected_customer(
        woo_sandbox, hogia_sandbox, stores=[(prefix, "Nettobutik", key, secret, "1")]
    )
    shop_front = front(shop)
    order = shop_front.place("B3_guest_full_refund")
    shop_front.call("POST", f"orders/{order['id']}/refunds", {"amount": order["total"], "api_refund": False})
    (transfer,) = transfer_all(shop)
    assert transfer.state == State.FILTERED and transfer.woo_status == "refunded"
    assert not transfer.hogia_invoice_id


def test_a_refund_by_amount_only_is_flagged_and_can_be_marked_as_booked_by_hand(woo_sandbox, hogia_sandbox):
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    shop_front = front(shop)
    order = shop_front.place("A5_rounding_partial_refund")
    (transfer,) = transfer_all(shop)
    shop_front.call("POST", f"orders/{order['id']}/refunds", {"amount": "50.00", "api_refund": False})
    (transfer,) = transfer_all(shop)
    assert transfer.state == State.NEEDS_ATTENTION
    assert "no lines, so its VAT cannot be split" in transfer.last_error
    assert transfer.credits.count() == 0
    assert refunds_mark_booked_by_hand(transfer=transfer, by="support") == 1
    transfer.refresh_from_db()
    assert transfer.state == State.INVOICED and transfer.credits.get().booked_by_hand
