"""Order -> invoice mapping against the real WooCommerce 11 payloads.

The expected per-rate figures are the "Totals per VAT rate" table of
``integrations/sandboxes/fixtures/woocommerce-11/README.md``, copied by hand, so that
the mapping cannot agree with itself by computing both sides. Orders whose name ends
in ``derived`` are fixture orders changed in the test, and say how.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from integrations.mapping.invoices import (
    InvoiceArticles,
    InvoiceBlocked,
    InvoiceLine,
    credit_from_refund,
    hogia_invoice_body,
    hogia_invoice_totals,
    invoice_from_order,
    order_vat_totals,
)

# Only the tests may import the sandbox: the mapping is the portal's own reading of the contract.
from integrations.sandboxes.hogia import invoice_totals as sandbox_invoice_totals

FIXTURES = Path(__file__).resolve().parents[2] / "integrations" / "sandboxes" / "fixtures"
WC11 = FIXTURES / "woocommerce-11"
D = Decimal


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)


ORDERS = {
    path.name[:2]: load(path)
    for path in sorted((WC11 / "orders").glob("*.json"))
    if not path.name.endswith(".request.json")
}
OLD_ORDER = load(FIXTURES / "woocommerce" / "order.json")  # WooCommerce 3.0 docs payload, US tax


def refund(name: str) -> dict:
    refunds = load(WC11 / "refunds" / name)
    return refunds[0] if isinstance(refunds, list) else refunds


# README "Totals per VAT rate": order -> {rate: (net, VAT)}; A3's "no VAT" fee is the 0 % key.
README_RATE_TOTALS = {
    "A1": {25: ("128.99", "32.25"), 12: ("158.93", "19.07"), 6: ("234.91", "14.09"), 0: ("500.00", "0.00")},
    "A2": {25: ("522.24", "130.56")},
    "A3": {25: ("870.53", "217.63"), 12: ("360.13", "43.21"), 0: ("15.00", "0.00")},
    "A4": {25: ("80.84", "20.21"), 12: ("52.68", "6.32")},
    "A5": {25: ("128.99", "32.25"), 6: ("234.91", "14.09")},
    "A6": {25: ("208.20", "52.05"), 12: ("79.46", "9.54")},
    "A7": {25: ("104.99", "26.25"), 12: ("141.07", "16.93")},
    "B1": {25: ("177.99", "44.50"), 12: ("267.00", "32.04"), 6: ("498.00", "29.88")},
    "B2": {25: ("1396.00", "349.00")},
    "B3": {25: ("49.00", "12.25"), 12: ("178.00", "21.36"), 0: ("500.00", "0.00")},
}
README_ORDER_TOTALS = {
    "A1": "1088.24",
    "A2": "652.80",
    "A3": "1506.50",
    "A4": "160.05",
    "A5": "410.24",
    "A6": "349.25",
    "A7": "289.24",
    "B1": "1049.41",
    "B2": "1745.00",
    "B3": "760.61",
}
INVOICEABLE = [name for name in README_RATE_TOTALS if name != "A4"]
# Hogia's VAT on each rate's net equals the shop's everywhere but A3 12 %:
# 360.13 x 12 % = 43.2156 -> 43.22 where the shop says 43.21, so the invoice needs -0.01.
EXPECTED_ROUNDING = {"A3": D("-0.01")}


def as_expected(table: dict) -> dict:
    return {D(rate): (D(net), D(vat)) for rate, (net, vat) in table.items()}


def nets(totals) -> dict:
    return {rate: net for rate, (net, _) in totals.by_rate.items()}


def sandbox_totals(draft) -> dict:
    """What the Hogia sandbox computes for the draft, fed the very body we would post."""
    _, lines = hogia_invoice_body(
        draft,
        customer_number="1001",
        invoice_date=date(2026, 11, 27),
        due_date=date(2026, 12, 27),
        result_unit=None,
        credited_invoice_id="00000000-0000-0000-0000-000000000001" if draft.is_credit else None,
    )
    return sandbox_invoice_totals(lines, prices_include_vat=False, use_rounding=False)


def assert_predictor_matches_sandbox(draft) -> None:
    theirs = sandbox_totals(draft)
    ours = draft.invoice_totals
    assert {
        D(d["percent"]): (d["netAmount"], d["vatAmount"]) for d in theirs["vatDistributions"]
    } == ours.by_rate
    assert (theirs["netAmount"], theirs["vatAmount"], theirs["grossAmount"]) == (
        ours.net,
        ours.vat,
        ours.gross,
    )


def assert_hogia_accepts_places(draft) -> None:
    for line in draft.lines:
        assert line.unit_price == line.unit_price.quantize(D("0.0001")), line
        assert line.quantity == line.quantity.quantize(D("0.001")), line
        assert all(isinstance(v, Decimal) for v in (line.quantity, line.unit_price, line.vat_percent))


# -- order totals ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(README_RATE_TOTALS))
def test_order_vat_totals_reproduce_the_readme_table(name):
    totals = order_vat_totals(ORDERS[name])

    assert totals.by_rate == as_expected(README_RATE_TOTALS[name])
    assert list(totals.by_rate) == sorted(totals.by_rate, reverse=True)
    assert totals.gross == D(README_ORDER_TOTALS[name])
    assert totals.net + totals.vat == totals.gross  # the README: this held for every order


def test_order_vat_totals_block_a_tax_that_is_not_swedish_vat():
    # The docs' old order: "State Tax" 7.5 %, no rate_percent, no % in its name.
    with pytest.raises(InvoiceBlocked) as blocked:
        order_vat_totals(OLD_ORDER)
    assert '"State Tax"' in blocked.value.reason and "rate id 75" in blocked.value.reason


def test_rates_of_an_older_store_come_from_the_tax_line_names_derived():
    order = copy.deepcopy(ORDERS["A1"])
    for tax_line in order["tax_lines"]:
        del tax_line["rate_percent"]  # as WooCommerce 3.x answers

    assert order_vat_totals(order).by_rate == as_expected(README_RATE_TOTALS["A1"])


def test_rates_without_percent_or_name_come_from_the_amounts_derived():
    order = copy.deepcopy(ORDERS["A1"])
    for tax_line in order["tax_lines"]:
        del tax_line["rate_percent"]
        tax_line["label"] = tax_line["rate_code"] = "Tax"

    # 25 %: (20.00 + 12.25) / (79.99 + 49.00) = 25.002 %; 12 %: 19.07 / 158.93 = 11.999 %; ...
    assert order_vat_totals(order).by_rate == as_expected(README_RATE_TOTALS["A1"])
    assert invoice_from_order(order).invoice_totals.gross == D("1088.24")


def test_an_unnamed_unused_zero_tax_line_is_ignored_derived():
    # A1 plus a tax line as an old store may keep one: no percent, no name, nothing taxed.
    order = copy.deepcopy(ORDERS["A1"])
    order["tax_lines"].append(
        {
            "id": 999,
            "rate_code": "TAX-1",
            "rate_id": 99,
            "label": "Tax",
            "compound": False,
            "tax_total": "0.00",
            "shipping_tax_total": "0.00",
        }
    )

    assert order_vat_totals(order).by_rate == as_expected(README_RATE_TOTALS["A1"])
    assert invoice_from_order(order).invoice_totals.gross == D("1088.24")


def test_a_stated_rate_that_is_not_swedish_blocks_derived():
    order = copy.deepcopy(ORDERS["B2"])
    order["tax_lines"][0]["rate_percent"] = D("7.5")

    with pytest.raises(InvoiceBlocked, match="7.5 %, which is not a Swedish VAT rate"):
        invoice_from_order(order)


def test_a_line_with_two_vat_rates_blocks_derived():
    order = copy.deepcopy(ORDERS["A1"])
    order["line_items"][0]["taxes"].append({"id": 1, "total": "5.00", "subtotal": "5.00"})

    with pytest.raises(InvoiceBlocked, match="Kaffe Mellanrost 500 g carries more than one VAT rate"):
        invoice_from_order(order)


# -- invoices ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INVOICEABLE)
def test_invoice_adds_up_to_the_order(name):
    order = ORDERS[name]
    draft = invoice_from_order(order)
    expected = as_expected(README_RATE_TOTALS[name])

    assert draft.invoice_totals.gross == D(order["total"])
    # Net per rate is exact; the rounding line (0 %) is left out of that comparison.
    goods = hogia_invoice_totals([line for line in draft.lines if line.kind != "rounding"])
    assert nets(goods) == {rate: net for rate, (net, _) in expected.items()}
    for rate, (_, vat) in expected.items():
        assert abs(goods.by_rate[rate][1] - vat) <= D("0.01")
    assert draft.rounding == EXPECTED_ROUNDING.get(name, D("0.00"))
    rounding_lines = [line for line in draft.lines if line.kind == "rounding"]
    assert [line.unit_price for line in rounding_lines] == ([draft.rounding] if draft.rounding else [])
    assert bool(draft.warnings) == bool(draft.rounding)
    assert draft.prices_include_vat is False
    assert draft.shop_prices_include_tax is order["prices_include_tax"]
    assert draft.customer_order_number == order["number"]
    assert draft.your_reference == f"WooCommerce order {order['number']}"
    assert draft.currency == "SEK"
    assert_hogia_accepts_places(draft)


@pytest.mark.parametrize("name", INVOICEABLE)
def test_predicted_totals_equal_the_sandbox_computation(name):
    assert_predictor_matches_sandbox(invoice_from_order(ORDERS[name]))


def test_a3_lines_discounts_fees_and_rounding():
    draft = invoice_from_order(
        ORDERS["A3"], articles=InvoiceArticles(freight="FRAKT", fee="AVG", discount="RAB")
    )
    got = [
        (line.kind, line.article_number, line.description, line.quantity, line.unit_price, line.vat_percent)
        for line in draft.lines
    ]

    assert got == [
        ("item", "SE-BRYGG-01", "Kaffebryggare Deluxe", 1, D("799.2000"), 25),
        ("item", "SE-KAFFE-500", "Kaffe Mellanrost 500 g", 5, D("79.4640"), 12),
        # subtotal - total per rate: 792.53 - 799.20 and 360.13 - 397.32
        ("discount", "RAB", "Rabatt (avdrag50)", 1, D("-6.67"), 25),
        ("discount", "RAB", "Rabatt (avdrag50)", 1, D("-37.19"), 12),
        ("shipping", "FRAKT", "Fraktavgift", 1, D("49.00"), 25),
        ("fee", "AVG", "Fakturaavgift", 1, D("29.00"), 25),
        ("fee", "AVG", "Expeditionsavgift (momsfri)", 1, D("15.00"), 0),
        ("rounding", None, "Öresavrundning", 1, D("-0.01"), 0),
    ]
    assert draft.lines[0].source_id == 24
    assert draft.invoice_totals.by_rate[D(12)] == (D("360.13"), D("43.22"))
    assert "12 %: shop 43.21, Hogia Smart 43.22" in draft.warnings[0]


def test_unit_prices_come_from_the_net_subtotal_not_the_float_price():
    draft = invoice_from_order(ORDERS["A1"])
    mug = next(line for line in draft.lines if line.article_number == "SE-MUGG-35")

    # 79.99 / 3 = 26.66333.. -> 26.6633, and 3 x 26.6633 = 79.9899 rounds back to 79.99.
    assert mug.unit_price == D("26.6633") and mug.quantity == 3
    assert [line.kind for line in draft.lines].count("line_rounding") == 0


def test_large_quantity_gets_a_line_rounding_line_derived():
    # A1 with the mugs scaled to 30 000 (net 799 900.00, VAT 199 975.00), totals adjusted to match.
    order = copy.deepcopy(ORDERS["A1"])
    mug = next(item for item in order["line_items"] if item["sku"] == "SE-MUGG-35")
    mug.update(
        quantity=30000,
        subtotal="799900.00",
        total="799900.00",
        subtotal_tax="199975.00",
        total_tax="199975.00",
        taxes=[{"id": 1, "total": "199975.00", "subtotal": "199975.00"}],
    )
    next(t for t in order["tax_lines"] if t["rate_id"] == 1)["tax_total"] = "199975.00"
    order["total"] = str(D(order["total"]) - D("99.99") + D("999875.00"))

    draft = invoice_from_order(order)

    # 799900.00 / 30000 = 26.66333.. -> 26.6633; 30000 x 26.6633 = 799899.00, 1.00 short.
    scaled = next(line for line in draft.lines if line.article_number == "SE-MUGG-35")
    assert scaled.unit_price == D("26.6633")
    fix = draft.lines[draft.lines.index(scaled) + 1]
    assert (fix.kind, fix.article_number, fix.quantity, fix.unit_price, fix.vat_percent) == (
        "line_rounding",
        None,
        1,
        D("1.00"),
        25,
    )
    assert fix.description == "Öresavrundning (Kaffemugg 35 cl)"
    assert draft.invoice_totals.by_rate[D(25)] == (D("799949.00"), D("199987.25"))
    assert draft.invoice_totals.gross == D(order["total"]) and draft.rounding == 0
    assert_predictor_matches_sandbox(draft)


def test_an_item_without_sku_blocks_with_a_reason_for_support():
    with pytest.raises(InvoiceBlocked) as blocked:
        invoice_from_order(ORDERS["A4"])

    assert blocked.value.reason == (
        "Tygkasse has no SKU (article number) in the shop: give the product a SKU that exists as an "
        "article in Hogia Smart, then retry."
    )
    assert blocked.value.diff == []


def test_the_old_order_is_blocked_for_every_reason_at_once():
    with pytest.raises(InvoiceBlocked) as blocked:
        invoice_from_order(OLD_ORDER)

    assert "Woo Single #1 has no SKU" in blocked.value.reason
    assert '"State Tax"' in blocked.value.reason


def test_a_tampered_order_is_blocked_with_the_per_rate_diff_derived():
    # A3 with the coffee maker's total raised by 5 kr and nothing else changed.
    order = copy.deepcopy(ORDERS["A3"])
    order["line_items"][0]["total"] = "797.53"

    with pytest.raises(InvoiceBlocked) as blocked:
        invoice_from_order(order)

    error = blocked.value
    assert error.diff[0] == {
        "rate": D(25),
        "order_net": D("875.53"),
        "order_vat": D("217.63"),
        "invoice_net": D("875.53"),
        "invoice_vat": D("218.88"),
    }
    assert error.diff[-1]["order_gross"] == D("1506.50")
    assert error.diff[-1]["invoice_gross"] == D("1512.76")  # 875.53 + 218.88 + 360.13 + 43.22 + 15.00
    assert error.as_text().splitlines()[1:] == [
        "VAT rate   order net   order VAT   invoice net   invoice VAT",
        "25 %          875.53      217.63        875.53        218.88",
        "12 %          360.13       43.21        360.13         43.22",
        "0 %            15.00        0.00         15.00          0.00",
        "total        1250.66      260.84       1250.66        262.10"
        "   (order total 1506.50, invoice 1512.76)",
    ]


def test_max_rounding_zero_blocks_even_an_ore():
    with pytest.raises(InvoiceBlocked) as blocked:
        invoice_from_order(ORDERS["A3"], max_rounding=D("0"))

    assert "12 %          360.13       43.21        360.13         43.22" in blocked.value.as_text()


def test_hogia_invoice_totals_round_half_up_per_rate_not_per_line():
    lines = [
        InvoiceLine(
            article_number="A",
            description="a",
            quantity=D(1),
            unit_price=D("0.02"),
            vat_percent=D(25),
            kind="item",
        )
        for _ in range(2)
    ]

    # Per line 0.005 -> 0.01 each (0.02); on the sum 0.04 x 25 % = 0.01.
    assert hogia_invoice_totals(lines).by_rate == {D(25): (D("0.04"), D("0.01"))}
    with pytest.raises(ValueError, match="more decimals"):
        hogia_invoice_totals(
            [
                InvoiceLine(
                    article_number="A",
                    description="a",
                    quantity=D(1),
                    unit_price=D("0.00001"),
                    vat_percent=D(25),
                    kind="item",
                )
            ]
        )


# -- credits -----------------------------------------------------------------------------------


def test_partial_refund_credits_one_mug():
    draft = credit_from_refund(ORDERS["A5"], refund("A5_refund_partial_single.json"))

    [line] = draft.lines
    assert (line.kind, line.article_number, line.quantity, line.unit_price, line.vat_percent) == (
        "item",
        "SE-MUGG-35",
        -1,
        D("26.6600"),
        25,
    )
    assert line.source_id == 37  # the order line the refund points at
    assert draft.invoice_totals.by_rate == {D(25): (D("-26.66"), D("-6.67"))}
    assert draft.invoice_totals.gross == D("-33.33") and draft.rounding == 0
    assert draft.is_credit and draft.customer_order_number == "43"
    assert draft.your_reference == "WooCommerce refund 44 of order 43"
    assert_predictor_matches_sandbox(draft)


def test_full_refund_credits_every_line_and_the_shipping():
    draft = credit_from_refund(ORDERS["B3"], refund("B3_guest_full_refund.refunds.json"))

    got = [(line.article_number, line.quantity, line.unit_price, line.vat_percent) for line in draft.lines]
    assert got == [
        ("SE-KAFFE-500", -2, D("89.0000"), 12),
        ("SE-PRESENT-500", -1, D("500.0000"), 0),
        ("fraktavg", -1, D("49.00"), 25),
    ]
    assert draft.order_totals.by_rate == {
        D(25): (D("-49.00"), D("-12.25")),
        D(12): (D("-178.00"), D("-21.36")),
        D(0): (D("-500.00"), D("0.00")),
    }
    assert draft.invoice_totals.gross == D("-760.61") and draft.rounding == 0
    assert all(line.quantity < 0 for line in draft.lines)
    assert_predictor_matches_sandbox(draft)


def test_full_refund_of_an_older_store_reads_rates_from_the_amounts_derived():
    # B3 and its refund with rate_percent and every percentage in the names removed.
    order, data = copy.deepcopy(ORDERS["B3"]), copy.deepcopy(refund("B3_guest_full_refund.refunds.json"))
    for tax_line in order["tax_lines"] + data["tax_lines"]:
        del tax_line["rate_percent"]
        tax_line["label"] = tax_line["rate_code"] = "Tax"

    draft = credit_from_refund(order, data)

    assert [line.vat_percent for line in draft.lines] == [12, 0, 25]
    assert draft.invoice_totals.gross == D("-760.61")


def test_refund_amount_an_ore_off_its_lines_gets_a_negative_quantity_rounding_line_derived():
    # A5's refund with the amount typed as 33.34 instead of the lines' 33.33.
    data = copy.deepcopy(refund("A5_refund_partial_single.json"))
    data["amount"] = "33.34"

    draft = credit_from_refund(ORDERS["A5"], data)

    rounding = draft.lines[-1]
    assert (rounding.kind, rounding.quantity, rounding.unit_price, rounding.vat_percent) == (
        "rounding",
        -1,
        D("0.01"),
        0,
    )
    assert draft.rounding == D("-0.01") and draft.invoice_totals.gross == D("-33.34")
    assert_predictor_matches_sandbox(draft)


def test_refund_by_amount_only_is_blocked_derived():
    # A5's refund with its lines dropped, as WooCommerce stores a refund of an amount.
    data = copy.deepcopy(refund("A5_refund_partial_single.json"))
    data["line_items"] = data["shipping_lines"] = data["fee_lines"] = data["tax_lines"] = []

    with pytest.raises(InvoiceBlocked) as blocked:
        credit_from_refund(ORDERS["A5"], data)

    assert blocked.value.reason == (
        "refund of 33.33 SEK has no lines, so its VAT cannot be split; book a credit invoice by hand "
        "in Hogia Smart or refund per line in WooCommerce"
    )


def test_refund_of_money_without_goods_is_a_price_reduction_derived():
    # A5's refund with quantity 0: 26.66 + VAT back on the mug line, no mug returned.
    data = copy.deepcopy(refund("A5_refund_partial_single.json"))
    data["line_items"][0]["quantity"] = 0

    draft = credit_from_refund(ORDERS["A5"], data)

    [line] = draft.lines
    assert (line.kind, line.article_number, line.description, line.quantity, line.unit_price) == (
        "discount",
        "rabatt",
        "Prisavdrag Kaffemugg 35 cl",
        -1,
        D("26.66"),
    )
    assert draft.invoice_totals.gross == D("-33.33")


# -- the request body --------------------------------------------------------------------------


def test_invoice_body_uses_the_contract_field_names():
    draft = invoice_from_order(ORDERS["A3"])

    invoice, lines = hogia_invoice_body(
        draft,
        customer_number="1002",
        invoice_date=date(2026, 11, 27),
        due_date=date(2026, 12, 27),
        result_unit="2",
    )

    assert invoice == {
        "customerNumber": "1002",
        "invoiceDate": "2026-11-27",
        "dueDate": "2026-12-27",
        "currency": {"code": "SEK"},
        "pricesIncludeVat": False,
        "yourReference": "WooCommerce order 41",
        "customerOrderNumber": "41",
        "useRounding": False,
        "dimensions": [{"type": "One", "number": "2"}],
    }
    assert lines[0] == {
        "articleNumber": "SE-BRYGG-01",
        "description": "Kaffebryggare Deluxe",
        "quantity": D(1),
        "unitPrice": D("799.2000"),
        "vatPercent": D(25),
        "discountPercent": D(0),
        "unitType": "st",
    }
    assert "articleNumber" not in lines[-1]  # the rounding line is a free line
    assert lines[-1]["unitPrice"] == D("-0.01") and lines[-1]["vatPercent"] == 0
    assert all(not isinstance(value, float) for line in lines for value in line.values())


def test_invoice_body_without_result_unit_has_no_dimensions():
    invoice, _ = hogia_invoice_body(
        invoice_from_order(ORDERS["B2"]),
        customer_number="1001",
        invoice_date=date(2026, 11, 27),
        due_date=date(2026, 12, 27),
        result_unit=None,
    )
    assert "dimensions" not in invoice and "creditedInvoiceId" not in invoice


def test_credit_body_names_the_credited_invoice():
    draft = credit_from_refund(ORDERS["A5"], refund("A5_refund_partial_single.json"))
    kwargs = {
        "customer_number": "1001",
        "invoice_date": date(2026, 11, 28),
        "due_date": date(2026, 12, 28),
        "result_unit": None,
    }

    invoice, lines = hogia_invoice_body(draft, credited_invoice_id="inv-guid", **kwargs)

    assert invoice["creditedInvoiceId"] == "inv-guid"
    assert lines[0]["quantity"] == -1 and lines[0]["unitPrice"] == D("26.6600")
    with pytest.raises(ValueError, match="credited_invoice_id"):
        hogia_invoice_body(draft, **kwargs)
    with pytest.raises(ValueError, match="only for a credit"):
        hogia_invoice_body(invoice_from_order(ORDERS["A5"]), credited_invoice_id="inv-guid", **kwargs)


def test_float_amounts_are_refused():
    order = json.loads((WC11 / "orders" / "B2_guest_variation_sale_fixedcart_onhold.json").read_text())
    order["total"] = float(order["total"])

    with pytest.raises(TypeError, match="parse_float=Decimal"):
        invoice_from_order(order)
