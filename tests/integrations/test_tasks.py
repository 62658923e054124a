"""Background work that fails in a way nobody foresaw: every task leaves its failure, with the reason,
where support looks (the run, the sync log on the customer and shop, the initial sync's page), and
still raises so that the task queue records it with the traceback."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations import tasks
from integrations.catalog.initial_sync import InitialSyncRefused, initial_sync_create, initial_sync_preview
from integrations.models import CatalogState, Flow, InitialSync, SyncLogEntry, SyncRun
from tests.factories import StaffFactory
from tests.integrations.helpers import connected_customer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hogia_without_rate_limit")]

REASON = "price '12,50' is not a number"


def broken(*args, **kwargs):
    raise ValueError(REASON)


def errors(customer) -> list[SyncLogEntry]:
    return list(SyncLogEntry.objects.filter(customer=customer, level=SyncLogEntry.Level.ERROR))


def test_an_unexpected_error_in_the_shop_to_hogia_sync_fails_its_run_and_is_logged(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    customer, _shops = connected_customer(woo_sandbox, hogia_sandbox, flow=Flow.ECOM)
    monkeypatch.setattr("integrations.catalog.to_hogia.products_map", broken)

    with pytest.raises(ValueError):
        tasks.sync_catalog(customer.pk)

    (run,) = SyncRun.objects.filter(customer=customer)  # the first shop's: the sync stopped there
    assert run.outcome == SyncRun.Outcome.FAILED and run.finished_at is not None
    assert run.error == f"unexpected error (ValueError: {REASON})"
    (line,) = errors(customer)
    assert line.message.startswith(f"Catalogue sync failed: unexpected error (ValueError: {REASON})")
    assert CatalogState.objects.get(customer=customer).locked_until is None  # the next sync may run


def test_an_unexpected_error_in_the_hogia_to_shops_sync_fails_every_shop_run(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    customer, shops = connected_customer(woo_sandbox, hogia_sandbox, flow=Flow.ERP)
    monkeypatch.setattr("integrations.catalog.sync.hogia_feed_pages", broken)

    with pytest.raises(ValueError):
        tasks.sync_catalog(customer.pk)

    runs = SyncRun.objects.filter(customer=customer)
    assert sorted(r.shop_id for r in runs) == sorted(s.pk for s in shops)
    assert {(r.outcome, r.error) for r in runs} == {
        (SyncRun.Outcome.FAILED, f"unexpected error (ValueError: {REASON})")
    }
    assert [REASON in line.message for line in errors(customer)] == [True]


def test_a_preview_that_fails_stops_the_job_with_the_reason_and_the_page_says_so(
    client, woo_sandbox, hogia_sandbox, monkeypatch
):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox, flow=Flow.ECOM)
    job = initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_HOGIA, requested_by="support")
    monkeypatch.setattr("integrations.catalog.initial_sync.shop_products_all", broken)

    with pytest.raises(ValueError):
        tasks.preview_initial_sync(job.pk)

    job.refresh_from_db()
    assert job.state == InitialSync.State.FAILED and job.error == f"unexpected error (ValueError: {REASON})"
    (line,) = errors(customer)
    assert line.shop == shop and line.object_ref == str(job.pk) and REASON in line.message
    client.force_login(StaffFactory(username="support"))
    page = client.get(reverse("admin:integrations_initialsync_change", args=[job.pk])).content.decode()
    assert "stopped: the preview failed" in page and REASON.replace("'", "&#x27;") in page
    assert "new: preview not made" not in page and "0 / 0 written" not in page
    listed = client.get(reverse("admin:integrations_initialsync_changelist")).content.decode()
    assert "stopped: the preview failed" in listed

    # Without a preview there is nothing to run; a new preview is made as for a new job.
    with pytest.raises(InitialSyncRefused):
        tasks.run_initial_sync(job.pk)
    monkeypatch.undo()
    job = initial_sync_preview(job_id=job.pk)
    assert job.state == InitialSync.State.READY and job.error == ""


def test_a_run_that_fails_unexpectedly_stops_the_job_and_its_run_and_resumes(
    woo_sandbox, hogia_sandbox, monkeypatch
):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox, flow=Flow.ECOM)
    job = initial_sync_preview(
        job_id=initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_HOGIA).pk
    )
    monkeypatch.setattr("integrations.catalog.initial_sync._bind_matches", broken)

    with pytest.raises(ValueError):
        tasks.run_initial_sync(job.pk)

    job.refresh_from_db()
    assert job.state == InitialSync.State.FAILED and REASON in job.error
    run = SyncRun.objects.get(customer=customer, kind=SyncRun.Kind.INITIAL_SYNC)
    assert run.outcome == SyncRun.Outcome.FAILED and REASON in run.error
    (line,) = errors(customer)
    assert line.run == run and line.shop == shop and REASON in line.message
    monkeypatch.undo()
    assert tasks.run_initial_sync(job.pk) == InitialSync.State.DONE


def test_an_order_poll_that_fails_unexpectedly_is_logged_on_the_shop(woo_sandbox, hogia_sandbox, monkeypatch):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    monkeypatch.setattr("integrations.tasks.orders_poll", broken)

    with pytest.raises(ValueError):
        tasks.poll_shop(shop.pk)

    (line,) = errors(customer)
    assert line.shop == shop and line.object_type == "poll" and REASON in line.message
