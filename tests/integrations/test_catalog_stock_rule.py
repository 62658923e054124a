"""The stock rule, end to end through the sandboxes: what a shop shows is Hogia Smart's balance
minus exactly what the customer's shops sold and Hogia has not invoiced yet.

Each test names the case of issue 9 it covers. The demo stores share one catalogue with
the demo Hogia company (SE-KAFFE-500: 120 in both; SE-PRESENT-500, a gift bag, is not a
stock product in the shops but a stock article in Hogia).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests

from integrations.catalog import to_shop
from integrations.catalog.stock import order_stock_taken, stock_reserved
from integrations.catalog.sync import catalog_sync
from integrations.clients import HogiaSmartClient
from integrations.connections import woocommerce_client
from integrations.models import CatalogState, Flow, FlowSettings, HogiaConnection, OrderTransfer, SyncLogEntry
from integrations.orders.attempt import order_transfer
from integrations.orders.poll import orders_poll
from integrations.sandboxes import demo
from integrations.sandboxes.fixtures import WOOCOMMERCE_11
from tests.integrations.helpers import connected_customer, front

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hogia_without_rate_limit")]

ORG = demo.HOGIA_ORGANIZATION_ID
State = OrderTransfer.State
ORDERS = WOOCOMMERCE_11 / "orders"
BUYER = {"first_name": "Eva", "last_name": "Ek", "email": "eva@example.se"}
KAFFE = 23  # the demo shops' product id of SE-KAFFE-500


def hogia(hogia_sandbox) -> HogiaSmartClient:
    return HogiaSmartClient(
        api_base=hogia_sandbox.url,
        organization_id=ORG,
        client_id=demo.HOGIA_CLIENT_ID,
        client_secret=demo.HOGIA_CLIENT_SECRET,
    )


def stock_customer(
    woo_sandbox, hogia_sandbox, *, flow=Flow.ERP, trigger_statuses=("processing", "completed"), **switches
):
    customer, shops = connected_customer(
        woo_sandbox, hogia_sandbox, flow=flow, trigger_statuses=trigger_statuses
    )
    FlowSettings.objects.filter(customer=customer).update(sync_stock=True, **switches)
    HogiaConnection.objects.filter(customer=customer).update(rate_limit_requests=0)
    return customer, shops


def by_sku(shop, sku: str) -> dict:
    (product,) = woocommerce_client(shop=shop).products_by_sku([sku])
    return product


def stock(shop, sku: str = "SE-KAFFE-500") -> int:
    return by_sku(shop, sku)["stock_quantity"]


def till_sale(hogia_sandbox, sku: str, quantity: int) -> None:
    requests.post(
        f"{hogia_sandbox.url}/_sandbox/{ORG}/till-sale",
        json={"lines": [{"articleNumber": sku, "quantity": quantity}]},
    ).raise_for_status()


def place(shop, status: str, quantity: int, product_id: int = KAFFE) -> dict:
    return front(shop).call(
        "POST",
        "orders",
        {
            "status": status,
            "billing": BUYER,
            "line_items": [{"product_id": product_id, "quantity": quantity}],
        },
    )


def fixture_order(name: str) -> dict:
    return json.loads((ORDERS / f"{name}.json").read_text())


# -- what an order took, as WooCommerce recorded it --------------------------------------------------


@pytest.mark.parametrize(
    "fixture, taken",
    [
        ("A1_guest_mixed_vat_processing", {"SE-KAFFE-500": "2", "SE-BOK-001": "1", "SE-MUGG-35": "3"}),
        ("A2_customer_variations_coupon_fee_onhold", {"SE-TS-M": "1", "SE-TS-L": "2"}),
        ("A4_guest_nosku_nostock_pending", {}),
        # Three mugs bought, one refunded and put back on the shelf: two are still taken.
        ("A5_rounding_partial_refund", {"SE-MUGG-35": "2", "SE-BOK-001": "1"}),
        ("A6_customer_cancelled", {}),
        ("B3_guest_full_refund", {}),
    ],
)
def test_an_orders_stock_taken_is_what_woocommerce_recorded_per_line(fixture, taken):
    # The gift bag of A1 is not a stock product in the shop: no _reduced_stock, nothing taken.
    assert order_stock_taken(fixture_order(fixture)) == taken


def test_a_shop_that_records_no_reduced_stock_is_judged_by_the_status():
    order = fixture_order("A3_company_sale_fixedcart_fees_completed")
    for line in order["line_items"]:
        line["meta_data"] = [m for m in line["meta_data"] if m["key"] != "_reduced_stock"]
    assert order_stock_taken(order) == {"SE-BRYGG-01": "1", "SE-KAFFE-500": "5"}
    assert order_stock_taken({**order, "status": "pending"}) == {}


# -- case 1: orders that reduced stock but are not transferred ---------------------------------------


@pytest.mark.parametrize(
    "status, triggers",
    [
        ("on-hold", ("processing", "completed")),  # a bank transfer waiting for its payment
        ("processing", ("completed",)),  # a shop that transfers only when it ships
    ],
)
def test_case_1_an_order_that_took_stock_but_is_not_transferred_yet_is_subtracted(
    woo_sandbox, hogia_sandbox, status, triggers
):
    customer, (shop, second) = stock_customer(woo_sandbox, hogia_sandbox, trigger_statuses=triggers)
    catalog_sync(customer=customer)
    place(shop, status, 2)
    assert stock(shop) == 118  # WooCommerce's own reduction
    orders_poll(shop=shop)
    assert OrderTransfer.objects.get(shop=shop).state == State.FILTERED
    till_sale(hogia_sandbox, "SE-KAFFE-500", 1)  # Hogia: 119
    catalog_sync(customer=customer)
    assert [stock(shop), stock(second)] == [117, 117]


def test_case_1_a_cancelled_order_gives_its_stock_back(woo_sandbox, hogia_sandbox):
    customer, (shop, second) = stock_customer(woo_sandbox, hogia_sandbox)
    catalog_sync(customer=customer)
    order = place(shop, "on-hold", 2)
    orders_poll(shop=shop)
    assert stock_reserved(customer=customer) == {"SE-KAFFE-500": Decimal(2)}
    front(shop).call("PUT", f"orders/{order['id']}", {"status": "cancelled"})
    assert stock(shop) == 120  # WooCommerce put them back
    orders_poll(shop=shop)
    assert stock_reserved(customer=customer) == {}
    catalog_sync(customer=customer)
    assert [stock(shop), stock(second)] == [120, 120]


# -- case 2: orders already invoiced ------------------------------------------------------------------


def test_case_2_an_invoiced_order_waiting_for_its_credit_is_not_subtracted_again(woo_sandbox, hogia_sandbox):
    customer, (shop, second) = stock_customer(woo_sandbox, hogia_sandbox)
    catalog_sync(customer=customer)
    order = place(shop, "processing", 3)
    orders_poll(shop=shop)
    transfer = OrderTransfer.objects.get(shop=shop)
    order_transfer(transfer_id=transfer.pk)
    transfer.refresh_from_db()
    assert transfer.state == State.INVOICED
    assert hogia(hogia_sandbox).article_by_number("SE-KAFFE-500")["stockBalance"] == 117
    # A refund by amount only (no lines, nothing restocked) waits for support to book it by hand.
    front(shop).call("POST", f"orders/{order['id']}/refunds", {"amount": "10.00", "api_refund": False})
    orders_poll(shop=shop)
    order_transfer(transfer_id=transfer.pk)
    transfer.refresh_from_db()
    assert transfer.state == State.NEEDS_ATTENTION and transfer.hogia_invoice_id
    till_sale(hogia_sandbox, "SE-KAFFE-500", 1)  # Hogia: 116, the invoice already counted
    catalog_sync(customer=customer)
    assert [stock(shop), stock(second)] == [116, 116]


# -- case 3: stock seeded from the shop ----------------------------------------------------------------


def test_case_3_an_article_created_from_the_shop_starts_with_the_shops_open_orders_added_back(
    woo_sandbox, hogia_sandbox
):
    customer, (shop, second) = stock_customer(
        woo_sandbox,
        hogia_sandbox,
        flow=Flow.COMBO,
        sync_articles=True,
        trigger_statuses=("processing", "completed", "on-hold"),
    )
    catalog_sync(customer=customer)
    product = front(shop).call(
        "POST",
        "products",
        {
            "name": "Kaffekvarn",
            "sku": "NY-KVARN",
            "regular_price": "499.00",
            "manage_stock": True,
            "stock_quantity": 10,
        },
    )
    place(shop, "on-hold", 2, product_id=product["id"])
    assert stock(shop, "NY-KVARN") == 8
    orders_poll(shop=shop)
    catalog_sync(customer=customer)
    # 10 on the shelf: 8 for sale and 2 sold, not invoiced yet.
    assert hogia(hogia_sandbox).article_by_number("NY-KVARN")["stockBalance"] == 10
    assert stock(shop, "NY-KVARN") == 8
    transfer = OrderTransfer.objects.get(shop=shop)
    order_transfer(transfer_id=transfer.pk)
    assert hogia(hogia_sandbox).article_by_number("NY-KVARN")["stockBalance"] == 8
    report = catalog_sync(customer=customer)
    assert stock(shop, "NY-KVARN") == 8 and report.writes_woo == 0


# -- case 4: an order placed during a push ----------------------------------------------------------------


def test_case_4_an_order_placed_while_a_push_runs_is_subtracted_by_the_next_sync(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    customer, (shop, second) = stock_customer(woo_sandbox, hogia_sandbox)
    catalog_sync(customer=customer)
    article = hogia(hogia_sandbox).article_by_number("SE-KAFFE-500")
    hogia(hogia_sandbox).article_update(article["id"], {"stockBalance": Decimal(130)})  # a delivery
    real = to_shop.stock_reserved
    placed = []

    def order_arrives_meanwhile(**kwargs):
        reserved = real(**kwargs)  # the push has asked; an order lands before it writes
        if not placed:
            placed.append(place(shop, "processing", 2))
            orders_poll(shop=shop)
        return reserved

    monkeypatch.setattr(to_shop, "stock_reserved", order_arrives_meanwhile)
    report = catalog_sync(customer=customer)
    monkeypatch.setattr(to_shop, "stock_reserved", real)
    # 130 was written over the order (the race no single write can close); the order's lines,
    # recorded after the run started, bring its article back in the same run.
    assert [stock(shop), stock(second)] == [128, 128]
    assert report.writes_woo == 3  # shop 1: 130, then 128; shop 2: 128 at once
    assert catalog_sync(customer=customer).writes_woo == 0


# -- case 5: changes made in the shop ----------------------------------------------------------------------


def test_case_5_a_value_changed_in_the_shop_is_put_back_by_the_full_sync_and_logged(
    woo_sandbox, hogia_sandbox
):
    customer, (shop, second) = stock_customer(woo_sandbox, hogia_sandbox, sync_prices=True)
    catalog_sync(customer=customer)
    bok = by_sku(shop, "SE-BOK-001")
    regular = bok["regular_price"]
    front(shop).call("PUT", f"products/{bok['id']}", {"stock_quantity": 99, "regular_price": "1.00"})
    assert catalog_sync(customer=customer).writes_woo == 0  # nothing changed in Hogia: not looked at
    report = catalog_sync(customer=customer, full=True)
    bok = by_sku(shop, "SE-BOK-001")
    assert (bok["stock_quantity"], Decimal(bok["regular_price"])) == (15, Decimal(regular))
    assert report.writes_woo == 1
    entry = SyncLogEntry.objects.get(
        shop=shop, object_ref="SE-BOK-001", message__contains="changed in the shop"
    )
    assert "stock_quantity 99 → 15" in entry.message and "regular_price 1.00 → " in entry.message
    assert catalog_sync(customer=customer, full=True).writes_woo == 0


# -- case 6: a negative balance ---------------------------------------------------------------------------


def test_case_6_a_negative_balance_is_written_as_zero_unless_the_product_sells_on_backorder(
    woo_sandbox, hogia_sandbox
):
    customer, (shop, second) = stock_customer(woo_sandbox, hogia_sandbox)
    catalog_sync(customer=customer)
    front(second).call("PUT", f"products/{by_sku(second, 'SE-BOK-001')['id']}", {"backorders": "notify"})
    till_sale(hogia_sandbox, "SE-BOK-001", 21)  # 15 on the shelf: Hogia says -6
    catalog_sync(customer=customer)
    bok = by_sku(shop, "SE-BOK-001")
    assert (bok["stock_quantity"], bok["stock_status"]) == (0, "outofstock")
    backordered = by_sku(second, "SE-BOK-001")
    assert (backordered["stock_quantity"], backordered["stock_status"]) == (-6, "onbackorder")
    entry = SyncLogEntry.objects.get(shop=shop, object_ref="SE-BOK-001", message__contains="given 0")
    assert "-6" in entry.message


# -- case 7: products that do not manage stock ----------------------------------------------------------------


def test_case_7_a_product_that_does_not_manage_stock_is_never_given_a_count(woo_sandbox, hogia_sandbox):
    customer, (shop, second) = stock_customer(woo_sandbox, hogia_sandbox, flow=Flow.COMBO)
    assert by_sku(shop, "SE-PRESENT-500")["manage_stock"] is False
    assert hogia(hogia_sandbox).article_by_number("SE-PRESENT-500")["isStockArticle"] is True
    catalog_sync(customer=customer)
    catalog_sync(customer=customer, full=True)
    for each in (shop, second):
        gift = by_sku(each, "SE-PRESENT-500")
        assert (gift["manage_stock"], gift["stock_status"]) == (False, "instock")


# -- case 12: long runs in chunks -----------------------------------------------------------------------------


def _many_articles(hogia_sandbox, count: int) -> None:
    articles = [
        {
            "number": f"C-{n:05d}",
            "name": f"Artikel {n}",
            "vatPercent": 25,
            "prices": {"ordinary": "100.00"},
            "stockBalance": str(n % 7),
            "sendToWebshop": True,
        }
        for n in range(count)
    ]
    requests.post(f"{hogia_sandbox.url}/_sandbox/{ORG}/articles", json=articles).raise_for_status()


def test_case_12_a_long_sync_runs_in_chunks_and_a_killed_chunk_loses_nothing(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    customer, (shop, second) = stock_customer(
        woo_sandbox, hogia_sandbox, sync_prices=True, sync_articles=True, create_products=True
    )
    _many_articles(hogia_sandbox, 1200)
    real_push = to_shop.ShopPush.push
    pushed = []

    def killed_at_the_second_page(self, numbers):
        pushed.append(len(numbers))
        if len(pushed) == 3:  # the first shop's second page: the worker dies mid-chunk
            raise SystemExit("killed by the task's time limit")
        return real_push(self, numbers)

    monkeypatch.setattr(to_shop.ShopPush, "push", killed_at_the_second_page)
    with pytest.raises(SystemExit):
        catalog_sync(customer=customer)
    monkeypatch.setattr(to_shop.ShopPush, "push", real_push)
    state = CatalogState.objects.get(customer=customer)
    state.locked_until = None  # the killed worker's claim ran out
    state.save()
    first_page_end = state.hogia_row_version
    assert first_page_end > 0
    chunks = 0
    while True:
        chunks += 1
        report = catalog_sync(customer=customer, seconds=0)  # one page per chunk
        if not report.more:
            break
    assert chunks >= 3
    for each in (shop, second):
        skus = {p["sku"] for p in woocommerce_client(shop=each).products_iter() if p["sku"].startswith("C-")}
        assert len(skus) == 1200
    assert catalog_sync(customer=customer, full=True).writes == 0
