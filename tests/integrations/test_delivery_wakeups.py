"""An order delivery whose task was lost (Redis restarted, or the host holding it died) is sent to
a worker again by the stager: found by make test-faults (tests/faults), cases 1 and 2."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import OrderTransfer, WebhookDelivery
from integrations.orders import wakeups
from integrations.orders.wakeups import deliveries_wake_lost
from tests.factories import ShopFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _delivery(
    shop, woo_id: int, *, age: timedelta, topic: str = "order.created", outcome=None, pending=False
) -> int:
    return WebhookDelivery.objects.create(
        shop=shop,
        task_pending=pending,
        received_at=timezone.now() - age,
        outcome=outcome or WebhookDelivery.Outcome.ACCEPTED,
        topic=topic,
        resource_id=woo_id,
        body=b"{}",
    ).pk


@pytest.fixture
def sent(monkeypatch):
    queued: list[tuple] = []
    monkeypatch.setattr(wakeups, "task_enqueue", lambda func, *args, **kw: queued.append((func, *args)))
    return queued


def test_an_accepted_order_delivery_without_its_order_is_sent_again_once_per_order(sent):
    shop = ShopFactory()
    _delivery(shop, 10, age=timedelta(minutes=2))
    latest = _delivery(shop, 10, age=timedelta(minutes=1), topic="order.updated")
    other = _delivery(shop, 11, age=timedelta(minutes=1))

    assert sorted(deliveries_wake_lost()) == sorted([latest, other])
    assert sorted(sent) == sorted([(wakeups.WEBHOOK_TASK, latest), (wakeups.WEBHOOK_TASK, other)])


def test_a_recorded_order_a_recent_delivery_an_old_one_or_a_rejected_one_is_left_alone(sent):
    shop = ShopFactory()
    _delivery(shop, 20, age=timedelta(minutes=1))
    OrderTransfer.objects.create(shop=shop, woo_order_id=20, sequence_id=uuid.uuid4())
    _delivery(shop, 21, age=timedelta(seconds=5))  # its task may still be on its way
    _delivery(shop, 22, age=wakeups.DELIVERY_LOST_WINDOW + timedelta(minutes=1))  # the poll's
    _delivery(shop, 23, age=timedelta(minutes=1), outcome=WebhookDelivery.Outcome.FAILED)
    _delivery(shop, 24, age=timedelta(minutes=1), topic="product.updated")
    _delivery(shop, 25, age=timedelta(minutes=1), pending=True)  # its task waits for deliveries_send

    assert deliveries_wake_lost() == []
    assert sent == []


def test_with_nothing_pending_the_stager_s_send_opens_no_transaction(monkeypatch):
    # On SQLite a transaction takes the one write lock: the stager must not take it every second.
    _delivery(ShopFactory(), 30, age=timedelta(seconds=5))  # accepted, its task already sent

    def no_transaction(*args, **kwargs):
        raise AssertionError("a transaction with nothing to send")

    monkeypatch.setattr(wakeups.transaction, "atomic", no_transaction)
    assert wakeups.deliveries_send() == 0
