"""Correctly signed order deliveries with values the portal cannot take (found on a real
deployment with the shop's secret): each is kept, answered 400 with the reason, logged for
support, and breaks no page."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from integrations.models import OrderTransfer, SyncLogEntry, WebhookDelivery
from integrations.sandboxes.fixtures import WOOCOMMERCE_11
from integrations.webhooks import webhook_signature
from tests.factories import (
    CustomerFactory,
    ShopFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    package,
)
from tests.integrations.helpers import webhook_orders_record

pytestmark = pytest.mark.django_db

SECRET = "a-shop-secret-for-bad-orders"


@pytest.fixture
def shop():
    customer = CustomerFactory(name="Kaffe & Kakor AB")
    SubscriptionFactory(customer=customer, package=package("400"))
    return ShopFactory(customer=customer, webhook_secret=SECRET)


def _order() -> dict:
    """The real store's order A1 as its webhook carried it (the signed fixture's body)."""
    return json.loads((WOOCOMMERCE_11 / "webhooks" / "order_created_A1.body").read_bytes())


def _post(client, shop, body: bytes, topic: str = "order.created"):
    """Deliver the body, then let a worker record the order of an accepted delivery."""
    response = client.post(
        f"/hooks/woocommerce/{shop.webhook_token}/",
        data=body,
        content_type="application/json",
        HTTP_X_WC_WEBHOOK_TOPIC=topic,
        HTTP_X_WC_WEBHOOK_SIGNATURE=webhook_signature(body=body, secret=SECRET),
    )
    webhook_orders_record()
    return response


def _deep(depth: int) -> bytes:
    return b'{"id": 39, "status": "processing", "meta_data": ' + b"[" * depth + b"]" * depth + b"}"


def _changed(**fields) -> bytes:
    order = _order()
    order.update(fields)
    return json.dumps(order).encode()


CASES = {
    "total 1e12": (_changed(total="1000000000000.00"), "999 999 999 999.99"),
    "id over 2^63": (_changed(id=2**63), "64-bit"),
    "deep nesting": (_deep(100_000), "nested"),
    'refunds "x"': (_changed(refunds="x"), "refunds"),
    'billing "x"': (_changed(billing="x"), "billing"),
    "bad date": (_changed(date_created_gmt="2026-13-45T25:61:00"), "date_created_gmt"),
    'total "abc"': (_changed(total="abc"), "total"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_signed_order_the_portal_cannot_take_is_kept_answered_400_and_logged(client, shop, case):
    body, words = CASES[case]
    response = _post(client, shop, body)
    assert response.status_code == 400, response.content
    message = response.json()["message"]
    assert message.startswith("rejected: ") and words in message
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "malformed" and bytes(delivery.body) == body
    assert words in delivery.reason
    assert not OrderTransfer.objects.exists()
    log = SyncLogEntry.objects.get(shop=shop)
    assert log.level == "warning" and words in log.message


def test_after_bad_orders_the_customer_pages_and_the_admin_still_answer(client, shop):
    for body, _words in CASES.values():
        _post(client, shop, body)
    good = _post(client, shop, json.dumps(_order()).encode())
    assert good.status_code == 200
    transfer = OrderTransfer.objects.get()
    user = UserFactory(username="agda")
    shop.customer.users.add(user)
    client.force_login(user)
    assert client.get(reverse("account")).status_code == 200
    assert client.get(reverse("account-order", args=[transfer.pk])).status_code == 200
    client.force_login(StaffFactory(username="support"))
    for name in (
        "admin:integrations_ordertransfer_changelist",
        "admin:integrations_webhookdelivery_changelist",
    ):
        assert client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize(
    "body, words",
    [
        (b'{"id": 39, "status": "processing", "total": NaN}', "NaN is not a number JSON allows"),
        (b'{"id": 39, "status": "processing", "total": Infinity}', "Infinity"),
        (b'{"id": 39, "billing": {"first_name": "\xff"}}', "utf-8"),
        (b'[{"id": 39}]', "not a JSON object"),
        (b'{"id": ' + b"9" * 5000 + b"}", "not the JSON"),  # past Python's int digit limit
    ],
    ids=["NaN", "Infinity", "not UTF-8", "a list", "a 5000-digit id"],
)
def test_bodies_that_are_not_an_order_are_kept_and_answered_400(client, shop, body, words):
    response = _post(client, shop, body)
    assert response.status_code == 400 and words in response.json()["message"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "malformed" and bytes(delivery.body) == body


def test_a_product_id_beyond_64_bits_is_rejected_not_a_500(client, shop):
    body = json.dumps({"id": 2**63, "name": "Mugg"}).encode()
    response = _post(client, shop, body, topic="product.updated")
    assert response.status_code == 400 and "the product has no id" in response.json()["message"]
    assert WebhookDelivery.objects.get().outcome == "malformed"


def test_a_topic_not_used_is_kept_as_ignored_whatever_its_id(client, shop):
    body = json.dumps({"id": 2**70}).encode()
    response = _post(client, shop, body, topic="coupon.created")
    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "ignored" and delivery.resource_id is None


def test_an_accepted_order_records_its_id_on_the_delivery(client, shop):
    response = _post(client, shop, json.dumps(_order()).encode(), topic="order.updated")
    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "accepted" and delivery.resource_id == 39 and delivery.reason == ""


def test_a_data_error_the_check_missed_is_recorded_and_answered_400(client, shop, monkeypatch):
    from decimal import InvalidOperation

    def broken(*args, **kwargs):  # its message quotes the body, broken characters and all
        raise InvalidOperation("cannot take 'Ma\ud800ria\x00'")

    monkeypatch.setattr("integrations.intake.order_payload_problems", broken)
    body = json.dumps(_order()).encode()
    response = _post(client, shop, body)
    assert response.status_code == 400
    assert response.json()["message"] == "could not be processed: InvalidOperation"
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "failed" and "InvalidOperation" in delivery.reason
    assert "Ma\\ud800ria\\x00" in delivery.reason  # escaped, so any database can hold it
    assert bytes(delivery.body) == body
    assert SyncLogEntry.objects.get(shop=shop).level == "warning"


def test_a_bug_propagates_but_the_delivery_is_kept_with_what_happened(client, shop, monkeypatch):
    def bug(body):
        raise KeyError("a bug in the portal")

    # Fails while parsing: the delivery was stored before.
    monkeypatch.setattr("integrations.intake._json_parse", bug)
    body = json.dumps(_order()).encode()
    with pytest.raises(KeyError):
        _post(client, shop, body)
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "failed" and "KeyError" in delivery.reason
    assert bytes(delivery.body) == body


@pytest.mark.parametrize(
    "total, stored",
    [
        (b'"12.5"', "12.50"),
        (b'" 12.50 "', "12.50"),
        (b"1E+3", "1000.00"),
        (b'"999999999999.99"', "999999999999.99"),
        (b'"-0"', "0.00"),
        (b'""', None),
    ],
    ids=["one decimal", "spaces", "exponent", "the largest", "minus zero", "empty"],
)
def test_totals_the_check_lets_through_are_stored_exactly_and_shown(client, shop, total, stored):
    body = (WOOCOMMERCE_11 / "webhooks" / "order_created_A1.body").read_bytes()
    body = body.replace(b'"total":"1088.24"', b'"total":' + total)
    assert _post(client, shop, body).status_code == 200
    transfer = OrderTransfer.objects.get()
    assert (str(transfer.total) if transfer.total is not None else None) == stored
    user = UserFactory(username="agda")
    shop.customer.users.add(user)
    client.force_login(user)
    assert client.get(reverse("account")).status_code == 200


def test_an_order_the_worker_cannot_record_leaves_the_delivery_failed_with_the_reason(
    client, shop, monkeypatch
):
    from integrations.intake import webhook_order_take

    def broken(**kwargs):
        raise ValueError("the row could not be written")

    response = client.post(
        f"/hooks/woocommerce/{shop.webhook_token}/",
        data=json.dumps(_order()).encode(),
        content_type="application/json",
        HTTP_X_WC_WEBHOOK_TOPIC="order.created",
        HTTP_X_WC_WEBHOOK_SIGNATURE=webhook_signature(body=json.dumps(_order()).encode(), secret=SECRET),
    )
    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    monkeypatch.setattr("integrations.intake.order_seen", broken)
    assert webhook_order_take(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.outcome == "failed" and "could not be written" in delivery.reason
    assert "the poll reads the order again" in SyncLogEntry.objects.get(shop=shop).message
    assert OrderTransfer.objects.count() == 0
