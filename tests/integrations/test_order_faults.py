"""Fault tests of the order flow: duplicates, concurrency, outages, crashes, lost and forged
webhooks, and the monthly quota; all through the real sandboxes over sockets."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from billing.services import quota_claim
from integrations.clients import HogiaSmartClient, RetryPolicy
from integrations.intake import shop_webhook_topics, shop_webhooks_reenable, shop_webhooks_register
from integrations.models import OrderTransfer, SyncLogEntry, WebhookDelivery
from integrations.orders import lifecycle
from integrations.orders.attempt import order_transfer
from integrations.orders.poll import orders_poll
from integrations.orders.quota import held_release_all
from integrations.orders.wakeups import transfers_sweep
from integrations.sandboxes import demo
from integrations.sandboxes.fixtures import WOOCOMMERCE_11
from tests.integrations.helpers import (
    connected_customer,
    front,
    retry_due_now,
    sandbox_fault,
    webhook_orders_run,
)
from tests.integrations.test_order_transfer import hogia, transfer_all

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres,
    pytest.mark.usefixtures("hogia_without_rate_limit"),
]

State = OrderTransfer.State
FIXTURE_SECRET = "hogia-smart-fixture-secret-2026"


# -- webhooks ----------------------------------------------------------------------------------


def _delivery(name):
    body = (WOOCOMMERCE_11 / "webhooks" / f"{name}.body").read_bytes()
    headers = json.loads((WOOCOMMERCE_11 / "webhooks" / f"{name}.headers.json").read_text())["headers"]
    return body, {k: v for k, v in headers if k not in ("Host", "Content-Length", "Connection")}


def _post(client, shop, body, headers):
    extra = {
        f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "content-type"
    }
    return client.post(
        f"/hooks/woocommerce/{shop.webhook_token}/",
        data=body,
        content_type=headers.get("Content-Type", "application/json"),
        **extra,
    )


@pytest.fixture
def fixture_shop(db, woo_sandbox, hogia_sandbox):
    """A shop whose webhook secret is the one the real store signed the fixtures with,
    holding order 39 (A1) as the real store had it."""
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    shop.webhook_secret = FIXTURE_SECRET
    shop.save()
    order = (WOOCOMMERCE_11 / "orders" / "A1_guest_mixed_vat_processing.json").read_bytes()
    requests.post(
        f"{shop.home_url}_sandbox/orders", data=order, headers={"Content-Type": "application/json"}
    ).raise_for_status()
    return shop


def test_the_real_stores_signed_delivery_is_accepted_and_invoiced_once_however_often_it_comes(
    client, fixture_shop, hogia_sandbox
):
    body, headers = _delivery("order_created_A1")
    answers = []
    for _ in range(10):
        response = _post(client, fixture_shop, body, headers)
        assert response.status_code == 200, response.content
        answers.append(response.json()["message"])
    # The same delivery id and bytes again is a replay: stored and queued once.
    assert answers == ["accepted"] + ["already received"] * 9
    # The worker's half: the stored delivery records the order and transfers it.
    assert webhook_orders_run() == ["invoiced"]
    (transfer,) = OrderTransfer.objects.all()
    assert transfer.woo_order_id == 39 and transfer.first_seen_via == "webhook"
    assert WebhookDelivery.objects.filter(outcome="accepted").count() == 1
    stored = WebhookDelivery.objects.first()
    assert bytes(stored.body) == body  # kept byte for byte
    for _ in range(3):
        order_transfer(transfer_id=transfer.pk)
    transfer.refresh_from_db()
    assert transfer.state == State.INVOICED
    assert len(hogia(hogia_sandbox).invoices_find(customer_order_number="39")) == 1


@pytest.mark.parametrize("change", ["tampered", "unsigned", "wrong secret"])
def test_a_tampered_or_unsigned_delivery_is_rejected_kept_and_changes_nothing(client, fixture_shop, change):
    body, headers = _delivery("order_created_A1")
    if change == "tampered":
        body = body.replace(b'"total":"1088.24"', b'"total":"1.00"')
    elif change == "unsigned":
        del headers["X-WC-Webhook-Signature"]
    else:
        fixture_shop.webhook_secret = "another-secret"
        fixture_shop.save()
    response = _post(client, fixture_shop, body, headers)
    assert response.status_code == 401
    assert OrderTransfer.objects.count() == 0
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "bad_signature" and bytes(delivery.body) == body
    log = SyncLogEntry.objects.get(shop=fixture_shop)
    assert log.level == "warning" and "Nothing was processed" in log.message


def test_a_malformed_signed_body_gets_400_with_a_reason_and_is_kept(client, fixture_shop):
    from integrations.webhooks import webhook_signature

    body = b'{"id": 39, "status": '
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Signature": webhook_signature(body=body, secret=FIXTURE_SECRET),
    }
    response = _post(client, fixture_shop, body, headers)
    assert response.status_code == 400 and "not the JSON" in response.json()["message"]
    assert WebhookDelivery.objects.get().outcome == "malformed"
    assert OrderTransfer.objects.count() == 0


def test_the_unsigned_form_encoded_ping_gets_200(client, fixture_shop):
    body, headers = _delivery("ping_on_webhook_create")
    response = _post(client, fixture_shop, body, headers)
    assert response.status_code == 200
    assert WebhookDelivery.objects.get().outcome == "ping"


def test_an_unknown_webhook_address_is_404(client, db):
    response = client.post(
        "/hooks/woocommerce/00000000-0000-4000-8000-000000000000/",
        data=b"{}",
        content_type="application/json",
    )
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_webhooks_registered_in_the_shop_deliver_to_the_portal_end_to_end(
    live_server, settings, woo_sandbox, hogia_sandbox
):
    settings.PORTAL_PUBLIC_URL = live_server.url
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    summary = shop_webhooks_register(shop=shop)
    assert "order.created created" in summary and "order.updated created" in summary
    topics = shop_webhook_topics(shop=shop)  # flow 3: the product topics too
    assert WebhookDelivery.objects.filter(outcome="ping").count() == len(topics)  # the shop pinged us
    shop_front = front(shop)
    order = shop_front.place("A1_guest_mixed_vat_processing")
    shop_front.flush_webhooks()
    assert OrderTransfer.objects.count() == 0  # stored and answered; a worker records the order
    assert "invoiced" in webhook_orders_run()
    transfer = OrderTransfer.objects.get()
    assert transfer.first_seen_via == "webhook" and transfer.state == State.INVOICED
    assert transfer.order_number == order["number"]
    # Registering again repairs instead of duplicating.
    assert "updated" in shop_webhooks_register(shop=shop)
    assert len(shop_front.call("GET", "webhooks")) == len(topics)


def test_a_lost_webhook_is_caught_by_the_poll(woo_sandbox, hogia_sandbox, settings):
    settings.PORTAL_PUBLIC_URL = "http://127.0.0.1:9"  # nothing listens: every delivery fails
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    shop_webhooks_register(shop=shop)
    shop_front = front(shop)
    shop_front.place("A1_guest_mixed_vat_processing")
    shop_front.flush_webhooks()
    assert OrderTransfer.objects.count() == 0
    (transfer,) = transfer_all(shop)
    assert transfer.state == State.INVOICED and transfer.first_seen_via == "poll"


def test_a_webhook_disabled_by_woocommerce_is_re_enabled_and_logged(woo_sandbox, hogia_sandbox, settings):
    settings.PORTAL_PUBLIC_URL = "http://127.0.0.1:9"
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    shop_webhooks_register(shop=shop)
    shop_front = front(shop)
    order = shop_front.place("A1_guest_mixed_vat_processing")
    for index in range(7):  # WooCommerce disables a webhook at its 7th failed delivery in a row
        shop_front.call("PUT", f"orders/{order['id']}", {"customer_note": f"change {index}"})
        shop_front.flush_webhooks()
    statuses = {h["topic"]: h["status"] for h in shop_front.call("GET", "webhooks")}
    assert statuses["order.updated"] == "disabled"
    assert shop_webhooks_reenable(shop=shop) == ["order.updated"]
    statuses = {h["topic"]: h["status"] for h in shop_front.call("GET", "webhooks")}
    assert statuses["order.updated"] == "active"
    assert SyncLogEntry.objects.filter(message__contains="re-enabled").count() == 1


# -- outages, crashes, concurrency ----------------------------------------------------------


def test_a_long_hogia_outage_ends_with_every_order_invoiced_exactly_once(woo_sandbox, hogia_sandbox):
    _customer, (shop, second) = connected_customer(woo_sandbox, hogia_sandbox)
    for fixture in (
        "A1_guest_mixed_vat_processing",
        "A2_customer_variations_coupon_fee_onhold",
        "A3_company_sale_fixedcart_fees_completed",
    ):
        front(shop).place(fixture)
    front(second).place("A1_guest_mixed_vat_processing")
    orders_poll(shop=shop)
    orders_poll(shop=second)
    sandbox_fault(hogia_sandbox, mode="status", status=503, count=40)
    # No retries inside a call (they would only sleep here): the flow's own back-off is tested.
    impatient = HogiaSmartClient(
        api_base=hogia_sandbox.url,
        organization_id=demo.HOGIA_ORGANIZATION_ID,
        client_id=demo.HOGIA_CLIENT_ID,
        client_secret=demo.HOGIA_CLIENT_SECRET,
        retry=RetryPolicy(max_attempts=1),
    )
    waits = []
    for _round in range(30):
        due = OrderTransfer.objects.exclude(state=State.INVOICED)
        if not due.exists():
            break
        for transfer in due:
            retry_due_now(transfer)
            result = order_transfer(transfer_id=transfer.pk, hogia=impatient)
            if result.state == State.QUEUED:
                waits.append((result.attempts, (result.next_attempt_at - timezone.now()).total_seconds()))
    assert set(OrderTransfer.objects.values_list("state", flat=True)) == {State.INVOICED}
    client = hogia(hogia_sandbox)
    for transfer in OrderTransfer.objects.all():
        found = [
            i
            for i in client.invoices_find(customer_order_number=transfer.order_number)
            if i["id"] == transfer.hogia_invoice_id
        ]
        assert len(found) == 1
    assert OrderTransfer.objects.filter(attempts__gt=1).exists()
    # The back-off grows with the attempts (full jitter between half and the whole ceiling).
    by_attempt = {}
    for attempt, seconds in waits:
        by_attempt.setdefault(attempt, []).append(seconds)
    assert min(by_attempt[max(by_attempt)]) > max(by_attempt[1])
    assert len(list(client.invoices_changed_since(0))) == 4  # every invoice in the company


def test_a_crash_between_invoice_created_and_recorded_does_not_make_a_second_invoice(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    order = front(shop).place("A1_guest_mixed_vat_processing")
    orders_poll(shop=shop)
    transfer = OrderTransfer.objects.get()
    real_record = lifecycle.claim_record

    def crash(claimed, **fields):
        if fields.get("hogia_invoice_id"):
            raise SystemExit("worker killed")
        real_record(claimed, **fields)

    monkeypatch.setattr(lifecycle, "claim_record", crash)
    with pytest.raises(SystemExit):
        order_transfer(transfer_id=transfer.pk)
    monkeypatch.setattr(lifecycle, "claim_record", real_record)
    transfer.refresh_from_db()
    assert transfer.state == State.TRANSFERRING and not transfer.hogia_invoice_id
    assert order_transfer(transfer_id=transfer.pk) is None  # still claimed by the dead worker
    past = timezone.now() - timedelta(minutes=11)
    OrderTransfer.objects.filter(pk=transfer.pk).update(locked_until=past, woken_at=past)
    assert transfer.pk in transfers_sweep()  # the sweeper finds it
    assert transfer.pk not in transfers_sweep()  # and wakes it once, not every minute
    transfer = order_transfer(transfer_id=transfer.pk)
    assert transfer.state == State.INVOICED and transfer.attempts == 2
    assert len(hogia(hogia_sandbox).invoices_find(customer_order_number=order["number"])) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_on_the_same_order_make_one_invoice(woo_sandbox, hogia_sandbox):
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    order = front(shop).place("A1_guest_mixed_vat_processing")
    orders_poll(shop=shop)
    transfer = OrderTransfer.objects.get()
    barrier = threading.Barrier(4)
    results = []

    def worker():
        barrier.wait()
        try:
            results.append(order_transfer(transfer_id=transfer.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for r in results if r is not None) == 1
    transfer.refresh_from_db()
    assert transfer.state == State.INVOICED and transfer.attempts == 1
    assert len(hogia(hogia_sandbox).invoices_find(customer_order_number=order["number"])) == 1


# -- the monthly quota -----------------------------------------------------------------------


def test_the_101st_order_of_a_package_100_month_is_held_and_released_on_the_1st(woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox, package_code="100")
    november = date(2026, 11, 27)
    for number in range(100):  # the month's first hundred orders, counted earlier
        assert quota_claim(
            customer=customer,
            order_key=f"earlier-{number}",
            arrived_at=timezone.make_aware(datetime(2026, 11, 2)),
            on=november,
        ).granted
    order = front(shop).place("A1_guest_mixed_vat_processing")
    orders_poll(shop=shop)
    transfer = OrderTransfer.objects.get()
    order_transfer(transfer_id=transfer.pk, today=november)
    transfer.refresh_from_db()
    assert transfer.state == State.HELD and not transfer.hogia_invoice_id
    assert "100 of 100" in transfer.events.get(kind="held").message
    assert held_release_all(on=date(2026, 11, 30)) == 0  # still November: stays held
    assert held_release_all(on=date(2026, 12, 1)) == 1
    transfer.refresh_from_db()
    assert transfer.state == State.QUEUED
    order_transfer(transfer_id=transfer.pk, today=date(2026, 12, 1))
    transfer.refresh_from_db()
    assert transfer.state == State.INVOICED
    assert len(hogia(hogia_sandbox).invoices_find(customer_order_number=order["number"])) == 1
    kinds = list(transfer.events.values_list("kind", flat=True))
    assert kinds == ["received", "customer", "held", "released", "invoiced"]
