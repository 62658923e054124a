"""An order mapped to its Hogia Smart invoice, with the customer's live plugin version or without.

One function for the real transfer and the dry run, so that a preview shows exactly what
would be posted:

1. the code plugins' ``before_map`` on the order;
2. the standard mapping (``invoice_from_order``, ``hogia_invoice_body``);
3. the version's rules (``integrations.plugins.rules``), in their order;
4. the code plugins' ``after_map``;
5. the VAT gate again: the lines must still come to what the standard invoice comes to, per
   VAT rate, to the öre. A rule that skips a priced line or changes an amount is blocked
   here with the order-against-invoice table, as the standard mapping is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.utils.translation import gettext as _

from integrations.mapping.invoices import (
    InvoiceArticles,
    InvoiceBlocked,
    InvoiceDraft,
    InvoiceLine,
    hogia_invoice_body,
    hogia_invoice_totals,
    invoice_from_order,
)
from integrations.models import PluginVersion
from integrations.plugins.code import code_plugins_load
from integrations.plugins.rules import LineOrigin, rules_apply

# A contact rule's field -> the new Hogia Smart contact's (``hogia_contact_body``).
CONTACT_BODY_KEYS = {
    "organisationNumber": "identificationNumber",
    "name": "companyName",
    "email": "email",
    "phone": "phone",
}


def contact_with_plugin(body: dict, contact: dict) -> dict:
    """A new contact's body with what the plugin's contact rules read from the order; only for a buyer
    the portal creates in Hogia Smart (an existing customer there is not changed)."""
    return {
        **body,
        **{CONTACT_BODY_KEYS[key]: value for key, value in contact.items() if key in CONTACT_BODY_KEYS},
    }


@dataclass
class Mapped:
    invoice: dict
    lines: list[dict]
    draft: InvoiceDraft
    version: int | None = None  # the plugin version that mapped it, None for the standard mapping
    fired: list[str] = field(default_factory=list)
    contact: dict = field(default_factory=dict)


def invoice_mapped(
    order: dict,
    *,
    version: PluginVersion | None,
    articles: InvoiceArticles,
    text_lines_without_sku: bool,
    customer_number: str,
    invoice_date: date,
    due_date: date,
    result_unit: str | None,
    reference: str,
) -> Mapped:
    """The invoice body for ``order``; raises ``InvoiceBlocked`` when it would not add up."""
    plugins = code_plugins_load(list(version.code_plugins)) if version is not None else []
    for plugin in plugins:
        order = plugin.before_map(order)
    draft = invoice_from_order(order, articles=articles, text_lines_without_sku=text_lines_without_sku)
    invoice, lines = hogia_invoice_body(
        draft,
        customer_number=customer_number,
        invoice_date=invoice_date,
        due_date=due_date,
        result_unit=result_unit,
    )
    invoice["yourReference"] = reference
    if version is None:
        return Mapped(invoice=invoice, lines=lines, draft=draft)
    applied = rules_apply(
        list(version.rules),
        order=order,
        invoice=invoice,
        lines=lines,
        origins=[LineOrigin(line.kind, line.source_id) for line in draft.lines],
    )
    invoice, lines = applied.invoice, applied.lines
    for plugin in plugins:
        invoice, lines = plugin.after_map(order, invoice, lines)
    _vat_gate(draft, lines, number=version.number)
    return Mapped(
        invoice=invoice,
        lines=lines,
        draft=draft,
        version=version.number,
        fired=list(applied.fired),
        contact=dict(applied.contact),
    )


def _vat_gate(draft: InvoiceDraft, lines: list[dict], *, number: int) -> None:
    priced = [
        InvoiceLine(
            article_number=line.get("articleNumber"),
            description=str(line.get("description") or ""),
            quantity=Decimal(line["quantity"]),
            unit_price=Decimal(line["unitPrice"]),
            vat_percent=Decimal(line["vatPercent"]),
            discount_percent=Decimal(line.get("discountPercent") or 0),
            kind="item",
        )
        for line in lines
        if line.get("quantity") is not None
    ]
    try:
        totals = hogia_invoice_totals(priced)
    except ValueError as exc:
        raise InvoiceBlocked(
            _("Plugin version %(number)s makes a line Hogia Smart would refuse: %(error)s")
            % {"number": number, "error": exc}
        ) from None
    if totals.by_rate != draft.invoice_totals.by_rate or totals.gross != draft.invoice_totals.gross:
        raise InvoiceBlocked(
            _(
                "Plugin version %(number)s changes the invoice's amounts: it would no longer add up "
                "to the order."
            )
            % {"number": number},
            order_totals=draft.order_totals,
            invoice_totals=totals,
        )
