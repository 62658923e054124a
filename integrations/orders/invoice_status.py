"""What becomes of an order's invoice in Hogia Smart: its status and delivery, read from the feed.

Hogia Smart's invoices have a rowversion change feed like its articles
(``../shared/docs/hogia-smart-api.md``): status Draft, Delivered, Invoiced, Paid or Cancelled
and ``delivery: {carrier, trackingNumber, trackingUrl}``. Each customer's feed is read on a
schedule from a little before its watermark (changes appear after a lag, so the last
stretch is read twice; a status already recorded changes nothing), and for every invoice the
portal created the order records the status and delivery and says so on its timeline.

Where the customer has the order status flow on, each change also becomes a push to the
shop (``shop_status``). Credit invoices' statuses are recorded on their credit and the
timeline; they move nothing in the shop. Customers with the flow on are read every
``FEED_INTERVAL`` by the stager (so a change reaches the shop within a minute); the others
every 5 minutes by the schedule.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.models import Customer
from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.connections import hogia_client
from integrations.logcontext import log_context
from integrations.models import (
    FlowSettings,
    HogiaConnection,
    HogiaInvoiceFeed,
    OrderEvent,
    OrderTransfer,
    RefundCredit,
)
from integrations.orders import lifecycle
from integrations.orders.shop_status import status_change_record, status_flow_on
from integrations.taskqueue import task_enqueue

logger = logging.getLogger(__name__)

# rowVersions read again behind the watermark: a change committed late gets a number below
# one already read.
OVERLAP = 100
PAGE = 500
STATUS_WORDS = {
    "Draft": gettext_lazy("draft"),
    "Delivered": gettext_lazy("delivered"),
    "Invoiced": gettext_lazy("invoiced"),
    "Paid": gettext_lazy("paid"),
    "Cancelled": gettext_lazy("cancelled"),
}
DELIVERY_KEYS = ("carrier", "trackingNumber", "trackingUrl")
FLOW_ORDER = ["Draft", "Delivered", "Invoiced", "Paid"]
# How often the stager has the feed read for a customer whose shop gets the order status.
FEED_INTERVAL = timedelta(seconds=30)
READ_TASK = "integrations.tasks.read_invoice_statuses"


def invoice_statuses_read(*, customer: Customer, hogia: HogiaSmartClient | None = None) -> int:
    """Read the customer's invoice changes; returns how many orders' invoices changed status or delivery."""
    with log_context(customer=customer.pk):
        return _invoice_statuses_read(customer=customer, hogia=hogia)


def _invoice_statuses_read(*, customer: Customer, hogia: HogiaSmartClient | None) -> int:
    connection = HogiaConnection.objects.filter(customer=customer).first()
    if connection is None:
        return 0
    hogia = hogia or hogia_client(connection=connection)
    feed, _created = HogiaInvoiceFeed.objects.get_or_create(customer=customer)
    highest = feed.row_version
    changed = 0
    page: list[dict] = []
    to_shop = status_flow_on(customer_id=customer.pk)
    for invoice in hogia.invoices_changed_since(max(0, feed.row_version - OVERLAP), page_size=PAGE):
        highest = max(highest, int(invoice.get("rowVersion") or 0))
        page.append(invoice)
        if len(page) >= PAGE:
            changed += _record(customer, page, to_shop=to_shop)
            page = []
    changed += _record(customer, page, to_shop=to_shop)
    HogiaInvoiceFeed.objects.filter(pk=feed.pk).update(
        row_version=max(highest, feed.row_version), read_at=timezone.now()
    )
    return changed


def statuses_passed(previous: str, status: str) -> list[str]:
    """The statuses an invoice went through from ``previous`` to ``status``, in order, ``status`` last.

    The feed gives an invoice as it is now: one delivered and paid between two reads is read
    as paid. Its delivery happened all the same, and what the mapping does on delivery (complete
    the order, pass the tracking) must happen too. The order Draft → Delivered → Invoiced → Paid
    is inferred from the statuses' meaning (Hogia Smart documents none); Cancelled stands alone."""
    if status not in FLOW_ORDER:
        return [status]
    start = FLOW_ORDER.index(previous) + 1 if previous in FLOW_ORDER else 0
    end = FLOW_ORDER.index(status)
    return FLOW_ORDER[max(start, 1) : end] + [status] if start <= end else [status]


def _delivery(invoice: dict) -> dict:
    delivery = invoice.get("delivery")
    if not isinstance(delivery, dict):
        return {}
    return {key: str(delivery[key]) for key in DELIVERY_KEYS if delivery.get(key)}


def _invoiced_amount(invoice: dict) -> Decimal | None:
    """The invoice's total before Hogia Smart's rounding to whole kronor: what the order must not exceed."""
    try:
        return (
            Decimal(str(invoice["grossAmount"])) - Decimal(str(invoice.get("roundingAmount") or 0))
        ).quantize(Decimal("0.01"))
    except (KeyError, InvalidOperation, TypeError):
        return None


def _record(customer: Customer, invoices: list[dict], *, to_shop: bool) -> int:
    by_id = {str(invoice.get("id") or "").lower(): invoice for invoice in invoices if invoice.get("id")}
    if not by_id:
        return 0
    changed = 0
    for transfer in OrderTransfer.objects.filter(
        shop__customer=customer, hogia_invoice_id__in=list(by_id)
    ).only("pk", "hogia_invoice_id", "invoice_number", "invoice_status", "invoice_delivery"):
        invoice = by_id.pop(transfer.hogia_invoice_id.lower())
        status, delivery = str(invoice.get("status") or ""), _delivery(invoice)
        if status == transfer.invoice_status and delivery == transfer.invoice_delivery:
            continue
        OrderTransfer.objects.filter(pk=transfer.pk).update(
            invoice_status=status,
            invoice_delivery=delivery,
            invoice_status_at=timezone.now(),
            invoice_gross=_invoiced_amount(invoice),
        )
        lifecycle.timeline_add(
            transfer.pk,
            OrderEvent.Kind.INVOICE_STATUS,
            _status_message(number=transfer.invoice_number, status=status, delivery=delivery),
            status=status,
            delivery=delivery,
        )
        if to_shop:
            for passed in statuses_passed(transfer.invoice_status, status):
                status_change_record(transfer_id=transfer.pk, status=passed, delivery=delivery)
        changed += 1
    return changed + _record_credits(customer, by_id)


def _record_credits(customer: Customer, invoices: dict[str, dict]) -> int:
    """Credit invoices: their status on the credit and the order's timeline, nothing to the shop."""
    changed = 0
    credits = RefundCredit.objects.filter(
        transfer__shop__customer=customer, hogia_invoice_id__in=list(invoices)
    )
    for credit in credits.only("pk", "transfer_id", "hogia_invoice_id", "invoice_number", "invoice_status"):
        status = str(invoices[credit.hogia_invoice_id.lower()].get("status") or "")
        if status == credit.invoice_status:
            continue
        RefundCredit.objects.filter(pk=credit.pk).update(invoice_status=status)
        lifecycle.timeline_add(
            credit.transfer_id,
            OrderEvent.Kind.INVOICE_STATUS,
            _("Hogia Smart: credit invoice %(number)s is now %(status)s.")
            % {"number": credit.invoice_number, "status": STATUS_WORDS.get(status, status)},
            status=status,
            credit_invoice_id=credit.hogia_invoice_id,
        )
        changed += 1
    return changed


def _status_message(*, number: str, status: str, delivery: dict) -> str:
    message = _("Hogia Smart: invoice %(number)s is now %(status)s.") % {
        "number": number,
        "status": STATUS_WORDS.get(status, status),
    }
    if delivery.get("trackingNumber"):
        message += " " + _("Delivered with %(carrier)s, tracking number %(tracking)s.") % {
            "carrier": delivery.get("carrier") or "–",
            "tracking": delivery["trackingNumber"],
        }
    return message


def invoice_feeds_wake_due(*, now=None) -> list[int]:
    """Queue a read of the feed of every customer whose shops get the order status and whose feed
    was not read (or queued) within ``FEED_INTERVAL``; once per interval across stagers."""
    now = now or timezone.now()
    invoiced = OrderTransfer.objects.filter(
        shop__customer_id=OuterRef("customer_id"), hogia_invoice_id__gt=""
    )
    customer_ids = list(
        FlowSettings.objects.filter(
            Exists(invoiced),
            order_status_to_shop=True,
            customer__is_active=True,
            customer__hogia_connection__isnull=False,
        ).values_list("customer_id", flat=True)
    )
    queued = []
    for customer_id in customer_ids:
        feed, _created = HogiaInvoiceFeed.objects.get_or_create(customer_id=customer_id)
        if (
            HogiaInvoiceFeed.objects.filter(pk=feed.pk)
            .filter(Q(woken_at__isnull=True) | Q(woken_at__lte=now - FEED_INTERVAL))
            .update(woken_at=now)
        ):
            task_enqueue(READ_TASK, customer_id, group="invoice-status")
            queued.append(customer_id)
    return queued


def customers_with_invoices() -> list[int]:
    """Customers with a Hogia Smart connection and at least one invoice the portal made."""
    return list(
        Customer.objects.filter(
            is_active=True, hogia_connection__isnull=False, shops__order_transfers__hogia_invoice_id__gt=""
        )
        .distinct()
        .values_list("pk", flat=True)
    )
