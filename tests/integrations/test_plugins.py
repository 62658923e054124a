"""Customer plugins (issue 13): versions, the dry run against real orders, switching on and
rolling back, the VAT gate after the rules, the package gate, code plugins, and end to end
through both sandboxes: a checkout field's value on the next real invoice in Hogia Smart."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal

import pytest
import requests
from django.core.exceptions import ValidationError

from integrations.mapping.invoices import InvoiceArticles, InvoiceBlocked
from integrations.models import FlowSettings, OrderEvent, OrderTransfer, PluginVersion
from integrations.plugins.apply import invoice_mapped
from integrations.plugins.dry_run import plugin_dry_run
from integrations.plugins.versions import live_plugin_version, plugin_version_create, plugin_version_switch_on
from integrations.sandboxes.fixtures import WOOCOMMERCE_11
from tests.integrations.helpers import connected_customer, front
from tests.integrations.test_order_transfer import hogia, transfer_all

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hogia_without_rate_limit")]

# The checkout field "Er referens" of the real store (A3 carries it as _billing_reference).
REFERENCE_RULE = {
    "name": "Buyer's reference",
    "source": "meta:_billing_reference",
    "when": [{"source": "meta:_billing_reference", "op": "present"}],
    "transforms": [
        {"strip": True},
        {"concat": ["{value}", " / ", "{invoice.yourReference}"]},
        {"truncate": 60},
    ],
    "target": "invoice.yourReference",
}
SKIP_SHIPPING = {
    "name": "No freight line",
    "scope": "shipping",
    "transforms": [{"fixed": "yes"}],
    "target": "line.skip",
}


def order_request(fixture: str, **changes) -> dict:
    body = json.loads((WOOCOMMERCE_11 / "orders" / f"{fixture}.request.json").read_text())
    body.update(changes)
    return body


def place(shop, fixture: str = "A1_guest_mixed_vat_processing", reference: str | None = None) -> dict:
    meta = [{"key": "_billing_reference", "value": reference}] if reference else []
    return front(shop).call("POST", "orders", order_request(fixture, meta_data=meta))


def hogia_requests(hogia_sandbox) -> int:
    return requests.get(f"{hogia_sandbox.url}/_sandbox/stats", timeout=10).json()["requests"]


def test_a_checkout_field_into_the_invoice_reference_previewed_switched_on_and_on_the_next_invoice(
    woo_sandbox, hogia_sandbox
):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox, package_code="800")
    for n in range(20):  # the last 20 orders: half with the checkout field
        place(shop, reference=f"  Inköp 2026-{n:03d} " if n % 2 else None)
    invoiced = transfer_all(shop)
    assert [t.state for t in invoiced] == [OrderTransfer.State.INVOICED] * 20
    version = plugin_version_create(
        customer=customer, rules=[REFERENCE_RULE], code_plugins=[], note="PO number", by="support"
    )

    before = hogia_requests(hogia_sandbox)
    run = plugin_dry_run(version=version, by="support", limit=20)
    assert hogia_requests(hogia_sandbox) == before  # a dry run never calls Hogia Smart
    assert (run.orders, run.changed, run.blocked) == (20, 10, 0)
    changed = next(r for r in run.results if r["changed"])
    assert "-yourReference: Butik 1 order" in changed["diff"].replace("- ", "-")
    assert "+yourReference: Inköp 2026-" in changed["diff"].replace("+ ", "+")
    assert changed["fired"] == ["Buyer's reference"]
    # Nothing is live before the deliberate switch.
    assert live_plugin_version(settings=FlowSettings.objects.get(customer=customer)) is None

    plugin_version_switch_on(version=version, by="support")
    order = place(shop, reference="Inköp 2026-999")
    transfer = next(t for t in transfer_all(shop) if t.woo_order_id == order["id"])
    invoice = hogia(hogia_sandbox).invoice_get(transfer.hogia_invoice_id)
    assert invoice["yourReference"].startswith("Inköp 2026-999 / Butik 1 order")
    invoiced_event = transfer.events.get(kind=OrderEvent.Kind.INVOICED)
    assert "plugin version 1" in invoiced_event.message and invoiced_event.details["plugin_version"] == 1
    # Retried (the portal looks for the invoice it made, by the reference as posted): still one invoice.
    assert len(hogia(hogia_sandbox).invoices_find(customer_order_number=str(order["number"]))) == 1


def test_versions_are_new_rows_and_any_earlier_one_can_be_switched_on_again(woo_sandbox, hogia_sandbox):
    customer, _shops = connected_customer(woo_sandbox, hogia_sandbox, package_code="800")
    first = plugin_version_create(
        customer=customer, rules=[REFERENCE_RULE], code_plugins=[], note="", by="anna"
    )
    second = plugin_version_create(
        customer=customer,
        rules=[REFERENCE_RULE, SKIP_SHIPPING],
        code_plugins=["gift_wrap_article"],
        note="",
        by="erik",
    )
    assert (first.number, second.number, second.created_by) == (1, 2, "erik")
    plugin_version_switch_on(version=second, by="erik")
    assert FlowSettings.objects.get(customer=customer).live_plugin == second
    plugin_version_switch_on(version=first, by="anna")  # the rollback
    settings = FlowSettings.objects.get(customer=customer)
    assert settings.live_plugin == first and live_plugin_version(settings=settings) == first
    first.refresh_from_db()
    assert first.switched_on_by == "anna" and first.rules == [REFERENCE_RULE]
    assert PluginVersion.objects.filter(customer=customer).count() == 2


def test_a_rule_that_breaks_the_vat_balance_is_blocked_in_the_dry_run_and_in_the_transfer(
    woo_sandbox, hogia_sandbox
):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox, package_code="800")
    place(shop)
    transfer_all(shop)
    version = plugin_version_create(
        customer=customer, rules=[SKIP_SHIPPING], code_plugins=[], note="", by="support"
    )
    run = plugin_dry_run(version=version, by="support", limit=5)
    assert run.blocked == 1
    assert "changes the invoice's amounts" in run.results[0]["blocked"]
    assert "order total" in run.results[0]["blocked"]  # the order-against-invoice table
    plugin_version_switch_on(version=version, by="support")
    place(shop)
    transfers = transfer_all(shop)
    stopped = transfers[-1]
    assert stopped.state == OrderTransfer.State.NEEDS_ATTENTION
    assert "changes the invoice's amounts" in stopped.last_error


def test_below_package_800_no_version_is_made_nor_switched_on(woo_sandbox, hogia_sandbox):
    customer, _shops = connected_customer(woo_sandbox, hogia_sandbox, package_code="400")
    with pytest.raises(ValidationError) as refused:
        plugin_version_create(
            customer=customer, rules=[REFERENCE_RULE], code_plugins=[], note="", by="support"
        )
    assert "package 400" in str(refused.value) and "800" in str(refused.value)
    version = PluginVersion.objects.create(customer=customer, number=1, rules=[REFERENCE_RULE])  # from before
    with pytest.raises(ValidationError):
        plugin_version_switch_on(version=version, by="support")
    # A version left live after a downgrade is not used: the package no longer includes plugins.
    FlowSettings.objects.filter(customer=customer).update(live_plugin=version, plugins_enabled=True)
    assert live_plugin_version(settings=FlowSettings.objects.get(customer=customer)) is None


def test_unknown_code_plugins_and_bad_rules_are_refused_with_the_problems(woo_sandbox, hogia_sandbox):
    customer, _shops = connected_customer(woo_sandbox, hogia_sandbox, package_code="800")
    with pytest.raises(ValidationError) as refused:
        plugin_version_create(
            customer=customer,
            rules=[{"name": "x", "target": "invoice.customerNumber"}],
            code_plugins=["no_such_plugin"],
            note="",
            by="support",
        )
    text = " ".join(refused.value.messages)
    assert "no_such_plugin" in text and "invoice.customerNumber" in text


def test_the_gift_wrap_code_plugin_books_the_fee_on_its_own_article_and_keeps_the_amounts():
    order = json.loads(
        (WOOCOMMERCE_11 / "orders" / "A3_company_sale_fixedcart_fees_completed.json").read_text()
    )
    order = copy.deepcopy(order)
    order["fee_lines"][0]["name"] = "Presentinslagning"
    version = PluginVersion(number=3, rules=[], code_plugins=["gift_wrap_article"])
    kwargs = dict(
        articles=InvoiceArticles(),
        text_lines_without_sku=False,
        customer_number="1001",
        invoice_date=date(2026, 12, 1),
        due_date=date(2026, 12, 31),
        result_unit="1",
        reference="r",
    )
    standard = invoice_mapped(order, version=None, **kwargs)
    with_plugin = invoice_mapped(order, version=version, **kwargs)
    gift = [line for line in with_plugin.lines if line["description"] == "Presentinslagning"]
    assert [line["articleNumber"] for line in gift] == ["PRESENT"]
    assert [
        line["articleNumber"] for line in standard.lines if line["description"] == "Presentinslagning"
    ] == ["expavg"]
    assert sum(
        Decimal(x["quantity"]) * Decimal(x["unitPrice"]) for x in with_plugin.lines if "quantity" in x
    ) == sum(Decimal(x["quantity"]) * Decimal(x["unitPrice"]) for x in standard.lines if "quantity" in x)


def test_the_vat_gate_names_the_version_and_shows_the_table():
    order = json.loads((WOOCOMMERCE_11 / "orders" / "A1_guest_mixed_vat_processing.json").read_text())
    version = PluginVersion(number=7, rules=[SKIP_SHIPPING], code_plugins=[])
    with pytest.raises(InvoiceBlocked) as blocked:
        invoice_mapped(
            order,
            version=version,
            articles=InvoiceArticles(),
            text_lines_without_sku=False,
            customer_number="1",
            invoice_date=date(2026, 12, 1),
            due_date=date(2026, 12, 31),
            result_unit=None,
            reference="r",
        )
    assert "Plugin version 7" in blocked.value.reason and blocked.value.diff


def test_support_makes_a_version_dry_runs_it_switches_it_on_and_logs_time_from_the_admin(
    woo_sandbox, hogia_sandbox, admin_client
):
    from billing.models import ServiceHourEntry

    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox, package_code="800")
    place(shop, reference="Inköp 1")
    transfer_all(shop)
    page = admin_client.get("/admin/integrations/pluginversion/add/")
    assert page.status_code == 200 and "Org number to our reference" in page.content.decode()
    made = admin_client.post(
        "/admin/integrations/pluginversion/add/",
        {"customer": customer.pk, "rules": json.dumps([REFERENCE_RULE]), "note": "PO number"},
    )
    assert made.status_code == 302, (
        made.context_data["adminform"].form.errors if made.status_code == 200 else made
    )
    version = PluginVersion.objects.get(customer=customer)
    url = f"/admin/integrations/pluginversion/{version.pk}/"
    # Switching on before a dry run is refused.
    admin_client.post(url + "do/switch_on/")
    assert FlowSettings.objects.get(customer=customer).live_plugin is None
    admin_client.post(url + "do/dry_run/")
    page = admin_client.get(url + "change/").content.decode()
    assert "1 orders, 1 changed, 0 the VAT gate would block" in page and "Inköp 1" in page
    admin_client.post(url + "do/switch_on/")
    assert FlowSettings.objects.get(customer=customer).live_plugin == version
    admin_client.post(
        url + "time-spent/", {"hours": "1.5", "note": "the PO rule", "below_zero_reason": "agreed"}
    )
    entry = ServiceHourEntry.objects.get(
        customer=customer, category=ServiceHourEntry.Category.PLUGIN_DEVELOPMENT
    )
    assert entry.hours == Decimal("-1.50") and "Plugin version 1" in entry.note
    # A bad rule is refused on the form with the problem.
    refused = admin_client.post(
        "/admin/integrations/pluginversion/add/",
        {"customer": customer.pk, "rules": json.dumps([{"name": "x", "target": "invoice.customerNumber"}])},
    )
    assert refused.status_code == 200 and "invoice.customerNumber" in refused.content.decode()


def test_a_contact_rule_fills_in_the_new_hogia_customer(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox, package_code="800")
    version = plugin_version_create(
        customer=customer,
        rules=[{"name": "Work phone", "source": "meta:billing_phone_work", "target": "contact.phone"}],
        code_plugins=[],
        note="",
        by="support",
    )
    plugin_version_switch_on(version=version, by="support")
    body = order_request(
        "A1_guest_mixed_vat_processing", meta_data=[{"key": "billing_phone_work", "value": "08-123 45 67"}]
    )
    front(shop).call("POST", "orders", body)
    (transfer,) = transfer_all(shop)
    contact = hogia(hogia_sandbox).contacts_find(number=transfer.hogia_customer_number)[0]
    assert contact["phone"] == "08-123 45 67"
