"""What becomes of an order's invoice in Hogia Smart: its status and delivery, read from the feed.

Hogia Smart's invoices have a rowversion change feed like its articles
(``../shared/docs/hogia-smart-api.md``): status Draft, Delivered, Invoiced, Paid or Cancelled
and ``delivery: {carrier, trackingNumber, trackingUrl}``. Each customer's feed is read on a
schedule from a little before its watermark (changes appear after a lag, so the last
stretch is read twice; a status already recorded changes nothing), and for every invoice the
portal created the order records the status and delivery and says so on its timeline.

This is what passing the status on to the shop (issue 11: the WooCommerce status, the
buyer's e-mail, tracking, capture) will act on; it writes nothing to the shop yet.
"""
from __future__ import annotations

import logging

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.models import Customer
from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.connections import hogia_client
from integrations.models import HogiaConnection, HogiaInvoiceFeed, OrderEvent, OrderTransfer
from integrations.orders import lifecycle

logger = logging.getLogger(__name__)

# rowVersions read again behind the watermark: a change committed late gets a number below
# one already read.
OVERLAP = 100
PAGE = 500
STATUS_WORDS = {"Draft": gettext_lazy("draft"), "Delivered": gettext_lazy("delivered"),
                "Invoiced": gettext_lazy("invoiced"), "Paid": gettext_lazy("paid"),
                "Cancelled": gettext_lazy("cancelled")}
DELIVERY_KEYS = ("carrier", "trackingNumber", "trackingUrl")


def invoice_statuses_read(*, customer: Customer, hogia: HogiaSmartClient | None = None) -> int:
    """Read the customer's invoice changes; returns how many orders' invoices changed status or delivery."""
    connection = HogiaConnection.objects.filter(customer=customer).first()
    if connection is None:
        return 0
    hogia = hogia or hogia_client(connection=connection)
    feed, _created = HogiaInvoiceFeed.objects.get_or_create(customer=customer)
    highest = feed.row_version
    changed = 0
    page: list[dict] = []
    for invoice in hogia.invoices_changed_since(max(0, feed.row_version - OVERLAP), page_size=PAGE):
        highest = max(highest, int(invoice.get("rowVersion") or 0))
        page.append(invoice)
        if len(page) >= PAGE:
            changed += _record(customer, page)
            page = []
    changed += _record(customer, page)
    HogiaInvoiceFeed.objects.filter(pk=feed.pk).update(row_version=max(highest, feed.row_version),
                                                        read_at=timezone.now())
    return changed


def _delivery(invoice: dict) -> dict:
    delivery = invoice.get("delivery")
    if not isinstance(delivery, dict):
        return {}
    return {key: str(delivery[key]) for key in DELIVERY_KEYS if delivery.get(key)}


def _record(customer: Customer, invoices: list[dict]) -> int:
    by_id = {str(invoice.get("id") or "").lower(): invoice for invoice in invoices if invoice.get("id")}
    if not by_id:
        return 0
    changed = 0
    for transfer in OrderTransfer.objects.filter(shop__customer=customer, hogia_invoice_id__in=list(by_id)).only(
            "pk", "hogia_invoice_id", "invoice_number", "invoice_status", "invoice_delivery"):
        invoice = by_id[transfer.hogia_invoice_id.lower()]
        status, delivery = str(invoice.get("status") or ""), _delivery(invoice)
        if status == transfer.invoice_status and delivery == transfer.invoice_delivery:
            continue
        OrderTransfer.objects.filter(pk=transfer.pk).update(invoice_status=status, invoice_delivery=delivery,
                                                            invoice_status_at=timezone.now())
        lifecycle.timeline_add(transfer.pk, OrderEvent.Kind.INVOICE_STATUS, _status_message(
            number=transfer.invoice_number, status=status, delivery=delivery), status=status, delivery=delivery)
        changed += 1
    return changed


def _status_message(*, number: str, status: str, delivery: dict) -> str:
    message = _("Hogia Smart: invoice %(number)s is now %(status)s.") % {
        "number": number, "status": STATUS_WORDS.get(status, status)}
    if delivery.get("trackingNumber"):
        message += " " + _("Delivered with %(carrier)s, tracking number %(tracking)s.") % {
            "carrier": delivery.get("carrier") or "–", "tracking": delivery["trackingNumber"]}
    return message


def customers_with_invoices() -> list[int]:
    """Customers with a Hogia Smart connection and at least one invoice the portal made."""
    return list(Customer.objects.filter(is_active=True, hogia_connection__isnull=False,
                                        shops__order_transfers__hogia_invoice_id__gt="")
                .distinct().values_list("pk", flat=True))
