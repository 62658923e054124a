"""What a webhook delivery costs the web server: it skips the page middleware, and with the Redis
broker its row is one statement outside any transaction and no call to Redis: the row is the
outbox, and the stager sends its task (``deliveries_send``) to a real Redis server here."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.test import override_settings
from django.urls import resolve, reverse

from integrations import intake
from integrations.middleware import WEBHOOK_PATH
from integrations.models import WebhookDelivery
from integrations.orders.wakeups import deliveries_send
from integrations.rowinsert import row_insert
from integrations.sandboxes.fixtures import WOOCOMMERCE_11
from integrations.views import _headers, woocommerce_webhook
from integrations.webhooks import webhook_signature
from portal import stack
from portal.log_filters import QuietEnqueued
from tests.factories import CustomerFactory, ShopFactory

SECRET = "a-shop-secret-for-the-intake-path"
REDIS_Q_CLUSTER = {"name": "portal", "redis": "redis://127.0.0.1:1/0", "timeout": 60, "retry": 900}


@pytest.fixture
def shop():
    return ShopFactory(customer=CustomerFactory(name="Väg AB"), webhook_secret=SECRET)


def _order_body() -> bytes:
    order = json.loads((WOOCOMMERCE_11 / "orders" / "A1_guest_mixed_vat_processing.json").read_text())
    return json.dumps(order).encode()


def _post(client, shop, body: bytes, delivery_id: str = "d-intake-path-1"):
    return client.post(
        f"/hooks/woocommerce/{shop.webhook_token}/",
        data=body,
        content_type="application/json",
        HTTP_X_WC_WEBHOOK_TOPIC="order.created",
        HTTP_X_WC_WEBHOOK_SIGNATURE=webhook_signature(body=body, secret=SECRET),
        HTTP_X_WC_WEBHOOK_DELIVERY_ID=delivery_id,
        HTTP_ACCEPT_LANGUAGE="en",
    )


@pytest.mark.django_db
def test_a_delivery_skips_the_page_middleware_and_a_page_does_not(client, shop):
    delivered = _post(client, shop, _order_body())
    assert delivered.status_code == 200, delivered.content
    assert delivered.json() == {"message": "accepted"}
    # The page middleware leaves its marks: LocaleMiddleware's Content-Language and Vary, the
    # security headers' policy. A delivery has none of them, and its length is given.
    assert "Content-Language" not in delivered.headers
    assert "Content-Security-Policy" not in delivered.headers
    assert "Accept-Language" not in delivered.headers.get("Vary", "")
    assert delivered.headers["Content-Length"] == str(len(delivered.content))
    # Django's SecurityMiddleware is before it: nosniff still applies.
    assert delivered.headers["X-Content-Type-Options"] == "nosniff"

    page = client.get("/login/")
    assert page.headers["Content-Language"]
    assert "Content-Security-Policy" in page.headers
    # An address under /hooks/ that is no webhook gets the page chain, and its 404 page.
    missing = client.post("/hooks/another/", data=b"{}", content_type="application/json")
    assert missing.status_code == 404
    assert missing.headers["Content-Language"]


def test_the_middleware_s_pattern_is_the_webhook_address_and_its_headers_are_django_s(rf):
    token = uuid.uuid4()
    path = reverse("woocommerce-webhook", args=[token])
    assert WEBHOOK_PATH.fullmatch(path)["token"] == str(token)
    assert resolve(path).func is woocommerce_webhook
    assert WEBHOOK_PATH.fullmatch(path.upper()) is None and WEBHOOK_PATH.fullmatch(path + "x") is None
    request = rf.post(
        path,
        data=b"{}",
        content_type="application/json",
        HTTP_X_WC_WEBHOOK_TOPIC="order.created",
        HTTP_USER_AGENT="WooCommerce/11.0.1 Hookshot (WordPress/7.0.4)",
    )
    assert _headers(request.META) == {name.lower(): value for name, value in request.headers.items()}


def _no_broker():
    raise AssertionError("the web process called the broker")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_redis_the_web_process_stores_the_delivery_pending_and_calls_no_broker(
    client, shop, monkeypatch
):
    # Redis cannot be reached at all (port 1), and the broker must not even be made.
    monkeypatch.setattr("integrations.taskqueue.broker", _no_broker)
    inserted = []

    def insert(delivery):
        inserted.append(connection.in_atomic_block)
        row_insert(delivery)

    monkeypatch.setattr(intake, "row_insert", insert)
    with override_settings(Q_CLUSTER=REDIS_Q_CLUSTER):
        answer = _post(client, shop, _order_body())
    assert answer.status_code == 200, answer.content
    delivery = WebhookDelivery.objects.get(shop=shop)
    assert (delivery.outcome, delivery.task_pending) == (WebhookDelivery.Outcome.ACCEPTED, True)
    assert inserted == [False]  # one statement, in no transaction of its own


@pytest.mark.django_db(transaction=True)
def test_with_redis_a_rejected_or_ignored_delivery_is_not_pending(client, shop, monkeypatch):
    monkeypatch.setattr("integrations.taskqueue.broker", _no_broker)
    with override_settings(Q_CLUSTER=REDIS_Q_CLUSTER):
        assert _post(client, shop, b'{"id": "not a number"}', "d-bad").status_code == 400
    assert list(WebhookDelivery.objects.values_list("task_pending", flat=True)) == [False]


@pytest.fixture
def redis_broker(tmp_path, monkeypatch):
    """django-q2's Redis broker on a real Redis server of the test's own."""
    import redis
    from django_q.brokers.redis_broker import Redis

    if not Path(stack.RedisServer.BINARY).exists():
        pytest.skip("Debian's redis-server is not installed")
    server = stack.RedisServer(tmp_path / "redis")
    server.start()
    broker = Redis()
    broker.connection = redis.Redis.from_url(server.url)
    monkeypatch.setattr("integrations.taskqueue.broker", lambda: broker)
    yield broker, server
    server.stop()


def _queued_args(broker) -> list[tuple]:
    from django_q.signing import SignedPackage

    return [SignedPackage.loads(raw)["args"] for raw in broker.connection.lrange(broker.list_key, 0, -1)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_stager_sends_the_pending_deliveries_tasks_to_redis_once(client, shop, redis_broker):
    broker, _server = redis_broker
    body = _order_body()
    with override_settings(Q_CLUSTER=REDIS_Q_CLUSTER):
        for n in range(3):
            assert _post(client, shop, body, f"d-{n}").status_code == 200
    ids = list(WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True))
    assert broker.queue_size() == 0  # nothing sent by the web process

    with override_settings(Q_CLUSTER=REDIS_Q_CLUSTER):
        assert deliveries_send(limit=2) == 3  # two batches
        assert deliveries_send() == 0  # sent once
    assert _queued_args(broker) == [(pk,) for pk in ids]
    assert not WebhookDelivery.objects.filter(task_pending=True).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_push_that_fails_leaves_the_deliveries_pending_for_the_next_tick(client, shop, redis_broker):
    broker, server = redis_broker
    with override_settings(Q_CLUSTER=REDIS_Q_CLUSTER):
        assert _post(client, shop, _order_body()).status_code == 200
        server.stop()
        with pytest.raises(redis.exceptions.ConnectionError):
            deliveries_send()
        assert WebhookDelivery.objects.filter(task_pending=True).count() == 1
        server.start()
        assert deliveries_send() == 1
    assert _queued_args(broker) == [(WebhookDelivery.objects.get().pk,)]


@pytest.mark.django_db
def test_with_the_orm_broker_the_task_row_commits_with_the_delivery(client, shop):
    from django_q.models import OrmQ

    assert _post(client, shop, _order_body()).status_code == 200
    delivery = WebhookDelivery.objects.get(shop=shop)
    queued = [task for task in OrmQ.objects.all() if task.func() == "integrations.tasks.webhook_order"]
    assert [task.task["args"] for task in queued] == [(delivery.pk,)]


def test_django_q_s_enqueued_line_is_dropped_and_its_others_kept():
    quiet = QuietEnqueued()

    def record(level, msg):
        return logging.LogRecord("django-q", level, __file__, 1, msg, None, None)

    assert not quiet.filter(record(logging.INFO, "Enqueued [django_q:portal:q] 17"))
    assert quiet.filter(record(logging.INFO, "Q Cluster grape-two starting."))
    assert quiet.filter(record(logging.ERROR, "Enqueued [x] failed"))
    assert QuietEnqueued in [type(f) for f in logging.getLogger("django-q").filters]
