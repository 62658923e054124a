"""A customer plugin's dry run: 500 orders, 20 rules, against the target of 5 s in all.

The orders are the real store's orders (the woocommerce-11 fixtures) again and again with
new ids and numbers, each with checkout-field meta (an org number on some, a PO reference on
others), passed to the dry run as stored orders, so that the figure is the dry run itself:
the standard mapping and the version's mapping of every order, the VAT gate, the diff, and
storing the result. Nothing may call Hogia Smart (the buyer's number is a placeholder) nor
the shop: every client request is counted (``requests_hogia``, ``requests_woo``, both 0).
Everything is made in a transaction that is rolled back.
"""

from __future__ import annotations

import json
import time
import uuid

from django.db import transaction
from django.utils import timezone

ORDERS = 500
FIXTURES = (
    "A1_guest_mixed_vat_processing",
    "A3_company_sale_fixedcart_fees_completed",
    "B1_company_customer_mixed_vat_fee_processing",
    "A2_customer_variations_coupon_fee_onhold",
)


class _Rollback(Exception):
    pass


def rules_twenty() -> list[dict]:
    """Twenty rules of the kinds customers ask for, every transform used at least once."""
    rules = [
        {
            "name": "PO reference",
            "source": "meta:_billing_po",
            "when": [{"source": "meta:_billing_po", "op": "present"}],
            "transforms": [
                {"strip": True},
                {"concat": ["{value}", " / ", "{invoice.yourReference}"]},
                {"truncate": 50},
            ],
            "target": "invoice.yourReference",
        },
        {
            "name": "Org number",
            "source": "meta:_billing_org_no",
            "transforms": [{"regex_extract": r"(\d{6})-?(\d{4})", "group": 0}],
            "target": "contact.organisationNumber",
        },
        {
            "name": "Our reference by payment",
            "source": "order.payment_method",
            "transforms": [
                {
                    "lookup": {"bacs": "Bank", "klarna_payments": "Klarna", "cod": "Postförskott"},
                    "default": "Webb",
                }
            ],
            "target": "invoice.ourReference",
        },
        {
            "name": "Order date text",
            "source": "order.date_created",
            "transforms": [{"date_format": "%Y-%m-%d"}],
            "target": "text_line",
        },
        {
            "name": "Total text",
            "source": "order.total",
            "transforms": [
                {"number_format": {"decimals": 2, "decimal_sep": ",", "thousands_sep": " "}},
                {"concat": ["Ordersumma ", "{value}", " kr"]},
            ],
            "target": "text_line",
        },
        {
            "name": "Gift wrap article",
            "scope": "fees",
            "when": [{"source": "line.name", "op": "matches", "value": "(?i)present"}],
            "transforms": [{"fixed": "PRESENT"}],
            "target": "line.articleNumber",
        },
        {
            "name": "Item text upper",
            "scope": "items",
            "source": "line.name",
            "transforms": [{"upper": True}],
            "target": "line.description",
        },
        {
            "name": "Unit by SKU",
            "scope": "items",
            "source": "line.sku",
            "transforms": [{"lookup": {"SE-MUGG-35": "st", "SE-KAFFE-500": "pkt"}}],
            "target": "line.unitType",
        },
        {
            "name": "Customer note",
            "source": "order.customer_note",
            "transforms": [{"when_empty": ""}],
            "target": "text_line",
        },
        {
            "name": "Company in order number",
            "source": "billing.company",
            "when": [{"source": "billing.company", "op": "present"}],
            "transforms": [
                {"regex_replace": r"\s+AB$", "with": ""},
                {"lower": True},
                {"concat": ["{order.number}", "-", "{value}"]},
                {"truncate": 30},
            ],
            "target": "invoice.customerOrderNumber",
        },
    ]
    # Ten more of the common kind: a checkout field to a text line when present.
    rules += [
        {
            "name": f"Field {n}",
            "source": f"meta:_field_{n}",
            "when": [{"source": f"meta:_field_{n}", "op": "present"}],
            "transforms": [{"concat": [f"Fält {n}: ", "{value}"]}],
            "target": "text_line",
        }
        for n in range(10)
    ]
    return rules


def _orders(count: int) -> list[dict]:
    from integrations.sandboxes.fixtures import WOOCOMMERCE_11

    bases = [json.loads((WOOCOMMERCE_11 / "orders" / f"{name}.json").read_text()) for name in FIXTURES]
    orders = []
    for n in range(count):
        order = dict(bases[n % len(bases)], id=100_000 + n, number=str(100_000 + n))
        meta = list(order.get("meta_data") or [])
        if n % 2:
            meta.append({"id": 1, "key": "_billing_po", "value": f" PO-{n:05d} "})
        if n % 3 == 0:
            meta.append({"id": 2, "key": "_billing_org_no", "value": "556677-8899"})
        meta += [{"id": 10 + k, "key": f"_field_{k}", "value": f"värde {n}"} for k in range(n % 4)]
        order["meta_data"] = meta
        orders.append(order)
    return orders


def run(*, say, orders: int = ORDERS) -> dict:
    from billing.models import Customer, Package, Subscription
    from integrations.clients.hogia_smart import HogiaSmartClient
    from integrations.clients.woocommerce import WooCommerceClient
    from integrations.models import Flow, FlowSettings, OrderTransfer, Shop
    from integrations.plugins.dry_run import plugin_dry_run
    from integrations.plugins.versions import plugin_version_create

    calls = {"hogia": 0, "woo": 0}
    originals = {HogiaSmartClient: HogiaSmartClient._request, WooCommerceClient: WooCommerceClient._request}

    def counting(client_class, key):
        original = originals[client_class]

        def counted(self, *args, **kwargs):
            calls[key] += 1
            return original(self, *args, **kwargs)

        return counted

    HogiaSmartClient._request = counting(HogiaSmartClient, "hogia")
    WooCommerceClient._request = counting(WooCommerceClient, "woo")
    figures: dict = {}
    try:
        with transaction.atomic():
            customer = Customer.objects.create(name="Benchmark Plugin AB")
            Subscription.objects.create(
                customer=customer,
                package=Package.objects.get(code="800"),
                start_date=timezone.localdate().replace(day=1),
            )
            FlowSettings.objects.create(customer=customer, flow=Flow.COMBO)
            shop = Shop.objects.create(
                customer=customer,
                name="Butik",
                url="https://butik.example/",
                consumer_key="ck",
                consumer_secret="cs",
                result_unit="1",
            )
            stored = _orders(orders)
            transfers = OrderTransfer.objects.bulk_create(
                OrderTransfer(
                    shop=shop,
                    woo_order_id=o["id"],
                    order_number=o["number"],
                    sequence_id=uuid.uuid4(),
                    quota_key=f"bench-{o['id']}",
                )
                for o in stored
            )
            rules = rules_twenty()
            version = plugin_version_create(
                customer=customer,
                rules=rules,
                code_plugins=["gift_wrap_article"],
                note="benchmark",
                by="benchmark",
            )
            say(
                f"dry run of version {version.number}: {len(rules)} rules and a code plugin over {orders} orders"
            )
            started = time.perf_counter()
            run_ = plugin_dry_run(version=version, by="benchmark", orders=list(zip(transfers, stored)))
            seconds = time.perf_counter() - started
            figures = {
                "orders": run_.orders,
                "rules": len(rules),
                "dry_run_seconds": round(seconds, 3),
                "per_order_ms": round(seconds * 1000 / max(1, run_.orders), 3),
                "changed": run_.changed,
                "blocked": run_.blocked,
                "requests_hogia": calls["hogia"],
                "requests_woo": calls["woo"],
            }
            raise _Rollback
    except _Rollback:
        pass
    finally:
        HogiaSmartClient._request = originals[HogiaSmartClient]
        WooCommerceClient._request = originals[WooCommerceClient]
    verdict = "OK" if figures["dry_run_seconds"] < 5 and figures["requests_hogia"] == 0 else "MISSED"
    say(
        f"dry_run_seconds = {figures['dry_run_seconds']} (target < 5), requests_hogia = "
        f"{figures['requests_hogia']} (target 0): {verdict}"
    )
    return figures
