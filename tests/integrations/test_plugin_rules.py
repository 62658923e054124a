"""Customer plugin rules on invoice bodies built by the real mapping from real WooCommerce 11 orders.

Orders whose helper says ``with_meta`` are fixture orders with one ``meta_data`` entry added
(as a checkout-field plugin writes it); the one body built by hand says so in its test.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal

import pytest

from integrations.mapping.invoices import hogia_invoice_body, invoice_from_order
from integrations.plugins.rules import Applied, LineOrigin, RuleError, rules_apply, rules_problems
from integrations.sandboxes.fixtures import WOOCOMMERCE_11

A1 = "A1_guest_mixed_vat_processing"  # 4 items, shipping, customer note
A2 = "A2_customer_variations_coupon_fee_onhold"  # variations with pa_storlek, coupon, a fee
A3 = "A3_company_sale_fixedcart_fees_completed"  # org number meta, two fees, discounts, rounding


def order_of(name: str) -> dict:
    return json.loads(
        (WOOCOMMERCE_11 / "orders" / f"{name}.json").read_text(encoding="utf-8"), parse_float=Decimal
    )


def with_meta(order: dict, key: str, value: object) -> dict:
    order = copy.deepcopy(order)
    order["meta_data"].append({"id": 9001, "key": key, "value": value})
    return order


def body_of(order: dict) -> tuple[dict, list[dict], list[LineOrigin]]:
    draft = invoice_from_order(order)
    invoice, lines = hogia_invoice_body(
        draft,
        customer_number="1001",
        invoice_date=date(2026, 12, 1),
        due_date=date(2026, 12, 31),
        result_unit="1",
    )
    return invoice, lines, [LineOrigin(line.kind, line.source_id) for line in draft.lines]


def apply(rules: list[dict], order: dict) -> Applied:
    invoice, lines, origins = body_of(order)
    return rules_apply(rules, order=order, invoice=invoice, lines=lines, origins=origins)


def rule(target: str = "invoice.ourReference", **fields) -> dict:
    return {"name": fields.pop("name", "Test rule"), "target": target, **fields}


def value_after(transforms: list[dict], value: object, *, order: dict | None = None) -> str:
    """What the transforms make of ``value``, read from an added meta entry, written to the note."""
    order = with_meta(order or order_of(A3), "_test_value", value)
    applied = apply([rule(source="meta:_test_value", transforms=transforms)], order)
    return applied.invoice.get("ourReference", "<unchanged>")


# -- transforms ----------------------------------------------------------------------------------


def test_fixed_gives_its_text_without_a_source():
    assert (
        apply([rule(transforms=[{"fixed": "Leverans fritt vårt lager"}])], order_of(A1)).invoice[
            "ourReference"
        ]
        == "Leverans fritt vårt lager"
    )


def test_lookup_maps_known_values_and_keeps_unknown_ones():
    table = {"lookup": {"invoice": "Faktura 30 dagar", "klarna": "Betald"}}
    assert (
        apply([rule(source="order.payment_method", transforms=[table])], order_of(A3)).invoice["ourReference"]
        == "Faktura 30 dagar"
    )
    assert value_after([table], "swish") == "swish"


def test_lookup_default_replaces_unknown_values():
    assert value_after([{"lookup": {"a": "b"}, "default": "okänt"}], "swish") == "okänt"
    assert value_after([{"lookup": {"a": "b"}, "default": "okänt"}], "a") == "b"


def test_concat_joins_texts_sources_and_the_current_value():
    applied = apply(
        [
            rule(
                source="billing.last_name",
                transforms=[{"concat": ["Order ", "{order.number}", " / {billing.company}", " ({value})"]}],
            )
        ],
        order_of(A3),
    )
    assert applied.invoice["ourReference"] == "Order 41 / Exempel Handel AB (Berg)"


def test_concat_reads_coupon_codes():
    applied = apply([rule(transforms=[{"concat": ["Kod: {coupon.codes}"]}])], order_of(A3))
    assert applied.invoice["ourReference"] == "Kod: avdrag50"


@pytest.mark.parametrize(
    "transform, value, expected",
    [
        ({"regex_extract": r"(\d{6})-?(\d{4})", "group": 0}, "Org nr 5566778899 AB", "5566778899"),
        ({"regex_extract": r"(\d{6})-?(\d{4})", "group": 2}, "556677-8899", "8899"),
        ({"regex_extract": r"PO-(\d+)"}, "see PO-123 and PO-456", "123"),  # group 1 when the pattern has one
        ({"regex_extract": r"\d+"}, "ref 77", "77"),  # else the whole match
        ({"regex_extract": r"(\d+)"}, "no digits", ""),
    ],
    ids=["group-0", "group-2", "default-group-1", "default-whole-match", "no-match-empty"],
)
def test_regex_extract_takes_a_group_of_the_first_match(transform, value, expected):
    if expected:
        assert value_after([transform], value) == expected
    else:  # "" leaves the note as it was: not written at all
        assert value_after([transform], value) == "<unchanged>"


def test_regex_replace_substitutes_with_groups():
    assert (
        value_after([{"regex_replace": r"(\d{6})(\d{4})", "with": r"\1-\2"}], "5566778899") == "556677-8899"
    )
    assert value_after([{"regex_replace": r"\s+"}], "a  b c") == "abc"


def test_date_format_reformats_a_woocommerce_datetime():
    applied = apply(
        [rule(source="order.date_created", transforms=[{"date_format": "%d/%m %Y"}])], order_of(A3)
    )
    assert applied.invoice["ourReference"] == "27/11 2026"
    assert value_after([{"date_format": "%Y%m%d"}], "2026-11-25") == "20261125"


def test_date_format_leaves_a_value_that_is_no_date():
    assert value_after([{"date_format": "%Y-%m-%d"}], "next tuesday") == "next tuesday"


@pytest.mark.parametrize(
    "options, value, expected",
    [
        ({"decimals": 2, "decimal_sep": ",", "thousands_sep": " "}, "1506.5", "1 506,50"),
        ({"decimals": 2}, "0.125", "0.13"),  # half up, not to even
        ({"decimals": 0}, "2.5", "3"),
        ({"decimals": 1, "decimal_sep": ","}, "-0.04", "0,0"),
        ({"decimals": 2, "thousands_sep": "."}, "1234567", "1.234.567.00"),
        ({"decimals": 2}, "about 12", "about 12"),  # not a number: unchanged
        ({"decimals": 2}, "1E+99", "1E+99"),  # too large to show: unchanged
    ],
    ids=["swedish", "half-up", "no-decimals", "no-minus-zero", "thousands", "not-a-number", "too-large"],
)
def test_number_format(options, value, expected):
    assert value_after([{"number_format": options}], value) == expected


def test_number_format_reads_a_decimal_amount():
    applied = apply(
        [rule(source="order.total", transforms=[{"number_format": {"decimal_sep": ","}}])], order_of(A3)
    )
    assert applied.invoice["ourReference"] == "1506,50"


@pytest.mark.parametrize(
    "transform, value, expected",
    [
        ({"upper": True}, "abc Åö", "ABC ÅÖ"),
        ({"lower": True}, "ABC ÅÖ", "abc åö"),
        ({"strip": True}, "  abc  ", "abc"),
        ({"upper": False}, "abc", "abc"),
        ({"truncate": 5}, "Kaffebryggare", "Kaffe"),
        ({"truncate": 50}, "kort", "kort"),
    ],
    ids=["upper", "lower", "strip", "upper-false", "truncate", "truncate-short"],
)
def test_text_transforms(transform, value, expected):
    assert value_after([transform], value) == expected


def test_when_empty_gives_a_fallback_for_a_missing_field():
    fallback = [{"when_empty": "Ingen referens"}]
    assert (
        apply([rule(source="meta:_billing_reference_missing", transforms=fallback)], order_of(A3)).invoice[
            "ourReference"
        ]
        == "Ingen referens"
    )
    assert (
        apply([rule(source="meta:_billing_reference", transforms=fallback)], order_of(A3)).invoice[
            "ourReference"
        ]
        == "Inköp 2026-117"
    )


def test_transforms_apply_in_order():
    assert (
        value_after(
            [{"strip": True}, {"upper": True}, {"truncate": 3}, {"concat": ["<{value}>"]}], "  abcdef "
        )
        == "<ABC>"
    )


def test_a_missing_source_reads_as_empty_text():
    # A3's customer_note is "", A3 has no such meta, billing has no such field; A1 has no meta at all.
    for source in ("order.customer_note", "meta:_nope", "billing.nope", "order.line_items"):
        assert value_after([{"concat": ["[{%s}]" % source]}], "x") == "[]"


def test_the_first_meta_entry_of_a_key_is_read():
    # WooCommerce's get_meta($key, true) answers with the first entry of a repeated key.
    order = with_meta(with_meta(order_of(A3), "_po", "first"), "_po", "second")
    assert apply([rule(source="meta:_po")], order).invoice["ourReference"] == "first"


# -- conditions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition, holds",
    [
        ({"source": "meta:_billing_org_number", "op": "present"}, True),
        ({"source": "meta:_billing_vat", "op": "present"}, False),
        ({"source": "order.customer_note", "op": "absent"}, True),
        ({"source": "billing.company", "op": "absent"}, False),
        ({"source": "order.payment_method", "op": "equals", "value": "invoice"}, True),
        ({"source": "order.payment_method", "op": "equals", "value": "Invoice"}, False),
        ({"source": "billing.country", "op": "not_equals", "value": "NO"}, True),
        ({"source": "billing.country", "op": "not_equals", "value": "SE"}, False),
        ({"source": "billing.company", "op": "contains", "value": "Handel"}, True),
        ({"source": "billing.company", "op": "contains", "value": "handel"}, False),
        ({"source": "billing.email", "op": "matches", "value": r"^faktura@"}, True),
        ({"source": "billing.email", "op": "matches", "value": r"^order@"}, False),
        ({"source": "billing.country", "op": "in", "value": ["NO", "SE", "DK"]}, True),
        ({"source": "billing.country", "op": "in", "value": ["NO", "DK"]}, False),
        ({"source": "coupon.codes", "op": "equals", "value": "avdrag50"}, True),
        ({"source": "order.prices_include_tax", "op": "equals", "value": "true"}, True),
    ],
    ids=lambda v: v if isinstance(v, bool) else f"{v['op']}-{v.get('value', v['source'])}",
)
def test_conditions(condition, holds):
    applied = apply([rule(when=[condition], transforms=[{"fixed": "ja"}])], order_of(A3))
    assert (applied.invoice.get("ourReference") == "ja") is holds
    assert applied.fired == (["Test rule"] if holds else [])


def test_all_conditions_must_hold():
    when = [
        {"source": "billing.country", "op": "equals", "value": "SE"},
        {"source": "meta:_billing_org_number", "op": "present"},
        {"source": "order.payment_method", "op": "in", "value": ["invoice"]},
    ]
    assert (
        apply([rule(when=when, transforms=[{"fixed": "ja"}])], order_of(A3)).invoice["ourReference"] == "ja"
    )
    when[2] = {"source": "order.payment_method", "op": "in", "value": ["klarna"]}
    assert "ourReference" not in apply([rule(when=when, transforms=[{"fixed": "ja"}])], order_of(A3)).invoice


# -- order of rules, empty results, inputs ------------------------------------------------------


def test_a_later_rule_reads_what_an_earlier_rule_wrote():
    rules = [
        rule("invoice.yourReference", name="Reference from checkout", source="meta:_billing_reference"),
        rule(
            "invoice.ourReference",
            name="Reference into the note",
            source="invoice.yourReference",
            transforms=[{"concat": ["Er referens: {value}"]}],
        ),
        rule(
            "invoice.yourReference",
            name="Reference upper",
            source="invoice.yourReference",
            transforms=[{"upper": True}],
        ),
    ]
    applied = apply(rules, order_of(A3))
    assert applied.invoice["yourReference"] == "INKÖP 2026-117"
    assert applied.invoice["ourReference"] == "Er referens: Inköp 2026-117"
    assert applied.fired == ["Reference from checkout", "Reference into the note", "Reference upper"]


def test_a_rule_that_changes_nothing_has_not_fired():
    rules = [rule("invoice.customerOrderNumber", name="Same number", source="order.number")]
    applied = apply(rules, order_of(A3))
    assert applied.invoice["customerOrderNumber"] == "41"
    assert applied.fired == []


def test_an_empty_result_leaves_every_target_unchanged():
    order = order_of(A3)
    invoice, lines, _origins = body_of(order)
    rules = [
        rule("invoice.yourReference", name="r1", source="meta:_billing_org_no"),
        rule("contact.organisationNumber", name="r2", source="meta:_billing_org_no"),
        rule("line.description", name="r3", scope="items", source="line.meta:pa_storlek"),
        rule("article.name", name="r4", scope="items", source="line.meta:pa_storlek"),
        rule("text_line", name="r5", source="order.customer_note"),
        rule("line.skip", name="r6", scope="fees", source="line.meta:skip"),
    ]
    applied = apply(rules, order)
    assert applied.invoice == invoice
    assert applied.lines == lines
    assert applied.contact == {} and applied.articles == {} and applied.skipped_lines == []
    assert applied.fired == []


def test_the_inputs_are_not_changed():
    order = with_meta(order_of(A3), "_billing_org_no", "556677-8899")
    invoice, lines, origins = body_of(order)
    before = copy.deepcopy((order, invoice, lines, origins))
    rules = [
        rule("invoice.yourReference", name="r1", source="meta:_billing_org_no"),
        rule(
            "line.description",
            name="r2",
            scope="lines",
            source="invoice_line.description",
            transforms=[{"upper": True}],
        ),
        rule(
            "line.skip",
            name="r3",
            scope="fees",
            when=[{"source": "line.total", "op": "equals", "value": "15.00"}],
            transforms=[{"fixed": "yes"}],
        ),
        rule("text_line", name="r4", transforms=[{"fixed": "Tack!"}]),
    ]
    applied = rules_apply(rules, order=order, invoice=invoice, lines=lines, origins=origins)
    assert applied.invoice is not invoice and applied.lines is not lines and applied.origins is not origins
    assert (order, invoice, lines, origins) == before
    assert applied.invoice["yourReference"] == "556677-8899"
    assert applied.lines[0]["description"] == "KAFFEBRYGGARE DELUXE"


def test_no_rules_give_the_body_back_unchanged():
    order = order_of(A2)
    invoice, lines, origins = body_of(order)
    applied = rules_apply([], order=order, invoice=invoice, lines=lines, origins=origins)
    assert (applied.invoice, applied.lines, applied.origins) == (invoice, lines, origins)
    assert applied.fired == [] and applied.skipped_lines == []


def test_rules_changed_since_the_last_call_apply_as_they_are_now():
    rules = [rule(transforms=[{"fixed": "a"}])]
    assert apply(rules, order_of(A1)).invoice["ourReference"] == "a"
    rules[0]["transforms"][0]["fixed"] = "b"
    assert apply(rules, order_of(A1)).invoice["ourReference"] == "b"
    rules[0]["transforms"][0]["fixed"] = 1
    with pytest.raises(RuleError):
        apply(rules, order_of(A1))


def test_your_reference_from_checkout_meta_on_a_real_order():
    order = with_meta(order_of(A1), "_billing_org_no", "Org.nr 556677-8899")
    rules = [
        {
            "name": "Org number to our reference",
            "scope": "order",
            "when": [{"source": "meta:_billing_org_no", "op": "present"}],
            "source": "meta:_billing_org_no",
            "transforms": [{"regex_extract": r"(\d{6})-?(\d{4})", "group": 0}],
            "target": "invoice.yourReference",
        }
    ]
    applied = apply(rules, order)
    assert applied.invoice["yourReference"] == "556677-8899"
    assert applied.fired == ["Org number to our reference"]
    # Without the checkout field the mapping's reference stays.
    assert apply(rules, order_of(A1)).invoice["yourReference"] == "WooCommerce order 39"


# -- line scopes --------------------------------------------------------------------------------


def test_item_description_from_the_line_meta():
    rules = [
        rule(
            "line.description",
            scope="items",
            when=[{"source": "line.meta:pa_storlek", "op": "present"}],
            source="line.meta:pa_storlek",
            transforms=[{"upper": True}, {"concat": ["{line.name} (storlek {value})"]}],
        )
    ]
    applied = apply(rules, order_of(A2))
    assert [line["description"] for line in applied.lines[:2]] == [
        "T-shirt Logga - M (storlek M)",
        "T-shirt Logga - L (storlek L)",
    ]
    assert applied.lines[2:] == body_of(order_of(A2))[1][2:]  # discount, shipping and fee untouched


def test_item_article_number_from_a_sku_lookup_and_an_earlier_rule():
    rules = [
        rule(
            "line.articleNumber",
            name="Our article numbers",
            scope="items",
            source="line.sku",
            transforms=[{"lookup": {"SE-BRYGG-01": "1001", "SE-KAFFE-500": "2002"}}],
        ),
        rule(
            "line.description",
            name="Number in the text",
            scope="items",
            source="invoice_line.articleNumber",
            transforms=[{"concat": ["{value} {invoice_line.description}"]}],
        ),
    ]
    applied = apply(rules, order_of(A3))
    assert [(line["articleNumber"], line["description"]) for line in applied.lines[:2]] == [
        ("1001", "1001 Kaffebryggare Deluxe"),
        ("2002", "2002 Kaffe Mellanrost 500 g"),
    ]
    assert applied.fired == ["Our article numbers", "Number in the text"]


def test_a_fee_goes_to_its_own_article_by_name():
    rules = [
        rule(
            "line.articleNumber",
            scope="fees",
            when=[{"source": "line.name", "op": "equals", "value": "Fakturaavgift"}],
            transforms=[{"fixed": "faktavg"}],
        )
    ]
    applied = apply(rules, order_of(A3))
    by_description = {line["description"]: line.get("articleNumber") for line in applied.lines}
    assert by_description["Fakturaavgift"] == "faktavg"
    assert by_description["Expeditionsavgift (momsfri)"] == "expavg"
    assert by_description["Fraktavgift"] == "fraktavg"


def test_line_scopes_never_touch_discount_and_rounding_lines():
    order = order_of(A3)
    _invoice, lines, origins = body_of(order)
    applied = apply([rule("line.description", scope="lines", transforms=[{"fixed": "x"}])], order)
    for before, after, origin in zip(lines, applied.lines, origins):
        expected = "x" if origin.kind in ("item", "fee", "shipping") else before["description"]
        assert after["description"] == expected, origin
    assert [o.kind for o in origins].count("discount") == 2 and origins[-1].kind == "rounding"


@pytest.mark.parametrize(
    "scope, kinds",
    [
        ("items", ["item", "item"]),
        ("fees", ["fee", "fee"]),
        ("shipping", ["shipping"]),
        ("lines", ["item", "item", "shipping", "fee", "fee"]),
        ("order", []),
    ],
)
def test_each_line_scope_runs_on_its_kinds(scope, kinds):
    target = "invoice.ourReference" if scope == "order" else "line.unitType"
    applied = apply([rule(target, scope=scope, transforms=[{"fixed": "tim"}])], order_of(A3))
    assert [o.kind for line, o in zip(applied.lines, applied.origins) if line["unitType"] == "tim"] == kinds


def test_line_skip_drops_the_line_and_keeps_origins_in_step():
    order = order_of(A3)
    _invoice, lines, origins = body_of(order)
    rules = [
        rule(
            "line.skip",
            scope="fees",
            source="line.name",
            transforms=[{"lookup": {"Expeditionsavgift (momsfri)": "yes"}, "default": "no"}],
        )
    ]
    applied = apply(rules, order)
    skipped = origins.index(LineOrigin("fee", 28))
    assert applied.skipped_lines == [skipped]
    assert applied.lines == lines[:skipped] + lines[skipped + 1 :]
    assert applied.origins == origins[:skipped] + origins[skipped + 1 :]
    assert applied.fired == ["Test rule"]


@pytest.mark.parametrize("value", ["0", "false", "No", " "])
def test_line_skip_keeps_the_line_for_a_no(value):
    applied = apply([rule("line.skip", scope="items", transforms=[{"fixed": value}])], order_of(A1))
    assert applied.skipped_lines == [] and len(applied.lines) == 5


def test_skipping_an_item_drops_its_ore_correction_line():
    # A body built by hand: no fixture order has a unit price that needs a correction line.
    invoice = {"customerNumber": "1001", "yourReference": "WooCommerce order 1"}
    lines = [
        {
            "articleNumber": "SE-1",
            "description": "Skruv",
            "quantity": Decimal(300),
            "unitPrice": Decimal("0.3333"),
            "vatPercent": Decimal(25),
        },
        {
            "description": "Öresavrundning (Skruv)",
            "quantity": Decimal(1),
            "unitPrice": Decimal("0.01"),
            "vatPercent": Decimal(25),
        },
        {
            "articleNumber": "SE-2",
            "description": "Mutter",
            "quantity": Decimal(1),
            "unitPrice": Decimal("5.00"),
            "vatPercent": Decimal(25),
        },
    ]
    origins = [LineOrigin("item", 1), LineOrigin("line_rounding", 1), LineOrigin("item", 2)]
    order = {"line_items": [{"id": 1, "sku": "SE-1"}, {"id": 2, "sku": "SE-2"}]}
    applied = rules_apply(
        [
            rule(
                "line.skip",
                scope="items",
                when=[{"source": "line.sku", "op": "equals", "value": "SE-1"}],
                transforms=[{"fixed": "1"}],
            )
        ],
        order=order,
        invoice=invoice,
        lines=lines,
        origins=origins,
    )
    assert applied.skipped_lines == [0, 1]
    assert applied.lines == [lines[2]] and applied.origins == [origins[2]]


def test_a_skipped_line_is_not_seen_by_later_rules():
    rules = [
        rule("line.skip", name="skip", scope="items", transforms=[{"fixed": "yes"}]),
        rule("line.description", name="rename", scope="items", transforms=[{"fixed": "x"}]),
    ]
    applied = apply(rules, order_of(A1))
    assert applied.fired == ["skip"]
    assert [o.kind for o in applied.origins] == ["shipping"]


# -- text lines, contact, articles --------------------------------------------------------------


def test_text_line_is_appended_without_an_amount():
    applied = apply(
        [
            rule(
                "text_line",
                source="order.customer_note",
                transforms=[{"concat": ["Kundens meddelande: {value}"]}],
            )
        ],
        order_of(A1),
    )
    assert applied.lines[-1] == {
        "description": "Kundens meddelande: Lämna paketet hos grannen om ingen är hemma."
    }
    assert applied.origins[-1] == LineOrigin("text", None)
    assert len(applied.lines) == len(applied.origins) == 6


def test_an_empty_text_line_is_not_appended():
    applied = apply([rule("text_line", source="order.customer_note")], order_of(A3))
    assert len(applied.lines) == 8 and applied.fired == []


def test_contact_fields_are_collected():
    order = with_meta(order_of(A3), "billing_phone_work", "08-123 45 67")
    rules = [
        rule("contact.organisationNumber", name="org", source="meta:_billing_org_number"),
        rule("contact.phone", name="phone", source="meta:billing_phone_work"),
        rule(
            "contact.name",
            name="name",
            source="billing.first_name",
            transforms=[{"concat": ["{value} {billing.last_name}"]}],
        ),
    ]
    applied = apply(rules, order)
    assert applied.contact == {
        "organisationNumber": "556677-8899",
        "phone": "08-123 45 67",
        "name": "Karin Berg",
    }
    assert applied.invoice == body_of(order)[0]


def test_article_fields_are_collected_per_sku():
    rules = [
        rule("article.name", scope="items", source="line.name", transforms=[{"truncate": 12}]),
        rule(
            "article.unit",
            name="unit",
            scope="items",
            when=[{"source": "line.sku", "op": "matches", "value": "^SE-KAFFE"}],
            transforms=[{"fixed": "pkt"}],
        ),
    ]
    applied = apply(rules, order_of(A3))
    assert applied.articles == {
        "SE-BRYGG-01": {"name": "Kaffebryggar"},
        "SE-KAFFE-500": {"name": "Kaffe Mellan", "unit": "pkt"},
    }


def test_no_article_fields_for_an_item_without_an_article_number():
    order = order_of("A4_guest_nosku_nostock_pending")  # "Tygkasse" has no SKU: posted as a text line
    draft = invoice_from_order(order, text_lines_without_sku=True)
    invoice, lines = hogia_invoice_body(
        draft,
        customer_number="1001",
        invoice_date=date(2026, 12, 1),
        due_date=date(2026, 12, 31),
        result_unit=None,
    )
    origins = [LineOrigin(line.kind, line.source_id) for line in draft.lines]
    applied = rules_apply(
        [rule("article.name", scope="items", source="line.name")],
        order=order,
        invoice=invoice,
        lines=lines,
        origins=origins,
    )
    assert applied.articles == {"SE-TE-100": {"name": "Te Earl Grey 100 g"}}


# -- checking definitions -----------------------------------------------------------------------

GOOD_RULES = [
    {
        "name": "Org number to our reference",
        "when": [{"source": "meta:_billing_org_no", "op": "present"}],
        "source": "meta:_billing_org_no",
        "transforms": [{"regex_extract": r"(\d{6})-?(\d{4})", "group": 0}],
        "target": "invoice.yourReference",
    },
    {
        "name": "Note",
        "scope": "order",
        "transforms": [{"concat": ["Order {order.number}"]}, {"truncate": 50}],
        "target": "invoice.ourReference",
        "comment": "asked for in ticket 12",
    },
    {
        "name": "Text",
        "source": "order.customer_note",
        "transforms": [{"when_empty": "-"}],
        "target": "text_line",
    },
    {
        "name": "Sizes",
        "scope": "items",
        "source": "line.meta:pa_storlek",
        "when": [
            {"source": "line.sku", "op": "in", "value": ["SE-TS-M"]},
            {"source": "line.name", "op": "matches", "value": "^T-shirt"},
        ],
        "transforms": [
            {"lookup": {"m": "M"}, "default": "?"},
            {"upper": True},
            {"lower": False},
            {"strip": True},
        ],
        "target": "line.description",
    },
    {
        "name": "Fee",
        "scope": "fees",
        "source": "line.name",
        "target": "line.articleNumber",
        "transforms": [{"regex_replace": "(a)", "with": r"\1"}],
    },
    {"name": "Skip", "scope": "shipping", "source": "line.method_id", "target": "line.skip"},
    {"name": "Unit", "scope": "lines", "source": "invoice_line.unitType", "target": "line.unitType"},
    {
        "name": "Date",
        "source": "order.date_created",
        "transforms": [{"date_format": "%Y-%m-%d"}],
        "target": "text_line",
    },
    {
        "name": "Amount",
        "source": "order.total",
        "transforms": [{"number_format": {"decimals": 0, "decimal_sep": ",", "thousands_sep": " "}}],
        "target": "text_line",
    },
    {"name": "Contact", "source": "billing.email", "target": "contact.email"},
    {"name": "Article", "scope": "items", "source": "line.name", "target": "article.description"},
    {"name": "Coupons", "source": "coupon.codes", "target": "invoice.ourReference"},
    {
        "name": "Reads the invoice",
        "source": "invoice.yourReference",
        "target": "invoice.customerOrderNumber",
        "when": [
            {"source": "shipping.country", "op": "not_equals", "value": "SE"},
            {"source": "billing.company", "op": "contains", "value": "AB"},
            {"source": "order.customer_note", "op": "absent"},
        ],
    },
]


def test_good_rules_have_no_problems_and_apply():
    assert rules_problems(GOOD_RULES) == []
    for name in (A1, A2, A3):
        applied = apply(GOOD_RULES, order_of(name))
        assert len(applied.lines) == len(applied.origins)


def _one(rules: list) -> str:
    problems = rules_problems(rules)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"target": "invoice.ourReference", "source": "order.number"}, "Rule 1 has no name"),
        ({"name": " ", "target": "invoice.ourReference", "source": "order.number"}, "Rule 1 has no name"),
        (rule(source="order.number", scope="basket"), 'unknown scope "basket"'),
        (rule(source="order.number", target=None), "has no target"),
        (rule("invoice.colour", source="order.number"), 'cannot set "invoice.colour"'),
        (rule("contact.address", source="order.number"), 'unknown target "contact.address"'),
        (rule("somewhere", source="order.number"), 'unknown target "somewhere"'),
        (rule("text_line", scope="items", source="line.name"), '"text_line" needs the scope order'),
        (rule("line.description", source="order.number"), '"line.description" needs the scope items, fees'),
        (rule("line.skip", source="order.number"), '"line.skip" needs the scope items, fees'),
        (rule("article.name", scope="fees", source="line.name"), '"article.name" needs the scope items'),
        (rule(source="line.name"), '"line.name" can only be read in the scope items'),
        (rule(source="invoice_line.description"), '"invoice_line.description" can only be read'),
        (rule(source="line.meta:x"), '"line.meta:x" can only be read'),
        (rule(source="order"), 'unknown source "order"'),
        (rule(source="order.a.b"), 'unknown source "order.a.b"'),
        (rule(source="meta:"), 'unknown source "meta:"'),
        (rule(source="customer.email"), 'unknown source "customer.email"'),
        (rule(source=7), 'unknown source "7"'),
        (rule(), "has no source"),
        (rule(transforms=[{"upper": True}]), "has no source"),
        (rule(source="order.number", transforms={"upper": True}), '"transforms" must be a list'),
        (rule(source="order.number", transforms=[{"shout": True}]), "transform 1 must name one kind"),
        (
            rule(source="order.number", transforms=[{"upper": True, "lower": True}]),
            "transform 1 must name one kind",
        ),
        (rule(source="order.number", transforms=["upper"]), "transform 1 must name one kind"),
        (rule(source="order.number", transforms=[{"upper": True, "group": 1}]), 'has no option "group"'),
        (rule(transforms=[{"fixed": 5}]), '"fixed" needs a text'),
        (rule(source="order.number", transforms=[{"lookup": ["a", "b"]}]), '"lookup" needs a table of texts'),
        (rule(source="order.number", transforms=[{"lookup": {"a": 1}}]), '"lookup" needs a table of texts'),
        (
            rule(source="order.number", transforms=[{"lookup": {"a": "b"}, "default": None}]),
            '"default" needs a text',
        ),
        (rule(transforms=[{"concat": "Order {order.number}"}]), '"concat" needs a list of texts'),
        (rule(transforms=[{"concat": ["Order {order.nr.x}"]}]), 'unknown source "order.nr.x"'),
        (rule(transforms=[{"concat": ["{line.name}"]}]), '"line.name" can only be read'),
        (
            rule(source="order.number", transforms=[{"regex_extract": "(unclosed"}]),
            "not a valid regular expression",
        ),
        (
            rule(source="order.number", transforms=[{"regex_extract": "(a)", "group": 2}]),
            '"group" must be a whole number',
        ),
        (
            rule(source="order.number", transforms=[{"regex_extract": "(a)", "group": "1"}]),
            '"group" must be a whole',
        ),
        (rule(source="order.number", transforms=[{"regex_replace": "a", "with": r"\1"}]), "replacement"),
        (
            rule(source="order.number", transforms=[{"regex_replace": "[", "with": "b"}]),
            "not a valid regular expression",
        ),
        (rule(source="order.number", transforms=[{"date_format": 5}]), '"date_format" needs a format'),
        (rule(source="order.number", transforms=[{"date_format": "YYYY-MM-DD"}]), "is not a date format"),
        (rule(source="order.number", transforms=[{"date_format": "%Y\ud800"}]), "is not a date format"),
        (rule(source="order.number", transforms=[{"number_format": {"decimals": 7}}]), "from 0 to 6"),
        (rule(source="order.number", transforms=[{"number_format": {"decimals": -1}}]), "from 0 to 6"),
        (
            rule(source="order.number", transforms=[{"number_format": {"decimals": 2, "sep": ","}}]),
            'no option "sep"',
        ),
        (rule(source="order.number", transforms=[{"number_format": {"decimal_sep": 1}}]), "must be texts"),
        (rule(source="order.number", transforms=[{"number_format": 2}]), '"number_format" needs options'),
        (rule(source="order.number", transforms=[{"upper": "yes"}]), '"upper" takes true or false'),
        (rule(source="order.number", transforms=[{"truncate": 0}]), '"truncate" needs a number'),
        (rule(source="order.number", transforms=[{"truncate": True}]), '"truncate" needs a number'),
        (rule(source="order.number", transforms=[{"when_empty": ["x"]}]), '"when_empty" needs a text'),
        (
            rule(source="order.number", when={"source": "order.number", "op": "present"}),
            '"when" must be a list',
        ),
        (rule(source="order.number", when=["present"]), "condition 1 must be an object"),
        (
            rule(source="order.number", when=[{"source": "order.number", "op": "is"}]),
            'unknown condition "is"',
        ),
        (
            rule(source="order.number", when=[{"source": "order.number", "op": "equals"}]),
            '"equals" needs a text',
        ),
        (
            rule(source="order.number", when=[{"source": "order.number", "op": "contains", "value": 5}]),
            '"contains" needs a text',
        ),
        (
            rule(source="order.number", when=[{"source": "order.number", "op": "in", "value": "SE"}]),
            '"in" needs a list of texts',
        ),
        (
            rule(source="order.number", when=[{"source": "order.number", "op": "present", "value": "x"}]),
            '"present" takes no value',
        ),
        (
            rule(source="order.number", when=[{"source": "order.number", "op": "matches", "value": "("}]),
            "not a valid regular expression",
        ),
        (
            rule(source="order.number", when=[{"source": "nowhere", "op": "present"}]),
            'unknown source "nowhere"',
        ),
        (
            rule(source="order.number", when=[{"source": "order.number", "op": "present", "negate": True}]),
            'unknown key "negate"',
        ),
        (rule(source="order.number", transfroms=[]), 'unknown key "transfroms"'),
    ],
)
def test_each_kind_of_bad_definition_is_a_problem(bad, words):
    problem = _one([bad])
    assert words in problem
    assert problem.startswith(("Rule 1", 'Rule "Test rule"'))


@pytest.mark.parametrize(
    "target",
    [
        "invoice.customerNumber",
        "invoice.currency",
        "invoice.invoiceDate",
        "invoice.dueDate",
        "invoice.useRounding",
        "invoice.pricesIncludeVat",
        "invoice.dimensions",
        "invoice.creditedInvoiceId",
        "line.unitPrice",
        "line.quantity",
        "line.vatPercent",
        "line.discountPercent",
    ],
)
def test_amounts_customer_dates_and_rounding_cannot_be_set(target):
    bad = rule(target, scope="lines" if target.startswith("line.") else "order", transforms=[{"fixed": "0"}])
    assert f'a rule cannot set "{target}"' in _one([bad])
    with pytest.raises(RuleError) as refused:
        apply([bad], order_of(A3))
    assert isinstance(refused.value, ValueError) and refused.value.problems == rules_problems([bad])


def test_the_rules_must_be_a_list_of_objects():
    assert rules_problems({"name": "x"}) == ["The rules must be a list."]
    assert rules_problems(None) == ["The rules must be a list."]
    assert "Rule 2 must be an object" in _one([GOOD_RULES[0], "invoice.note = x"])


def test_names_are_unique():
    twice = [rule(source="order.number"), rule("invoice.ourReference", source="order.id")]
    assert _one(twice) == 'Rule "Test rule": another rule has the same name.'


def test_at_most_200_rules():
    many = [rule(name=f"r{i}", source="order.number") for i in range(201)]
    assert _one(many) == "At most 200 rules are allowed; there are 201."
    assert rules_problems(many[:200]) == []


def test_every_problem_is_reported_and_names_its_rule():
    rules = [
        rule("invoice.customerNumber", name="Customer", source="nowhere", transforms=[{"truncate": 0}]),
        {"target": "invoice.ourReference", "source": "order.x", "scope": "x"},
    ]
    assert rules_problems(rules) == [
        'Rule "Customer": a rule cannot set "invoice.customerNumber"; amounts, currency, customer, dates and '
        "rounding stay as the mapping made them (allowed: invoice.yourReference, invoice.ourReference, "
        "invoice.customerOrderNumber).",
        'Rule "Customer": unknown source "nowhere".',
        'Rule "Customer": "truncate" needs a number of characters above 0.',
        "Rule 2 has no name.",
        'Rule 2: unknown scope "x" (order, items, fees, shipping or lines).',
    ]


def test_invalid_rules_are_refused_whole():
    rules = [
        GOOD_RULES[1],
        rule("invoice.ourReference", name="Broken", source="order.number", transforms=[{"truncate": 0}]),
    ]
    with pytest.raises(RuleError, match='Rule "Broken"'):
        apply(rules, order_of(A3))


def test_origins_must_match_the_lines():
    order = order_of(A1)
    invoice, lines, origins = body_of(order)
    with pytest.raises(ValueError, match="one origin per invoice line"):
        rules_apply([], order=order, invoice=invoice, lines=lines, origins=origins[:-1])
