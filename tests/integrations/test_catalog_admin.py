"""The catalogue's admin pages: the initial sync's preview and progress, the price-list note."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.catalog.initial_sync import initial_sync_progress
from integrations.models import HogiaArticle, InitialSync, InitialSyncItem, Shop
from tests.factories import StaffFactory
from tests.integrations.helpers import connected_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(StaffFactory(username="support", is_superuser=True))
    return client


def test_an_initial_sync_is_created_in_the_admin_and_shows_its_preview_and_progress(
        staff_client, woo_sandbox, hogia_sandbox):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    response = staff_client.post(reverse("admin:integrations_initialsync_add"),
                                 {"shop": shop.pk, "direction": InitialSync.Direction.TO_SHOP})
    assert response.status_code == 302, response.context["adminform"].form.errors
    job = InitialSync.objects.get()
    assert job.customer == customer and job.state == InitialSync.State.NEW
    started = timezone.now() - timezone.timedelta(seconds=10)
    job.state, job.total, job.done = InitialSync.State.RUNNING, 100, 40
    job.started_at, job.heartbeat_at = started, started + timezone.timedelta(seconds=10)
    job.report = {"segment_started_at": started.isoformat(), "segment_started_done": 0}
    job.preview = {"counts": {"match": 3, "duplicated_in_shop": 1, "to_write": 100},
                   "duplicated_in_shop": {"SKU-1": ["A (id 1)", "B (id 2)"]}, "only_in_hogia": ["X-1"]}
    job.save()
    InitialSyncItem.objects.create(job=job, sku="X-1")
    assert initial_sync_progress(job=job)["eta_seconds"] == 15  # 60 left at 4 a second
    page = staff_client.get(reverse("admin:integrations_initialsync_change", args=[job.pk])).content.decode()
    assert "40 / 100 written" in page and "4/s" in page and "15 s" in page
    assert 'http-equiv="refresh"' in page  # it refreshes itself while running
    assert "SKU-1: A (id 1), B (id 2)" in page and "no price lists" in page


def test_the_article_list_says_where_price_lists_went(staff_client, woo_sandbox, hogia_sandbox):
    customer, _shops = connected_customer(woo_sandbox, hogia_sandbox)
    HogiaArticle.objects.create(customer=customer, number="A-1", row_version=3,
                                data={"name": "Artikel", "prices": {"ordinary": "10.00", "campaign": "8.00"},
                                      "stockBalance": "4", "sendToWebshop": True})
    page = staff_client.get(reverse("admin:integrations_hogiaarticle_changelist")).content.decode()
    assert "Hogia Smart has no price lists" in page and "A-1" in page


def test_the_catalogue_sync_action_queues_one_task_per_customer(staff_client, woo_sandbox, hogia_sandbox,
                                                                 django_capture_on_commit_callbacks,
                                                                 monkeypatch):
    customer, shops = connected_customer(woo_sandbox, hogia_sandbox)
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: queued.append((func, args)))
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(reverse("admin:integrations_shop_changelist"), {
            "action": "sync_catalogue_now", "_selected_action": [s.pk for s in Shop.objects.all()]})
    assert queued == [("integrations.tasks.sync_catalog", (customer.pk, False))]
