"""Every admin page support uses renders: each changelist, add page and change page."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from integrations.catalog.initial_sync import initial_sync_create
from integrations.models import InitialSync, Shop, SyncLogEntry, SyncRun
from integrations.services import sync_log, sync_run_finish, sync_run_start
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

MODELS = sorted(admin.site._registry, key=lambda m: m._meta.label)


@pytest.fixture
def staff_client(client):
    client.force_login(StaffFactory(username="support"))
    return client


@pytest.fixture
def demo_data():
    call_command("demo_setup", verbosity=0)
    shop = Shop.objects.first()
    run = sync_run_start(customer=shop.customer, shop=shop, kind=SyncRun.Kind.ORDERS)
    sync_log(
        customer=shop.customer,
        shop=shop,
        run=run,
        message="Order 39 transferred",
        object_type="order",
        object_ref="39",
    )
    sync_run_finish(run=run)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_changelist_add_and_change_pages_render(staff_client, demo_data, model):
    info = (model._meta.app_label, model._meta.model_name)
    response = staff_client.get(reverse("admin:%s_%s_changelist" % info))
    assert response.status_code == 200
    response = staff_client.get(reverse("admin:%s_%s_changelist" % info), {"q": "demo"})
    assert response.status_code == 200
    model_admin = admin.site._registry[model]
    if model_admin.has_add_permission(response.wsgi_request):
        assert staff_client.get(reverse("admin:%s_%s_add" % info)).status_code == 200
    obj = model._default_manager.first()
    if obj is not None:
        assert staff_client.get(reverse("admin:%s_%s_change" % info, args=[obj.pk])).status_code == 200


def test_the_admin_index_lists_every_model(staff_client):
    page = staff_client.get(reverse("admin:index")).content.decode()
    for model in (Shop, SyncRun, SyncLogEntry):
        assert str(model._meta.verbose_name_plural).capitalize() in page


def test_sync_records_are_read_only(staff_client, demo_data):
    run = SyncRun.objects.first()
    page = staff_client.get(reverse("admin:integrations_syncrun_change", args=[run.pk])).content.decode()
    assert 'name="_save"' not in page
    assert staff_client.get(reverse("admin:integrations_syncrun_add")).status_code == 403


def test_the_admin_home_counts_the_failures_of_the_last_day_and_links_to_them(staff_client, demo_data):
    shop = Shop.objects.first()
    for hours_ago in (1, 30):
        run = sync_run_start(customer=shop.customer, shop=shop, kind=SyncRun.Kind.ARTICLES)
        sync_run_finish(run=run, error="unexpected error (ValueError: boom)")
        SyncRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(hours=hours_ago))
    recent = SyncRun.objects.filter(outcome=SyncRun.Outcome.FAILED).order_by("-started_at").first()
    for hours_ago in (2, 3, 50):
        job = initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_HOGIA)
        InitialSync.objects.filter(pk=job.pk).update(
            state=InitialSync.State.FAILED,
            error="boom",
            heartbeat_at=timezone.now() - timedelta(hours=hours_ago),
        )

    page = staff_client.get(reverse("admin:index")).content.decode()
    tallies = {
        label: (unescape(url), int(count))
        for url, count, label in re.findall(
            r'<a href="([^"]+)"><span class="count">(\d+)</span> <span class="label">([^<]+)</span>', page
        )
    }
    runs_url, runs = tallies["Sync runs that failed in the last 24 hours"]
    jobs_url, jobs = tallies["Initial syncs that stopped in the last 24 hours"]
    assert (runs, jobs) == (1, 2)
    listed = staff_client.get(runs_url).content.decode()
    assert f"/syncrun/{recent.pk}/change/" in listed and "1 sync run" in listed  # the paginator's count
    assert "2 initial catalogue syncs" in staff_client.get(jobs_url).content.decode()


def test_the_admin_home_shows_no_failure_box_to_staff_who_cannot_see_sync_runs(client):
    client.force_login(StaffFactory(username="billing", is_superuser=False))
    assert "Sync runs that failed" not in client.get(reverse("admin:index")).content.decode()
