"""The order payload check: every real order passes, each kind of broken value is named in a
reason support can act on, and the safety-net poll skips (and logs) what the check turns away."""

from __future__ import annotations

import copy
import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.utils import timezone

from integrations.clients import NO_RETRY, WooCommerceClient
from integrations.models import OrderTransfer, SyncLogEntry
from integrations.orders.payload import (
    MAX_PROBLEMS,
    OrderPayloadInvalid,
    order_payload_check,
    order_payload_problems,
)
from integrations.orders.poll import orders_poll
from integrations.sandboxes.fixtures import WOOCOMMERCE_11, WOOCOMMERCE_DOCS
from tests.factories import ShopFactory


def _load(path) -> object:
    return json.loads(path.read_bytes(), parse_float=Decimal)


def real_orders() -> dict[str, dict]:
    """Every order the fixtures hold: the real WooCommerce 11 store's (as read and as delivered
    by its webhooks) and the REST documentation's examples."""
    orders = {
        p.name: _load(p)
        for p in sorted((WOOCOMMERCE_11 / "orders").glob("*.json"))
        if not p.name.endswith(".request.json")
    }
    for name in ("order_created_A1", "order_updated_A6_cancelled"):
        orders[f"webhook {name}"] = _load(WOOCOMMERCE_11 / "webhooks" / f"{name}.body")
    for name in ("order.json", "order_update_response.json"):
        orders[f"docs {name}"] = _load(WOOCOMMERCE_DOCS / name)
    for order in _load(WOOCOMMERCE_DOCS / "orders_list.json"):
        orders[f"docs orders_list {order['id']}"] = order
    for action, batch in _load(WOOCOMMERCE_DOCS / "orders_batch_response.json").items():
        for order in batch:
            orders[f"docs orders_batch {action} {order['id']}"] = order
    return orders


REAL = real_orders()


def a1() -> dict:
    return copy.deepcopy(REAL["A1_guest_mixed_vat_processing.json"])


@pytest.mark.parametrize("name", REAL)
def test_every_real_order_passes(name):
    assert order_payload_problems(REAL[name]) == []
    order_payload_check(REAL[name])  # does not raise


def test_the_fixtures_hold_the_orders_they_should():
    assert len([n for n in REAL if n.endswith(".json") and "docs" not in n]) == 10
    assert any(order["refunds"] for order in REAL.values())  # refunds are checked on real data


# (where, value, words the reason must contain): each value broken in the way a store,
# a plugin or a hand edit has broken it, or as an attacker holding the secret would.
BROKEN = [
    ("id", 2**63, "64-bit"),
    ("id", 2**64 + 1, "64-bit"),
    ("id", 0, "is not a WooCommerce id"),
    ("id", -39, "is not a WooCommerce id"),
    ("id", True, "id is true, not a whole number"),
    ("id", "39", "not a whole number"),
    ("id", Decimal("39.5"), "not a whole number"),
    ("id", None, "id is missing"),
    ("number", "N" * 41, "longer than the 40 characters"),
    ("number", ["39"], "not an order number"),
    ("number", 10**41, "at most 40 digits"),
    ("status", None, "status is null"),
    ("status", 5, "status is 5"),
    ("status", "s" * 41, "longer than the 40 characters"),
    ("status", "proc\x00essing", "NUL"),
    ("currency", "SEKK", "three-letter"),
    ("currency", "S3K", "three-letter"),
    ("currency", {"code": "SEK"}, "three-letter"),
    (
        "total",
        "1000000000000.00",
        "total 1000000000000.00 is larger than the portal stores (up to 999 999 999 999.99)",
    ),
    ("total", Decimal("-1E+12"), "further below zero than the portal stores (down to -999 999 999 999.99)"),
    ("total", 10**30, "larger than the portal stores"),
    ("total", "abc", "total 'abc' is not a number"),
    ("total", "12.345", "more than 2 decimals"),
    ("total", "1e3", "not a number"),
    ("total", "1_000", "not a number"),
    ("total", "NaN", "not a number"),
    ("total", "١٢", "not a number"),  # Arabic-Indic digits: Decimal() would take them
    ("total", " ", "not a number"),
    ("total", True, "not a number"),
    ("total", [], "not a number"),
    ("total", 12.5, "binary fraction"),
    ("date_created_gmt", "2026-13-45T25:61:00", "date_created_gmt '2026-13-45T25:61:00' is not a date"),
    ("date_modified_gmt", "yesterday", "not a date and time"),
    ("date_modified_gmt", 1764215000, "not a date and time"),
    ("date_created_gmt", "0001-01-01T00:00:00+01:00", "between the years 1970 and 9998"),
    ("date_created_gmt", "9999-12-31T23:59:59", "between the years 1970 and 9998"),
    ("date_created_gmt", "2026-11-27T03:41:21+25:00", "not a date and time"),
    ("billing", "x", "billing is 'x', not an address object"),
    ("billing", [1], "not an address object"),
    ("shipping", {"city": 5}, "shipping.city is 5, not text"),
    ("billing", {"email": {"x": 1}}, "billing.email is an object, not text"),
    ("billing", {"first_name": "Ma\udc00ria"}, "lone UTF-16 surrogate"),
    ("refunds", "x", "refunds is 'x', not a list of refunds"),
    ("refunds", {"id": 44}, "not a list of refunds"),
    ("refunds", ["x"], "refunds[0] is 'x', not an object"),
    ("refunds", [{"id": "44"}], "refunds[0].id is '44', not a whole number"),
    ("refunds", [{"id": 2**63}], "64-bit"),
    ("refunds", [{"reason": "no id"}], "refunds[0].id is missing"),
    ("refunds", [{"id": 44, "total": "-abc"}], "refunds[0].total '-abc' is not a number"),
    ("line_items", "x", "line_items is 'x', not a list of objects"),
    ("line_items", [5], "line_items[0] is 5, not an object"),
    ("line_items", [{"taxes": "x"}], "line_items[0].taxes is 'x'"),
    ("line_items", [{"taxes": [{"id": [75], "total": "1"}]}], "not a tax rate id"),
    ("line_items", [{"sku": 5}], "line_items[0].sku is 5, not text"),
    ("line_items", [{"name": ["x"]}], "line_items[0].name is a list, not text"),
    ("line_items", [{"total": "1e999"}], "not a number"),
    ("line_items", [{"total": Decimal("1E+999")}], "larger than the portal takes"),
    ("line_items", [{"subtotal": Decimal("1E-999999")}], "more than 12 decimals"),
    ("line_items", [{"quantity": "two"}], "line_items[0].quantity 'two' is not a number"),
    ("line_items", [{"quantity": 10**10}], "larger than the portal takes"),
    ("line_items", [{"meta_data": [7]}], "line_items[0].meta_data[0] is 7, not an object"),
    ("line_items", [{"id": "315"}], "line_items[0].id is '315', not a whole number"),
    ("fee_lines", {"name": "fee"}, "fee_lines is an object, not a list of objects"),
    ("shipping_lines", [{"method_title": {}}], "shipping_lines[0].method_title is an object"),
    ("tax_lines", [{"rate_id": {"id": 1}}], "tax_lines[0].rate_id is an object"),
    ("tax_lines", [{"label": 25}], "tax_lines[0].label is 25, not text"),
    ("tax_lines", [{"rate_percent": "25%"}], "tax_lines[0].rate_percent '25%' is not a number"),
    ("coupon_lines", [{"code": 5}], "coupon_lines[0].code is 5, not text"),
    ("meta_data", "x", "meta_data is 'x'"),
    ("meta_data", [{"key": ["k"], "value": 1}], "meta_data[0].key is a list, not text"),
    ("customer_id", -1, "customer_id -1 is not a WooCommerce id"),
    ("customer_id", "2", "customer_id is '2', not a whole number"),
]


@pytest.mark.parametrize("field, value, words", BROKEN, ids=[f"{f}={v!r}"[:60] for f, v, _ in BROKEN])
def test_each_broken_value_is_named_in_the_reason(field, value, words):
    order = a1()
    if value is None and field in ("id",):
        del order[field]
    else:
        order[field] = value
    problems = order_payload_problems(order)
    assert len(problems) == 1, problems
    assert words in problems[0]
    assert problems[0].endswith(".")
    with pytest.raises(OrderPayloadInvalid) as raised:
        order_payload_check(order)
    assert raised.value.reason == problems[0] and raised.value.problems == problems


# Values WooCommerce does send (or that the flow reads as "not given"), which must pass.
ACCEPTED = [
    ("id", 2**63 - 1),
    ("number", 39),
    ("number", ""),
    ("number", None),
    ("status", "wc-custom-status"),
    ("currency", ""),
    ("currency", None),
    ("currency", "sek"),
    ("total", "999999999999.99"),
    ("total", "-999999999999.99"),
    ("total", "12.5"),
    ("total", "50"),
    ("total", 12),
    ("total", Decimal("12.50")),
    ("total", Decimal("1E+3")),
    ("total", "12.340"),
    ("total", ""),
    ("total", None),
    ("total", " 12.50 "),
    ("total", "-0"),
    ("date_created_gmt", None),
    ("date_created_gmt", ""),
    ("date_created_gmt", "2026-11-27T03:41:21+01:00"),
    ("date_modified_gmt", "2026-11-27T03:41:21Z"),
    ("date_modified_gmt", "2026-11-27"),
    ("billing", None),
    ("billing", []),
    ("billing", {}),
    ("shipping", {"phone": None, "x_plugin": ""}),
    ("refunds", None),
    ("refunds", []),
    ("refunds", [{"id": 44, "reason": "", "total": "-10.00"}]),
    ("refunds", [{"id": 726, "refund": "", "total": "-10.00"}]),  # the docs' misnamed key
    ("line_items", None),
    ("fee_lines", []),
    ("coupon_lines", [{"code": "rea", "discount": "12.5"}]),
    (
        "line_items",
        [
            {
                "name": "Mugg",
                "quantity": 3,
                "total": "79.99",
                "price": Decimal("26.6633333"),
                "meta_data": [{"key": "pa_color", "value": {"any": ["thing"]}}],
            }
        ],
    ),
    ("tax_lines", [{"rate_id": "1", "label": None, "rate_percent": 25}]),
    ("customer_id", 0),
    ("customer_id", None),
    ("meta_data", [{"key": None, "value": [1, 2]}]),
    ("prices_include_tax", "yes"),  # read as bool() by the mapping
]


@pytest.mark.parametrize("field, value", ACCEPTED, ids=[f"{f}={v!r}"[:60] for f, v in ACCEPTED])
def test_values_woocommerce_sends_pass(field, value):
    order = a1()
    order[field] = value
    assert order_payload_problems(order) == []


def test_missing_optional_fields_pass():
    order = {"id": 39, "status": "processing"}
    assert order_payload_problems(order) == []


@pytest.mark.parametrize("order", [None, [], ["id", 39], "x", 39, Decimal(1), True, b"{}"])
def test_anything_but_an_object_is_one_problem(order):
    problems = order_payload_problems(order)
    assert len(problems) == 1 and "not a JSON object" in problems[0]


def test_many_problems_are_cut_to_a_readable_reason():
    order = a1()
    order["billing"] = {f"field_{n}": n for n in range(50)}
    problems = order_payload_problems(order)
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == f"And {50 - MAX_PROBLEMS} more problems."


def test_reasons_show_values_short_and_never_raw():
    order = a1()
    order["status"] = "x" * 100_000 + "\x00"
    order["number"] = "\ud800" + "n" * 50
    order["total"] = 10**4000
    problems = order_payload_problems(order)
    assert all(len(problem) < 300 for problem in problems)
    reason = " ".join(problems)
    assert "\x00" not in reason and "\ud800" not in reason  # stored text: NUL and surrogates escaped
    reason.encode("utf-8")  # does not raise


def test_a_deeply_nested_value_is_not_walked():
    deep: object = []
    for _ in range(50_000):  # far deeper than Python's recursion limit
        deep = [deep]
    order = a1()
    order["billing"] = {"email": deep}
    order["meta_data"] = deep
    problems = order_payload_problems(order)
    assert any("billing.email is a list, not text" in p for p in problems)


# -- the safety-net poll ------------------------------------------------------------------------

SHOP_URL = "https://butik.example.invalid/"


@pytest.mark.django_db
@pytest.mark.parametrize("store_version", ["", "5.7.0"], ids=["modified_after", "old store, newest first"])
def test_the_poll_logs_and_skips_an_invalid_order_and_takes_the_others(store_version):
    shop = ShopFactory(url=SHOP_URL, store_version=store_version)
    good, other = a1(), copy.deepcopy(REAL["A2_customer_variations_coupon_fee_onhold.json"])
    too_large = dict(a1(), id=900, number="900", total="1000000000000.00")
    no_address = dict(a1(), id=901, number="901", billing="x")
    huge_id = dict(a1(), id=2**63, number="huge")
    orders = [good, too_large, no_address, huge_id, other]
    for order in orders:  # changed in the shop after the shop was added: within the poll's window
        order["date_modified_gmt"] = (timezone.now() + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    if store_version:
        orders.reverse()  # newest first
    woo = WooCommerceClient(
        base_url=SHOP_URL, consumer_key="ck_" + "0" * 40, consumer_secret="cs_" + "0" * 40, retry=NO_RETRY
    )
    with responses.RequestsMock() as stub:
        stub.add(
            responses.GET,
            re.compile(re.escape(SHOP_URL + "wp-json/wc/v3/orders") + r".*"),
            body=json.dumps(orders, default=str),
            content_type="application/json",
            headers={"X-WP-Total": str(len(orders)), "X-WP-TotalPages": "1"},
        )
        seen = orders_poll(shop=shop, woo=woo)
    assert seen == 2
    assert sorted(OrderTransfer.objects.values_list("woo_order_id", flat=True)) == [39, 40]
    logs = {entry.object_ref: entry for entry in SyncLogEntry.objects.filter(shop=shop)}
    assert set(logs) == {"900", "901", str(2**63)}
    assert all(entry.level == "warning" and "skipped" in entry.message for entry in logs.values())
    assert "999 999 999 999.99" in logs["900"].message
    assert "billing is 'x'" in logs["901"].message
    assert "64-bit" in logs[str(2**63)].message
    shop.refresh_from_db()
    assert shop.orders_synced_until is not None  # the poll finished: the watermark moved on
