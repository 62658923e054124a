"""Order status back to the shop (issue 11), end to end through both sandboxes over sockets:
Hogia Smart's invoice changes move the WooCommerce order, carry the tracking through the
shop's own tracking plugin, and make its payment plugin capture once."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from integrations.admin import StatusMappingForm
from integrations.clients.base import NO_RETRY
from integrations.clients.woocommerce import WooCommerceClient
from integrations.models import (
    FlowSettings,
    OrderEvent,
    OrderTransfer,
    PaymentCapture,
    StatusMapping,
    StatusPush,
    TrackingMethod,
)
from integrations.orders.invoice_status import invoice_statuses_read
from integrations.orders.shop_status import pushes_run
from integrations.rules import flow_settings_refusals
from integrations.sandboxes import demo
from integrations.sandboxes.fixtures import WOOCOMMERCE_11
from integrations.services import shop_connection_test
from tests.integrations.helpers import connected_customer, front, sandbox_fault
from tests.integrations.test_order_transfer import transfer_all

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hogia_without_rate_limit")]
ORG = demo.HOGIA_ORGANIZATION_ID
POSTNORD = {
    "carrier": "PostNord",
    "trackingNumber": "00370712345678901",
    "trackingUrl": "https://tracking.postnord.com/se/?id=00370712345678901",
}


# -- helpers: the shop owner, the accountant in Hogia Smart, the sandbox's records ---------------------


def hogia_sets(hogia_sandbox, transfer: OrderTransfer, status: str, delivery: dict | None = None) -> None:
    """What a person in Hogia Smart does: the invoice is delivered, paid, cancelled."""
    body = {"status": status, **({"delivery": delivery} if delivery else {})}
    requests.post(
        f"{hogia_sandbox.url}/_sandbox/{ORG}/customerinvoices/{transfer.hogia_invoice_id}/status",
        json=body,
        timeout=10,
    ).raise_for_status()


def store_control(shop, method: str, path: str, body=None):
    response = requests.request(method, f"{shop.home_url}_sandbox/{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def klarna_order(shop, fixture: str = "A1_guest_mixed_vat_processing", **extra) -> dict:
    """One of the real store's orders, paid with Klarna Payments (authorised: date_paid and the
    Klarna order id as transaction id, as the plugin leaves an order after checkout)."""
    body = json.loads((WOOCOMMERCE_11 / "orders" / f"{fixture}.request.json").read_text())
    body.update(
        payment_method="klarna_payments",
        payment_method_title="Klarna",
        set_paid=True,
        transaction_id=str(uuid.uuid4()),
        **extra,
    )
    return front(shop).call("POST", "orders", body)


def status_writes(shop, order_id: int) -> list[dict]:
    """The order's status changes made through the REST API after it was placed (its creation,
    pending → processing, is the first)."""
    return store_control(shop, "GET", f"status-writes?order_id={order_id}")["status_writes"][1:]


def captures(shop, order_id: int) -> list[dict]:
    record = store_control(shop, "GET", f"payments?order_id={order_id}")["payments"].get(str(order_id))
    return (record or {}).get("captures", [])


def emails(shop, order_id: int) -> list[str]:
    return [m["email"] for m in store_control(shop, "GET", f"emails?order_id={order_id}")["emails"]]


def invoiced(woo_sandbox, hogia_sandbox, *, plugins=(), package_code="400", **order_extra):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox, package_code=package_code)
    store_control(shop, "POST", "settings", {"plugins": ["klarna", "nexi", "svea", *plugins]})
    assert shop_connection_test(shop=shop).ok
    shop.refresh_from_db()
    order = klarna_order(shop, **order_extra)
    (transfer,) = transfer_all(shop)
    assert transfer.state == OrderTransfer.State.INVOICED
    FlowSettings.objects.filter(customer=customer).update(order_status_to_shop=True)
    invoice_statuses_read(customer=customer)  # the invoice as created (Draft): nothing to do
    return customer, shop, order, transfer


def hogia_change(customer, transfer, hogia_sandbox, status, delivery=None, *, woo=None) -> int:
    hogia_sets(hogia_sandbox, transfer, status, delivery)
    invoice_statuses_read(customer=customer)
    return pushes_run(transfer_id=transfer.pk, woo=woo)


def order_now(shop, order_id: int) -> dict:
    return front(shop).call("GET", f"orders/{order_id}")


def kinds(transfer) -> list[str]:
    return list(transfer.events.values_list("kind", flat=True))


# -- Delivered with tracking: completed, tracking through each method, captured once -----------------

TRACKING_SETUPS = [
    (["shipment_tracking"], {}, TrackingMethod.SHIPMENT_TRACKING),
    (["ast"], {}, TrackingMethod.AST),
    ([], {"fulfillments": True}, TrackingMethod.FULFILLMENTS),
    ([], {}, TrackingMethod.NOTE),
]


@pytest.mark.parametrize(
    "plugins, features, method", TRACKING_SETUPS, ids=[m for _p, _f, m in TRACKING_SETUPS]
)
def test_delivered_with_tracking_completes_the_order_passes_tracking_and_captures_once(
    woo_sandbox, hogia_sandbox, plugins, features, method
):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    store_control(
        shop, "POST", "settings", {"plugins": ["klarna", "nexi", "svea", *plugins], "features": features}
    )
    report = shop_connection_test(shop=shop)
    shop.refresh_from_db()
    assert shop.tracking_method == method  # detected from GET /wp-json/
    assert str(TrackingMethod(method).label) in report.summary
    order = klarna_order(shop)
    (transfer,) = transfer_all(shop)
    FlowSettings.objects.filter(customer=customer).update(order_status_to_shop=True)
    invoice_statuses_read(customer=customer)

    hogia_change(customer, transfer, hogia_sandbox, "Delivered", POSTNORD)

    now = order_now(shop, order["id"])
    assert now["status"] == "completed"
    writes = status_writes(shop, order["id"])
    assert [(w["to"], w["by"]) for w in writes if w["by"] == "rest"] == [("completed", "rest")]
    # The payment plugin captured once, inside the completion, and the portal read it from the order.
    assert len(captures(shop, order["id"])) == 1
    capture = PaymentCapture.objects.get(transfer=transfer)
    assert (capture.provider, capture.state) == ("klarna", PaymentCapture.State.CAPTURED)
    assert capture.reference and any(
        m["key"] == "_wc_klarna_capture_id" and m["value"] == capture.reference for m in now["meta_data"]
    )
    # The tracking, where this shop shows it.
    client = WooCommerceClient(
        base_url=shop.home_url, consumer_key=shop.consumer_key, consumer_secret=shop.consumer_secret
    )
    if method in (TrackingMethod.SHIPMENT_TRACKING, TrackingMethod.AST):
        namespace = "wc-ast/v3" if method == TrackingMethod.AST else "wc-shipment-tracking/v3"
        items = client.shipment_trackings(order["id"], namespace=namespace)
        assert [i["tracking_number"] for i in items] == [POSTNORD["trackingNumber"]]
    elif method == TrackingMethod.FULFILLMENTS:
        (fulfillment,) = client.fulfillments(order["id"])
        meta = {m["key"]: m["value"] for m in fulfillment["meta_data"]}
        assert (meta["_tracking_number"], meta["_tracking_url"]) == (
            POSTNORD["trackingNumber"],
            POSTNORD["trackingUrl"],
        )
        assert fulfillment["is_fulfilled"] is True
    else:
        notes = client.order_notes(order["id"], kind="customer")
        assert len(notes) == 1 and POSTNORD["trackingUrl"] in notes[0]["note"]
        assert emails(shop, order["id"]).count("customer_note") == 1
    # The buyer got WooCommerce's own "completed" e-mail, once.
    assert emails(shop, order["id"]).count("customer_completed_order") == 1
    # Everything is on the order's timeline.
    transfer.refresh_from_db()
    assert {OrderEvent.Kind.SHOP_STATUS, OrderEvent.Kind.CAPTURE} <= set(kinds(transfer))
    assert (OrderEvent.Kind.TRACKING in kinds(transfer)) == (method != TrackingMethod.NOTE)
    assert (OrderEvent.Kind.BUYER_EMAIL in kinds(transfer)) == (method == TrackingMethod.NOTE)
    assert StatusPush.objects.get(transfer=transfer, hogia_status="Delivered").state == StatusPush.State.DONE


def test_paid_sets_the_status_the_customer_mapped_a_custom_one_too(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    store_control(shop, "POST", "order-statuses", {"wc-betald": "Betald"})
    shop_connection_test(shop=shop)
    shop.refresh_from_db()
    assert "betald" in dict(shop.order_statuses)
    # A shop selling services: nothing is delivered, the paid invoice moves the order.
    StatusMapping.objects.create(
        customer=customer, hogia_status="Delivered", action=StatusMapping.Action.NOTHING
    )
    StatusMapping.objects.create(
        customer=customer,
        hogia_status="Paid",
        action=StatusMapping.Action.SET_STATUS,
        woo_status="betald",
        buyer_email=StatusMapping.BuyerEmail.NOTE,
    )
    order = klarna_order(shop)
    (transfer,) = transfer_all(shop)
    FlowSettings.objects.filter(customer=customer).update(order_status_to_shop=True)
    invoice_statuses_read(customer=customer)

    hogia_change(customer, transfer, hogia_sandbox, "Paid")

    assert order_now(shop, order["id"])["status"] == "betald"
    notes = WooCommerceClient(
        base_url=shop.home_url, consumer_key=shop.consumer_key, consumer_secret=shop.consumer_secret
    ).order_notes(order["id"], kind="customer")
    assert len(notes) == 1 and "received the payment" in notes[0]["note"]
    assert captures(shop, order["id"]) == []  # a custom status sets off no capture
    assert not PaymentCapture.objects.filter(transfer=transfer).exists()


def test_cancelled_after_completed_needs_attention_and_nothing_is_written(woo_sandbox, hogia_sandbox):
    customer, shop, order, transfer = invoiced(woo_sandbox, hogia_sandbox)
    hogia_change(customer, transfer, hogia_sandbox, "Delivered", POSTNORD)
    writes_before = status_writes(shop, order["id"])
    requests_before = requests.get(f"{woo_sandbox.url}/_sandbox/stats", timeout=10).json()["by_route"]

    hogia_change(customer, transfer, hogia_sandbox, "Cancelled")

    push = StatusPush.objects.get(transfer=transfer, hogia_status="Cancelled")
    assert push.state == StatusPush.State.NEEDS_ATTENTION
    assert "refund it in the shop" in push.attention and "needs no credit invoice" in push.attention
    assert order_now(shop, order["id"])["status"] == "completed"
    assert status_writes(shop, order["id"]) == writes_before
    after = requests.get(f"{woo_sandbox.url}/_sandbox/stats", timeout=10).json()["by_route"]
    writes = {
        k: v - requests_before.get(k, 0)
        for k, v in after.items()
        if not k.startswith("GET") and v != requests_before.get(k, 0)
    }
    assert writes == {}
    assert transfer.events.filter(kind=OrderEvent.Kind.NEEDS_ATTENTION).exists()
    # The shop's own cancellation would come back as a webhook: Hogia Smart cancelled the invoice
    # itself, so no credit invoice is queued for it.
    transfer.refresh_from_db()
    assert transfer.state == OrderTransfer.State.INVOICED


def test_a_persons_later_status_change_in_the_shop_is_not_overwritten(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    store_control(shop, "POST", "order-statuses", {"wc-skickad": "Skickad"})
    shop_connection_test(shop=shop)
    StatusMapping.objects.create(
        customer=customer,
        hogia_status="Delivered",
        action=StatusMapping.Action.SET_STATUS,
        woo_status="skickad",
    )
    StatusMapping.objects.create(
        customer=customer, hogia_status="Paid", action=StatusMapping.Action.SET_STATUS, woo_status="completed"
    )
    order = klarna_order(shop)
    (transfer,) = transfer_all(shop)
    FlowSettings.objects.filter(customer=customer).update(order_status_to_shop=True)
    invoice_statuses_read(customer=customer)
    hogia_change(customer, transfer, hogia_sandbox, "Delivered", POSTNORD)
    assert order_now(shop, order["id"])["status"] == "skickad"
    # Anna at the shop puts the order on hold (a customer called).
    store_control(shop, "POST", f"orders/{order['id']}/status", {"status": "on-hold", "by": "Anna"})

    hogia_change(customer, transfer, hogia_sandbox, "Paid")

    assert order_now(shop, order["id"])["status"] == "on-hold"
    assert [w["to"] for w in status_writes(shop, order["id"]) if w["by"] == "rest"] == ["skickad"]
    assert captures(shop, order["id"]) == []
    event = transfer.events.filter(kind=OrderEvent.Kind.SHOP_STATUS).last()
    assert "never overwritten" in event.message


def test_an_order_is_never_moved_back(woo_sandbox, hogia_sandbox):
    customer, shop, order, transfer = invoiced(woo_sandbox, hogia_sandbox)
    StatusMapping.objects.create(
        customer=customer,
        hogia_status="Paid",
        action=StatusMapping.Action.SET_STATUS,
        woo_status="processing",
    )
    hogia_change(customer, transfer, hogia_sandbox, "Delivered", POSTNORD)
    hogia_change(customer, transfer, hogia_sandbox, "Paid")
    assert order_now(shop, order["id"])["status"] == "completed"
    assert "never moved back" in transfer.events.filter(kind=OrderEvent.Kind.SHOP_STATUS).last().message


def test_the_same_hogia_event_seen_twice_writes_once(woo_sandbox, hogia_sandbox):
    customer, shop, order, transfer = invoiced(woo_sandbox, hogia_sandbox)
    hogia_sets(hogia_sandbox, transfer, "Delivered", POSTNORD)
    invoice_statuses_read(customer=customer)
    # The overlap reads the change again, and a second worker is woken for the same order.
    from integrations.orders.invoice_status import HogiaInvoiceFeed

    HogiaInvoiceFeed.objects.filter(customer=customer).update(row_version=0)
    invoice_statuses_read(customer=customer)
    assert StatusPush.objects.filter(transfer=transfer).exclude(hogia_status="Draft").count() == 1
    pushes_run(transfer_id=transfer.pk)
    pushes_run(transfer_id=transfer.pk)
    assert [w["to"] for w in status_writes(shop, order["id"]) if w["by"] == "rest"] == ["completed"]
    assert len(captures(shop, order["id"])) == 1


def test_an_invoice_lower_than_the_order_is_not_completed_so_nothing_is_over_captured(
    woo_sandbox, hogia_sandbox
):
    customer, shop, order, transfer = invoiced(woo_sandbox, hogia_sandbox)
    # The shop's order grew after it was invoiced (a fee added by hand): completing would capture more.
    front(shop).call(
        "PUT",
        f"orders/{order['id']}",
        {"fee_lines": [{"name": "Presentinslagning", "total": "49.00", "tax_status": "none"}]},
    )
    hogia_change(customer, transfer, hogia_sandbox, "Delivered", POSTNORD)
    push = StatusPush.objects.get(transfer=transfer, hogia_status="Delivered")
    assert push.state == StatusPush.State.NEEDS_ATTENTION and "cannot capture a part" in push.attention
    assert order_now(shop, order["id"])["status"] == "processing"
    assert captures(shop, order["id"]) == []


def test_a_failed_capture_goes_to_support_with_the_plugins_words_and_retry_captures_once(
    woo_sandbox, hogia_sandbox
):
    from integrations.orders.capture import capture_retry

    customer, shop, order, transfer = invoiced(woo_sandbox, hogia_sandbox)
    store_control(shop, "POST", f"orders/{order['id']}/payment", {"scenario": "api_error"})
    hogia_change(customer, transfer, hogia_sandbox, "Delivered", POSTNORD)
    capture = PaymentCapture.objects.get(transfer=transfer)
    assert capture.state == PaymentCapture.State.FAILED
    assert capture.plugin_words.startswith("Could not capture Klarna order")
    assert order_now(shop, order["id"])["status"] == "on-hold"
    assert captures(shop, order["id"]) == []
    # Klarna's side is sorted out; support retries from the admin: captured once.
    store_control(shop, "POST", f"orders/{order['id']}/payment", {"scenario": "ok"})
    capture_retry(capture=capture, by="support")
    capture.refresh_from_db()
    assert capture.state == PaymentCapture.State.CAPTURED
    assert len(captures(shop, order["id"])) == 1
    capture_retry(capture=capture, by="support")  # a second press sends nothing
    assert len(captures(shop, order["id"])) == 1


def test_a_capture_pending_review_is_looked_at_again_and_not_captured_twice(woo_sandbox, hogia_sandbox):
    from integrations.orders.capture import capture_check

    customer, shop, order, transfer = invoiced(woo_sandbox, hogia_sandbox)
    store_control(shop, "POST", f"orders/{order['id']}/payment", {"scenario": "pending_review"})
    hogia_change(customer, transfer, hogia_sandbox, "Delivered", POSTNORD)
    capture = PaymentCapture.objects.get(transfer=transfer)
    assert capture.state == PaymentCapture.State.PENDING and "pending review" in capture.plugin_words
    assert capture.next_check_at is not None
    assert capture_check(transfer_id=transfer.pk) == PaymentCapture.State.PENDING
    # The shop owner completes it again once Klarna accepted: the portal sees the capture.
    store_control(
        shop, "POST", f"orders/{order['id']}/payment", {"scenario": "ok", "fraud_status": "ACCEPTED"}
    )
    store_control(shop, "POST", f"orders/{order['id']}/status", {"status": "completed", "by": "Anna"})
    assert capture_check(transfer_id=transfer.pk) == PaymentCapture.State.CAPTURED
    assert len(captures(shop, order["id"])) == 1


def test_package_100_refuses_the_order_status_mapping_with_the_package_name(woo_sandbox, hogia_sandbox):
    customer, _shops = connected_customer(woo_sandbox, hogia_sandbox, package_code="100", flow=2)
    form = StatusMappingForm(
        data={
            "hogia_status": "Delivered",
            "action": "set_status",
            "woo_status": "completed",
            "buyer_email": "shop",
            "pass_tracking": "on",
        },
        instance=StatusMapping(customer=customer),
    )
    assert not form.is_valid()
    assert "package 100" in str(form.errors) and "200" in str(form.errors)
    settings = FlowSettings.objects.get(customer=customer)
    settings.order_status_to_shop = True
    assert "package 100" in " ".join(flow_settings_refusals(settings=settings).messages())
    # And with the switch left on from a larger package, nothing is pushed.
    FlowSettings.objects.filter(customer=customer).update(order_status_to_shop=True)
    from integrations.orders.shop_status import status_flow_on

    assert status_flow_on(customer_id=customer.pk) is False


# -- faults: the shop answers 500 or times out during the pushes ----------------------------------


def test_every_change_arrives_exactly_once_through_500s_and_timeouts(woo_sandbox, hogia_sandbox):
    from integrations.orders.shop_status import StatusPush as Push

    customer, shop, order, transfer = invoiced(woo_sandbox, hogia_sandbox, plugins=("shipment_tracking",))
    shop.tracking_method = TrackingMethod.SHIPMENT_TRACKING
    shop.save(update_fields=["tracking_method"])
    # A client that gives up after 1 s and never retries by itself: every failure reaches the push.
    woo = WooCommerceClient(
        base_url=shop.home_url,
        consumer_key=shop.consumer_key,
        consumer_secret=shop.consumer_secret,
        timeout=(2.0, 1.0),
        retry=NO_RETRY,
    )

    def due_now():
        Push.objects.filter(transfer=transfer, state=Push.State.PENDING).update(next_attempt_at=None)

    sandbox_fault(woo_sandbox, mode="status", status=500, count=1)  # the first read of the order
    hogia_change(customer, transfer, hogia_sandbox, "Delivered", POSTNORD, woo=woo)
    push = Push.objects.get(transfer=transfer, hogia_status="Delivered")
    assert (push.state, push.attempts) == (Push.State.PENDING, 1) and "500" in push.last_error

    # The completion is carried out, but its answer never arrives (the shop took too long).
    sandbox_fault(woo_sandbox, mode="delay", seconds=0, count=1)
    sandbox_fault(woo_sandbox, mode="delay", seconds=2.5, count=1)
    due_now()
    assert pushes_run(transfer_id=transfer.pk, woo=woo) == 0
    push.refresh_from_db()
    assert push.attempts == 2

    # Next: the status is seen done (not written again: the capture it set off is read), and the
    # tracking is saved but its answer is lost too (the order, its notes, the trackings, then the POST).
    import time

    time.sleep(2)  # the delayed completion has been served
    assert order_now(shop, order["id"])["status"] == "completed"
    sandbox_fault(woo_sandbox, mode="delay", seconds=0, count=3)
    sandbox_fault(woo_sandbox, mode="delay", seconds=2.5, count=1)
    due_now()
    assert pushes_run(transfer_id=transfer.pk, woo=woo) == 0
    time.sleep(2)
    sandbox_fault(woo_sandbox, mode="status", status=500, count=1)
    due_now()
    assert pushes_run(transfer_id=transfer.pk, woo=woo) == 0
    due_now()
    assert pushes_run(transfer_id=transfer.pk, woo=woo) == 1
    push.refresh_from_db()
    assert (push.state, push.attempts) == (Push.State.DONE, 4)

    assert [w["to"] for w in status_writes(shop, order["id"]) if w["by"] == "rest"] == ["completed"]
    client = WooCommerceClient(
        base_url=shop.home_url, consumer_key=shop.consumer_key, consumer_secret=shop.consumer_secret
    )
    assert [
        i["tracking_number"]
        for i in client.shipment_trackings(order["id"], namespace="wc-shipment-tracking/v3")
    ] == [POSTNORD["trackingNumber"]]
    assert len(captures(shop, order["id"])) == 1
    assert PaymentCapture.objects.get(transfer=transfer).state == PaymentCapture.State.CAPTURED


def test_delivered_and_paid_between_two_reads_still_completes_the_order_with_tracking(
    woo_sandbox, hogia_sandbox
):
    customer, shop, order, transfer = invoiced(woo_sandbox, hogia_sandbox)
    hogia_sets(hogia_sandbox, transfer, "Delivered", POSTNORD)
    hogia_change(customer, transfer, hogia_sandbox, "Paid")  # the feed says only "Paid" now
    assert order_now(shop, order["id"])["status"] == "completed"
    assert list(
        StatusPush.objects.filter(transfer=transfer).order_by("id").values_list("hogia_status", "state")
    ) == [("Draft", "skipped"), ("Delivered", "done"), ("Invoiced", "skipped"), ("Paid", "skipped")]
    assert len(captures(shop, order["id"])) == 1
    notes = WooCommerceClient(
        base_url=shop.home_url, consumer_key=shop.consumer_key, consumer_secret=shop.consumer_secret
    ).order_notes(order["id"], kind="customer")
    assert POSTNORD["trackingUrl"] in notes[0]["note"]  # the demo store has no tracking plugin: a note


def test_support_and_the_customer_see_the_status_tracking_and_capture(
    woo_sandbox, hogia_sandbox, admin_client, client
):
    from django.contrib.auth import get_user_model

    customer, shop, order, transfer = invoiced(woo_sandbox, hogia_sandbox)
    hogia_change(customer, transfer, hogia_sandbox, "Delivered", POSTNORD)
    page = admin_client.get(f"/admin/integrations/ordertransfer/{transfer.pk}/change/").content.decode()
    assert "Payment captured by Klarna" in page and "Status in the shop set to Completed" in page
    # Captured and written: nothing to send again, so no button offers it.
    assert "Retry the payment capture" not in page and "Send the invoice status to the shop again" not in page
    assert "status, note to the buyer" in page  # the push's steps, in words
    for url in (
        "/admin/integrations/statuspush/",
        "/admin/integrations/paymentcapture/",
        f"/admin/billing/customer/{customer.pk}/change/",
        "/admin/",
    ):
        assert admin_client.get(url).status_code == 200, url
    assert (
        "Order status to the shop"
        in admin_client.get(f"/admin/billing/customer/{customer.pk}/change/").content.decode()
    )
    user = get_user_model().objects.create_user("kund", password="kund-pw-123456")
    customer.users.add(user)
    client.force_login(user)
    mine = client.get(f"/account/orders/{transfer.pk}/").content.decode()
    assert "captured by Klarna" in mine and "Delivered" in mine and POSTNORD["trackingNumber"] in mine


def test_a_credit_invoices_status_is_recorded_and_moves_nothing_in_the_shop(woo_sandbox, hogia_sandbox):
    from tests.integrations.test_order_refunds import _refund_mug

    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    FlowSettings.objects.filter(customer=customer).update(order_status_to_shop=True)
    order = front(shop).place("A5_rounding_partial_refund")
    (transfer,) = transfer_all(shop)
    _refund_mug(front(shop), order)
    (transfer,) = transfer_all(shop)
    (credit,) = transfer.credits.all()
    invoice_statuses_read(customer=customer)
    before = status_writes(shop, order["id"])
    requests.post(
        f"{hogia_sandbox.url}/_sandbox/{ORG}/customerinvoices/{credit.hogia_invoice_id}/status",
        json={"status": "Paid"},
        timeout=10,
    ).raise_for_status()
    invoice_statuses_read(customer=customer)
    credit.refresh_from_db()
    assert credit.invoice_status == "Paid"
    assert transfer.events.filter(
        kind=OrderEvent.Kind.INVOICE_STATUS,
        message__contains=f"credit invoice {credit.invoice_number} is now paid",
    ).exists()
    pushes_run(transfer_id=transfer.pk)
    assert status_writes(shop, order["id"]) == before


def test_a_lost_answer_after_an_earlier_write_is_not_taken_for_a_persons_change(woo_sandbox, hogia_sandbox):
    from integrations.orders.shop_status import StatusPush as Push

    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    store_control(shop, "POST", "order-statuses", {"wc-skickad": "Skickad"})
    shop_connection_test(shop=shop)
    StatusMapping.objects.create(
        customer=customer,
        hogia_status="Delivered",
        action=StatusMapping.Action.SET_STATUS,
        woo_status="skickad",
    )
    StatusMapping.objects.create(
        customer=customer, hogia_status="Paid", action=StatusMapping.Action.SET_STATUS, woo_status="completed"
    )
    order = klarna_order(shop)
    (transfer,) = transfer_all(shop)
    FlowSettings.objects.filter(customer=customer).update(order_status_to_shop=True)
    invoice_statuses_read(customer=customer)
    hogia_change(customer, transfer, hogia_sandbox, "Delivered", POSTNORD)
    woo = WooCommerceClient(
        base_url=shop.home_url,
        consumer_key=shop.consumer_key,
        consumer_secret=shop.consumer_secret,
        timeout=(2.0, 1.0),
        retry=NO_RETRY,
    )
    sandbox_fault(woo_sandbox, mode="delay", seconds=0, count=1)  # the read of the order
    sandbox_fault(woo_sandbox, mode="delay", seconds=2.5, count=1)  # the completion: done, answer lost
    hogia_change(customer, transfer, hogia_sandbox, "Paid", woo=woo)
    import time

    time.sleep(2)
    Push.objects.filter(transfer=transfer, state=Push.State.PENDING).update(next_attempt_at=None)
    pushes_run(transfer_id=transfer.pk, woo=woo)
    push = Push.objects.get(transfer=transfer, hogia_status="Paid")
    assert push.state == Push.State.DONE
    assert order_now(shop, order["id"])["status"] == "completed"
    assert [w["to"] for w in status_writes(shop, order["id"]) if w["by"] == "rest"] == [
        "skickad",
        "completed",
    ]
    assert not transfer.events.filter(message__contains="never overwritten").exists()
    assert len(captures(shop, order["id"])) == 1
