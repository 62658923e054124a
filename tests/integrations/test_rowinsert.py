"""The intake's one-statement insert (``integrations.rowinsert``) stores the row ``save()`` would:
every column, bytes and JSON included, and a unique constraint's IntegrityError as Django's."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone

import pytest
from django.db import IntegrityError, connection

from integrations.models import WebhookDelivery
from integrations.rowinsert import row_insert
from tests.factories import ShopFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

BODY = b'{"id": 7, "note": "\\u00e5\\u00e4\\u00f6"}\x00\xff\xfe end'


def _delivery(shop, **values) -> WebhookDelivery:
    fields = dict(
        shop=shop,
        received_at=datetime(2026, 12, 2, 11, 30, 15, 123456, tzinfo=dt_timezone.utc),
        outcome=WebhookDelivery.Outcome.ACCEPTED,
        reason="",
        topic="order.created",
        webhook_id="12",
        delivery_id="d-row-insert",
        source="https://butik.example/",
        resource_id=2**63 - 1,
        content_type="application/json",
        body=BODY,
        body_size=len(BODY),
        body_sha256="ab" * 32,
        headers={"x-wc-webhook-topic": "order.created", "user-agent": "WooCommerce/11.0.1 – Hookshot ÅÄÖ"},
        task_pending=True,
    )
    return WebhookDelivery(**(fields | values))


def _columns(delivery: WebhookDelivery) -> dict:
    row = WebhookDelivery.objects.get(pk=delivery.pk)
    values = {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}
    values.pop("id")
    values["body"] = bytes(values["body"])
    return values


def test_the_row_is_the_one_save_stores():
    shop = ShopFactory()
    inserted = _delivery(shop)
    row_insert(inserted)
    assert inserted.pk is not None and not inserted._state.adding
    saved = _delivery(shop, delivery_id="d-saved")
    saved.save()
    assert _columns(inserted) == _columns(saved) | {"delivery_id": "d-row-insert"}
    assert _columns(inserted)["body"] == BODY


def test_a_duplicate_raises_django_s_integrity_error_and_the_connection_goes_on():
    shop = ShopFactory()
    row_insert(_delivery(shop))
    with pytest.raises(IntegrityError):
        row_insert(_delivery(shop))
    assert WebhookDelivery.objects.filter(shop=shop).count() == 1
    assert not connection.in_atomic_block


def test_a_body_is_compressed_with_lz4():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's compression")
    # Migration 0017: cheaper for the server than pglz (Debian's PostgreSQL has lz4).
    delivery = _delivery(ShopFactory(), body=b'{"line_items": []} ' * 500)
    row_insert(delivery)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(body) FROM integrations_webhookdelivery WHERE id = %s",
            [delivery.pk],
        )
        assert cursor.fetchone()[0] == "lz4"


def test_nothing_listens_to_a_delivery_s_save():
    # row_insert sends no model signals: a receiver added for deliveries would never be called.
    from django.db.models.signals import post_save, pre_save

    assert not pre_save.has_listeners(WebhookDelivery)
    assert not post_save.has_listeners(WebhookDelivery)
