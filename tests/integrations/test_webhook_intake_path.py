"""What a webhook delivery costs the web server: it skips the page middleware, with the Redis
broker its row is one statement outside any transaction (the task sent once it is stored), and
a broker that cannot be reached then loses nothing: the delivery is kept and answered 200."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import connection
from django.test import override_settings

from integrations.models import WebhookDelivery
from integrations.sandboxes.fixtures import WOOCOMMERCE_11
from integrations.webhooks import webhook_signature
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


def _post(client, shop, body: bytes):
    return client.post(
        f"/hooks/woocommerce/{shop.webhook_token}/",
        data=body,
        content_type="application/json",
        HTTP_X_WC_WEBHOOK_TOPIC="order.created",
        HTTP_X_WC_WEBHOOK_SIGNATURE=webhook_signature(body=body, secret=SECRET),
        HTTP_X_WC_WEBHOOK_DELIVERY_ID="d-intake-path-1",
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


@pytest.mark.django_db(transaction=True)
def test_with_redis_the_delivery_is_stored_before_its_task_is_sent(client, shop, monkeypatch):
    sent = []

    def async_task(func, *args, **options):
        # The worker reads the delivery from another connection: it must be committed, not
        # waiting in a transaction.
        sent.append(
            (func, args, connection.in_atomic_block, WebhookDelivery.objects.filter(pk=args[0]).exists())
        )

    monkeypatch.setattr("django_q.tasks.async_task", async_task)
    monkeypatch.setattr("integrations.taskqueue.broker", lambda: None)
    with override_settings(Q_CLUSTER=REDIS_Q_CLUSTER):
        answer = _post(client, shop, _order_body())
    assert answer.status_code == 200, answer.content
    delivery = WebhookDelivery.objects.get(shop=shop)
    assert sent == [("integrations.tasks.webhook_order", (delivery.pk,), False, True)]


@pytest.mark.django_db(transaction=True)
def test_with_redis_unreachable_the_delivery_is_kept_and_answered_200(client, shop, monkeypatch, caplog):
    def async_task(func, *args, **options):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr("django_q.tasks.async_task", async_task)
    monkeypatch.setattr("integrations.taskqueue.broker", lambda: None)
    with override_settings(Q_CLUSTER=REDIS_Q_CLUSTER), caplog.at_level(logging.ERROR):
        answer = _post(client, shop, _order_body())
    assert answer.status_code == 200, answer.content
    delivery = WebhookDelivery.objects.get(shop=shop)
    assert delivery.outcome == WebhookDelivery.Outcome.ACCEPTED
    assert any(
        "could not be queued; the stager sends it again" in record.getMessage() for record in caplog.records
    )


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
