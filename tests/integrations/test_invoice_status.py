"""What becomes of an order's invoice in Hogia Smart is read from its change feed (issue 11, first part)."""

import pytest
import requests

from integrations.models import HogiaInvoiceFeed, OrderEvent, OrderTransfer
from integrations.orders.invoice_status import invoice_statuses_read
from integrations.sandboxes import demo
from tests.integrations.helpers import connected_customer, front
from tests.integrations.test_order_transfer import transfer_all

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hogia_without_rate_limit")]
ORG = demo.HOGIA_ORGANIZATION_ID


def set_status(hogia_sandbox, invoice_id: str, status: str, delivery: dict | None = None) -> None:
    body = {"status": status, **({"delivery": delivery} if delivery else {})}
    requests.post(
        f"{hogia_sandbox.url}/_sandbox/{ORG}/customerinvoices/{invoice_id}/status", json=body, timeout=10
    ).raise_for_status()


def test_a_delivered_and_then_paid_invoice_is_recorded_on_its_order_once(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    front(shop).place("A1_guest_mixed_vat_processing")
    (transfer,) = transfer_all(shop)
    assert transfer.state == OrderTransfer.State.INVOICED
    assert invoice_statuses_read(customer=customer) == 1  # the invoice as created
    set_status(
        hogia_sandbox,
        transfer.hogia_invoice_id,
        "Delivered",
        {"carrier": "PostNord", "trackingNumber": "00370712345678901", "trackingUrl": "https://t.example/1"},
    )
    assert invoice_statuses_read(customer=customer) == 1
    transfer.refresh_from_db()
    assert transfer.invoice_status == "Delivered"
    assert transfer.invoice_delivery == {
        "carrier": "PostNord",
        "trackingNumber": "00370712345678901",
        "trackingUrl": "https://t.example/1",
    }
    event = transfer.events.filter(kind=OrderEvent.Kind.INVOICE_STATUS).last()
    assert (
        "is now delivered" in event.message and "PostNord, tracking number 00370712345678901" in event.message
    )
    # Read again (the overlap reads the last stretch twice): nothing new, no second line.
    assert invoice_statuses_read(customer=customer) == 0
    assert transfer.events.filter(kind=OrderEvent.Kind.INVOICE_STATUS).count() == 2
    set_status(hogia_sandbox, transfer.hogia_invoice_id, "Paid")
    assert invoice_statuses_read(customer=customer) == 1
    transfer.refresh_from_db()
    assert transfer.invoice_status == "Paid"
    assert HogiaInvoiceFeed.objects.get(customer=customer).row_version > 0


def test_invoices_the_portal_did_not_make_are_left_alone(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    assert invoice_statuses_read(customer=customer) == 0
    assert not OrderEvent.objects.filter(kind=OrderEvent.Kind.INVOICE_STATUS).exists()


def test_the_schedule_queues_one_read_per_customer_with_invoices(
    woo_sandbox, hogia_sandbox, monkeypatch, django_capture_on_commit_callbacks
):
    from integrations import tasks

    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    connected_customer(woo_sandbox, hogia_sandbox, name="Utan fakturor AB")
    front(shop).place("A1_guest_mixed_vat_processing")
    transfer_all(shop)
    queued = []
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda func, *args, **kwargs: queued.append((func, args))
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.read_all_invoice_statuses() == 1
    assert queued == [("integrations.tasks.read_invoice_statuses", (customer.pk,))]
    assert tasks.read_invoice_statuses(customer.pk) == "1 invoice(s) changed, 0 authorisation warning(s)"
