"""The webhook endpoint cannot be flooded or replayed: a body over the cap is answered 413 JSON
without being read, deliveries without a valid signature are kept only up to the hourly cap
per shop (the rest counted), and a replayed signed delivery is stored and transferred once."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from django.db.models import F
from django.test import Client, RequestFactory, override_settings

from integrations.intake import MAX_BODY_BYTES, webhook_drops
from integrations.models import OrderTransfer, SyncLogEntry, WebhookDelivery, WebhookDropCount
from integrations.sandboxes.fixtures import WOOCOMMERCE_11
from integrations.views import woocommerce_webhook
from integrations.webhooks import webhook_signature
from tests.factories import CustomerFactory, ShopFactory, StaffFactory
from tests.integrations.helpers import connected_customer, webhook_orders_run
from tests.integrations.test_order_transfer import hogia

pytestmark = pytest.mark.django_db

SECRET = "a-shop-secret-for-floods"
MB = 1024 * 1024
FIXTURE_SECRET = "hogia-smart-fixture-secret-2026"  # the fixtures' README


@pytest.fixture
def shop():
    return ShopFactory(customer=CustomerFactory(name="Flod AB"), webhook_secret=SECRET)


def _url(shop) -> str:
    return f"/hooks/woocommerce/{shop.webhook_token}/"


def _signed(body: bytes, secret: str = SECRET, **headers) -> dict:
    return {
        "HTTP_X_WC_WEBHOOK_TOPIC": "order.created",
        "HTTP_X_WC_WEBHOOK_SIGNATURE": webhook_signature(body=body, secret=secret),
        **headers,
    }


def _stored_bytes() -> int:
    return sum(len(bytes(body)) for body in WebhookDelivery.objects.values_list("body", flat=True))


class _CountingStream(io.RawIOBase):
    """A request body of ``size`` bytes that remembers how much of it was read."""

    def __init__(self, size: int):
        self.size, self.read_bytes = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.size - self.read_bytes)
        buffer[:count] = b"x" * count
        self.read_bytes += count
        return count


def _raw_request(shop, stream, **environ):
    request = RequestFactory().post(_url(shop), data=b"", content_type="application/json")
    request.environ.pop("CONTENT_LENGTH", None)
    request.environ.update({"wsgi.input": stream, **environ})
    # Built again from its environ, as the handler would: Django's stream is set up there.
    return type(request)(request.environ)


# -- size ---------------------------------------------------------------------------------------


@override_settings(DEBUG=True)
def test_an_11_mb_post_with_debug_on_is_413_json_never_django_s_page(shop):
    client = Client(raise_request_exception=False)
    response = client.post(_url(shop), data=b"x" * (11 * MB), content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert "too large" in response.json()["message"]
    assert b"<html" not in response.content.lower()
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.outcome == "malformed" and delivery.body_size == 11 * MB and bytes(delivery.body) == b""


def test_a_declared_length_over_the_cap_is_answered_without_reading_the_body(shop):
    stream = _CountingStream(11 * MB)
    request = _raw_request(shop, stream, CONTENT_LENGTH=str(11 * MB))
    response = woocommerce_webhook(request, token=shop.webhook_token)
    assert response.status_code == 413 and stream.read_bytes == 0


def test_a_chunked_body_without_a_length_is_read_only_up_to_the_cap(shop):
    stream = _CountingStream(11 * MB)
    request = _raw_request(shop, stream, HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input_terminated": True})
    response = woocommerce_webhook(request, token=shop.webhook_token)
    assert response.status_code == 413 and stream.read_bytes == MAX_BODY_BYTES + 1
    assert json.loads(response.content)["message"].startswith("rejected: body of")


def test_a_chunked_body_on_a_server_that_does_not_end_the_stream_is_411(shop):
    stream = _CountingStream(100)
    request = _raw_request(shop, stream, HTTP_TRANSFER_ENCODING="chunked")
    response = woocommerce_webhook(request, token=shop.webhook_token)
    assert response.status_code == 411 and stream.read_bytes == 0


def test_a_request_with_neither_a_length_nor_chunks_has_an_empty_body(shop):
    stream = _CountingStream(100)
    response = woocommerce_webhook(_raw_request(shop, stream), token=shop.webhook_token)
    assert response.status_code == 401 and stream.read_bytes == 0
    assert bytes(WebhookDelivery.objects.get().body) == b""


def test_a_chunked_signed_delivery_under_the_cap_is_taken(shop):
    body = json.dumps({"id": 5, "status": "processing"}).encode()
    request = _raw_request(
        shop, io.BytesIO(body), HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input_terminated": True}
    )
    request.META.update(_signed(body, HTTP_X_WC_WEBHOOK_TOPIC="coupon.created"))
    response = woocommerce_webhook(request, token=shop.webhook_token)
    assert response.status_code == 200, response.content
    assert bytes(WebhookDelivery.objects.get().body) == body


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "٣"])
def test_an_invalid_content_length_is_400_json(client, shop, length):
    response = client.post(_url(shop), data=b"{}", content_type="application/json", CONTENT_LENGTH=length)
    assert response.status_code == 400 and "Content-Length" in response.json()["message"]


@override_settings(DEBUG=True, DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_django_s_own_request_data_too_big_is_caught_and_answered_413_json(shop):
    body = json.dumps({"id": 5, "padding": "x" * 2000}).encode()
    response = Client(raise_request_exception=False).post(
        _url(shop), data=body, content_type="application/json", **_signed(body)
    )
    assert response.status_code == 413 and "at most 1000" in response.json()["message"]


# -- flood --------------------------------------------------------------------------------------


def test_an_unsigned_flood_of_200_bodies_of_1_mb_keeps_at_most_the_cap_and_counts_the_rest(
    client, shop, settings
):
    cap, keep = settings.WEBHOOK_REJECTED_KEEP_PER_HOUR, settings.WEBHOOK_REJECTED_BODY_KEEP_BYTES
    assert (cap, keep) == (50, 64 * 1024)
    body = b'{"id": 1, "junk": "' + b"x" * (MB - 21) + b'"}'
    assert len(body) == MB
    statuses = [
        client.post(_url(shop), data=body, content_type="application/json").status_code for _ in range(200)
    ]
    assert statuses == [401] * 200  # honest: the same answer whether kept or not
    assert WebhookDelivery.objects.count() == cap
    assert _stored_bytes() == cap * keep  # 3.1 MB kept of 200 MB sent
    assert set(WebhookDelivery.objects.values_list("body_size", flat=True)) == {MB}
    (count,) = WebhookDropCount.objects.all()
    assert (count.kept, count.dropped, count.dropped_bytes) == (cap, 150, 150 * MB)
    # Support reads every kept one in the sync log, and once that the rest were dropped.
    warnings = SyncLogEntry.objects.filter(shop=shop, level="warning")
    assert warnings.filter(message__contains="Nothing was processed").count() == cap
    assert warnings.filter(message__contains="more than 50 deliveries").count() == 1
    # A correctly signed delivery in the middle of the flood is taken as always.
    signed = json.dumps({"id": 7}).encode()
    response = client.post(
        _url(shop),
        data=signed,
        content_type="application/json",
        **_signed(signed, HTTP_X_WC_WEBHOOK_TOPIC="x.y"),
    )
    assert response.status_code == 200 and WebhookDelivery.objects.filter(outcome="ignored").count() == 1
    # The next hour starts with the cap free again.
    WebhookDropCount.objects.update(hour=F("hour") - timedelta(hours=1))
    assert client.post(_url(shop), data=body, content_type="application/json").status_code == 401
    assert WebhookDelivery.objects.filter(outcome="bad_signature").count() == cap + 1


def test_an_unsigned_ping_flood_is_answered_200_and_capped_like_any_unproven_delivery(client, shop, settings):
    settings.WEBHOOK_REJECTED_KEEP_PER_HOUR = 5
    ping = b"webhook_id=" + b"9" * 100_000
    for _ in range(20):
        response = client.post(_url(shop), data=ping, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200
    assert WebhookDelivery.objects.filter(outcome="ping").count() == 5
    assert _stored_bytes() == 5 * settings.WEBHOOK_REJECTED_BODY_KEEP_BYTES
    assert WebhookDropCount.objects.get().dropped == 15


def test_signed_deliveries_are_never_capped(client, shop, settings):
    settings.WEBHOOK_REJECTED_KEEP_PER_HOUR = 0  # every unproven delivery is dropped
    for index in range(5):
        body = json.dumps({"id": index + 1}).encode()
        response = client.post(
            _url(shop),
            data=body,
            content_type="application/json",
            **_signed(body, HTTP_X_WC_WEBHOOK_TOPIC="x.y"),
        )
        assert response.status_code == 200
    assert WebhookDelivery.objects.count() == 5
    assert client.post(_url(shop), data=b"{}", content_type="application/json").status_code == 401
    assert WebhookDelivery.objects.count() == 5 and WebhookDropCount.objects.get().dropped == 1


def test_support_sees_the_dropped_count_on_the_shop_and_above_the_deliveries(client, shop, settings):
    settings.WEBHOOK_REJECTED_KEEP_PER_HOUR = 2
    for _ in range(9):
        client.post(_url(shop), data=b"x" * 1000, content_type="application/json")
    assert webhook_drops(shop=shop).deliveries == 7
    client.force_login(StaffFactory())
    page = client.get(f"/admin/integrations/shop/{shop.pk}/change/").content.decode()
    assert "last 24 hours: 7 (6,8\xa0KB)" in page and "kept up to 2 per hour" in page
    page = client.get("/admin/integrations/webhookdelivery/").content.decode()
    assert "7 deliveries" in page and f"{shop.name} 7" in page


# -- replays -------------------------------------------------------------------------------------


@pytest.fixture
def fixture_shop(woo_sandbox, hogia_without_rate_limit):
    """A demo shop signing with the fixtures' secret, holding order 39 (A1) as the real store had it."""
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_without_rate_limit)
    shop.webhook_secret = FIXTURE_SECRET
    shop.save()
    order = (WOOCOMMERCE_11 / "orders" / "A1_guest_mixed_vat_processing.json").read_bytes()
    requests.post(
        f"{shop.home_url}_sandbox/orders", data=order, headers={"Content-Type": "application/json"}
    ).raise_for_status()
    return shop


def _real_delivery(name: str = "order_created_A1") -> tuple[bytes, dict]:
    """The real store's delivery: its bytes and its headers as the test client takes them."""
    body = (WOOCOMMERCE_11 / "webhooks" / f"{name}.body").read_bytes()
    headers = json.loads((WOOCOMMERCE_11 / "webhooks" / f"{name}.headers.json").read_text())["headers"]
    extra = {
        f"HTTP_{name.upper().replace('-', '_')}": value
        for name, value in headers
        if name.lower().startswith("x-wc-webhook")
    }
    return body, extra


def test_30_replays_of_one_signed_delivery_store_one_row_and_transfer_one_order(
    client, fixture_shop, hogia_sandbox
):
    body, headers = _real_delivery()
    answers = [
        client.post(_url(fixture_shop), data=body, content_type="application/json", **headers).json()[
            "message"
        ]
        for _ in range(30)
    ]
    assert answers == ["accepted"] + ["already received"] * 29
    (delivery,) = WebhookDelivery.objects.all()
    assert bytes(delivery.body) == body and delivery.body_size == len(body)
    assert webhook_orders_run() == ["invoiced"]  # one task was queued
    assert OrderTransfer.objects.get().state == "invoiced"
    assert len(hogia(hogia_sandbox).invoices_find(customer_order_number="39")) == 1


def test_a_second_genuine_delivery_of_the_same_order_is_taken(client, fixture_shop):
    """WooCommerce gives every delivery a new id: the same order again is news, not a replay."""
    body, headers = _real_delivery()
    client.post(_url(fixture_shop), data=body, content_type="application/json", **headers)
    again = {**headers, "HTTP_X_WC_WEBHOOK_DELIVERY_ID": "0" * 32}
    response = client.post(_url(fixture_shop), data=body, content_type="application/json", **again)
    assert response.json()["message"] == "accepted"
    assert WebhookDelivery.objects.filter(outcome="accepted").count() == 2
    assert sorted(webhook_orders_run()) == ["invoiced", "recorded"]


def test_a_replay_with_other_bytes_is_not_taken_for_the_same_delivery(client, shop):
    first, second = json.dumps({"id": 1}).encode(), json.dumps({"id": 2}).encode()
    same_id = {"HTTP_X_WC_WEBHOOK_DELIVERY_ID": "d" * 32, "HTTP_X_WC_WEBHOOK_TOPIC": "x.y"}
    for body in (first, second):
        response = client.post(
            _url(shop), data=body, content_type="application/json", **_signed(body, **same_id)
        )
        assert response.json()["message"] == "ignored"
    assert WebhookDelivery.objects.count() == 2


def test_an_unsigned_copy_of_a_stored_delivery_is_still_rejected(client, fixture_shop):
    body, headers = _real_delivery()
    client.post(_url(fixture_shop), data=body, content_type="application/json", **headers)
    headers.pop("HTTP_X_WC_WEBHOOK_SIGNATURE")
    response = client.post(_url(fixture_shop), data=body, content_type="application/json", **headers)
    assert response.status_code == 401


# -- at once (PostgreSQL: requests in parallel really race) ---------------------------------------


def _at_once(count: int, post) -> list[int]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _index: post(), range(count)))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_20_copies_of_one_signed_delivery_at_once_store_one_row(live_server, shop):
    body = json.dumps({"id": 3}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": "x.y",
        "X-WC-Webhook-Delivery-ID": "e" * 32,
        "X-WC-Webhook-Signature": webhook_signature(body=body, secret=SECRET),
    }
    url = live_server.url + _url(shop)
    answers = _at_once(20, lambda: requests.post(url, data=body, headers=headers, timeout=30))
    assert [answer.status_code for answer in answers] == [200] * 20
    messages = sorted(answer.json()["message"] for answer in answers)
    assert messages == ["already received"] * 19 + ["ignored"]
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_unsigned_flood_at_once_keeps_exactly_the_cap(live_server, shop, settings):
    settings.WEBHOOK_REJECTED_KEEP_PER_HOUR = 10
    url = live_server.url + _url(shop)
    statuses = _at_once(40, lambda: requests.post(url, data=b"x" * 5000, timeout=30).status_code)
    assert statuses == [401] * 40
    assert WebhookDelivery.objects.count() == 10
    count = WebhookDropCount.objects.get()
    assert (count.kept, count.dropped, count.dropped_bytes) == (10, 30, 30 * 5000)
    assert SyncLogEntry.objects.filter(message__contains="more than 10 deliveries").count() == 1
