"""The catalogue's admin pages: the initial sync's preview and progress, the price-list note, and a new
shop's prices and stock waiting for support to accept the initial sync's differences."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.catalog.initial_sync import initial_sync_create, initial_sync_preview, initial_sync_progress
from integrations.catalog.sync import CatalogReport
from integrations.models import (
    Flow,
    FlowSettings,
    HogiaArticle,
    HogiaConnection,
    InitialSync,
    InitialSyncItem,
    Shop,
    ShopCatalog,
)
from tests.factories import (
    CustomerFactory,
    FlowSettingsFactory,
    HogiaConnectionFactory,
    ShopFactory,
    StaffFactory,
)
from tests.integrations.helpers import connected_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(StaffFactory(username="support", is_superuser=True))
    return client


def test_an_initial_sync_is_created_in_the_admin_and_shows_its_preview_and_progress(
    staff_client, woo_sandbox, hogia_sandbox
):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    response = staff_client.post(
        reverse("admin:integrations_initialsync_add"),
        {"shop": shop.pk, "direction": InitialSync.Direction.TO_SHOP},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    job = InitialSync.objects.get()
    assert job.customer == customer and job.state == InitialSync.State.NEW
    started = timezone.now() - timezone.timedelta(seconds=10)
    job.state, job.total, job.done = InitialSync.State.RUNNING, 100, 40
    job.started_at, job.heartbeat_at = started, started + timezone.timedelta(seconds=10)
    job.report = {"segment_started_at": started.isoformat(), "segment_started_done": 0}
    job.preview = {
        "counts": {"match": 3, "duplicated_in_shop": 1, "to_write": 100},
        "duplicated_in_shop": {"SKU-1": ["A (id 1)", "B (id 2)"]},
        "only_in_hogia": ["X-1"],
    }
    job.save()
    InitialSyncItem.objects.create(job=job, sku="X-1")
    assert initial_sync_progress(job=job)["eta_seconds"] == 15  # 60 left at 4 a second
    page = staff_client.get(reverse("admin:integrations_initialsync_change", args=[job.pk])).content.decode()
    assert "40 / 100 written" in page and "4/s" in page and "15 s" in page
    assert 'http-equiv="refresh"' in page  # it refreshes itself while running
    assert "SKU-1: A (id 1), B (id 2)" in page and "no price lists" in page


def test_a_new_job_says_its_preview_is_not_made_yet(staff_client, woo_sandbox, hogia_sandbox):
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    job = initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_HOGIA)
    assert initial_sync_progress(job=job)["percent"] is None
    for page in (
        staff_client.get(reverse("admin:integrations_initialsync_changelist")),
        staff_client.get(reverse("admin:integrations_initialsync_change", args=[job.pk])),
    ):
        text = page.content.decode()
        assert "preview not made yet" in text and "0 / 0 written" not in text and "100.0 %" not in text


def test_the_article_list_says_where_price_lists_went(staff_client, woo_sandbox, hogia_sandbox):
    customer, _shops = connected_customer(woo_sandbox, hogia_sandbox)
    HogiaArticle.objects.create(
        customer=customer,
        number="A-1",
        row_version=3,
        data={
            "name": "Artikel",
            "prices": {"ordinary": "10.00", "campaign": "8.00"},
            "stockBalance": "4",
            "sendToWebshop": True,
        },
    )
    page = staff_client.get(reverse("admin:integrations_hogiaarticle_changelist")).content.decode()
    assert "Hogia Smart has no price lists" in page and "A-1" in page


def test_the_catalogue_sync_action_queues_one_task_per_customer(
    staff_client, woo_sandbox, hogia_sandbox, django_capture_on_commit_callbacks, monkeypatch
):
    customer, shops = connected_customer(woo_sandbox, hogia_sandbox)
    queued = []
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda func, *args, **kwargs: queued.append((func, args))
    )
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            reverse("admin:integrations_shop_changelist"),
            {"action": "sync_catalogue_now", "_selected_action": [s.pk for s in Shop.objects.all()]},
        )
    assert queued == [("integrations.tasks.sync_catalog", (customer.pk, False, "support (admin)"))]


# -- a newly connected shop: the differences, and the acceptance ----------------------------------------

HELD = "Prices and stock are not written to this shop until the initial sync&#x27;s differences are accepted."


def held_customer(woo_sandbox, hogia_sandbox):
    customer, shops = connected_customer(
        woo_sandbox, hogia_sandbox, flow=Flow.COMBO, overwrite_accepted=False
    )
    FlowSettings.objects.filter(customer=customer).update(
        sync_prices=True, sync_campaign_prices=True, sync_stock=True
    )
    HogiaConnection.objects.filter(customer=customer).update(rate_limit_requests=0)
    return customer, shops


@pytest.mark.usefixtures("hogia_without_rate_limit")
def test_the_shop_customer_and_initial_sync_pages_say_what_waits_for_acceptance(
    staff_client, woo_sandbox, hogia_sandbox
):
    customer, (shop, _second) = held_customer(woo_sandbox, hogia_sandbox)
    job = initial_sync_preview(
        job_id=initial_sync_create(
            shop=shop, direction=InitialSync.Direction.TO_HOGIA, requested_by="support"
        ).pk
    )
    allow_url = reverse("admin:integrations_shop_allow_overwrite", args=[shop.pk])

    shop_page = staff_client.get(reverse("admin:integrations_shop_change", args=[shop.pk])).content.decode()
    assert HELD in shop_page and allow_url in shop_page
    customer_page = staff_client.get(
        reverse("admin:billing_customer_change", args=[customer.pk])
    ).content.decode()
    assert customer_page.count(HELD) == 2 and allow_url in customer_page  # both shops wait

    page = staff_client.get(reverse("admin:integrations_initialsync_change", args=[job.pk])).content.decode()
    assert HELD in page and "When this sync has run, the differences below count as accepted" in page
    assert "<th>in the shop now</th><th>would become</th>" in page
    assert (
        "<tr><td>SE-BRYGG-01</td><td>Kaffebryggare Deluxe (id 28)</td><td>regular price</td>"
        "<td>1\xa0299,00\xa0kr</td><td>799,00\xa0kr</td></tr>"
    ) in page  # amounts in Swedish form
    assert "<td>sale price</td><td>999,00\xa0kr</td><td>none</td>" in page
    assert "<td>stock</td><td>19</td><td>6</td>" in page
    assert "<td>stock</td><td>stock not managed in the shop</td><td>left alone</td>" in page
    assert (
        "8 matched product(s) would change, 1 would not. Prices as the shop shows them: including VAT."
        in page
    )

    FlowSettings.objects.filter(customer=customer).update(flow=Flow.ECOM)
    shop_page = staff_client.get(reverse("admin:integrations_shop_change", args=[shop.pk])).content.decode()
    assert HELD not in shop_page and "Flow 1: the portal writes no prices or stock to this shop." in shop_page


@pytest.mark.usefixtures("hogia_without_rate_limit")
def test_the_admin_allows_overwriting_after_showing_the_latest_differences(
    staff_client, woo_sandbox, hogia_sandbox
):
    customer, (shop, second) = held_customer(woo_sandbox, hogia_sandbox)
    changelist = reverse("admin:integrations_shop_changelist")
    allow_url = reverse("admin:integrations_shop_allow_overwrite", args=[shop.pk])

    # Several shops at once: no, each has its own differences to look at.
    response = staff_client.post(
        changelist, {"action": "allow_overwrite", "_selected_action": [shop.pk, second.pk]}, follow=True
    )
    assert "each shop&#x27;s differences are reviewed on their own page" in response.content.decode()
    # No preview yet: the page says the differences are not known.
    response = staff_client.post(changelist, {"action": "allow_overwrite", "_selected_action": [shop.pk]})
    assert response.status_code == 302 and response["Location"] == allow_url
    assert (
        "No initial sync preview has been made for this shop" in staff_client.get(allow_url).content.decode()
    )

    older = initial_sync_preview(
        job_id=initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_HOGIA).pk
    )
    job = initial_sync_preview(
        job_id=initial_sync_create(shop=shop, direction=InitialSync.Direction.TO_HOGIA).pk
    )
    page = staff_client.get(allow_url).content.decode()
    assert f"Differences found by initial sync #{job.pk} " in page and f"#{older.pk} " not in page
    assert "<td>regular price</td><td>1\xa0299,00\xa0kr</td><td>799,00\xa0kr</td>" in page
    assert not ShopCatalog.objects.filter(
        shop=shop, overwrite_accepted_at__isnull=False
    ).exists()  # a GET: nothing

    response = staff_client.post(allow_url)
    assert response.status_code == 302
    catalog = ShopCatalog.objects.get(shop=shop)
    assert catalog.overwrite_accepted_at is not None and catalog.overwrite_accepted_by == "support"
    assert catalog.behind_from == 0
    assert not ShopCatalog.objects.filter(shop=second, overwrite_accepted_at__isnull=False).exists()
    shop_page = staff_client.get(response["Location"]).content.decode()
    assert HELD not in shop_page and "Written since" in shop_page and "(allowed by support)" in shop_page


def test_the_catalogue_sync_action_says_why_it_queued_nothing(
    staff_client, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda func, *args, **kwargs: queued.append((func, args))
    )
    without_settings = ShopFactory(customer=CustomerFactory(name="A Utan inställningar AB"))
    paused = ShopFactory(customer=CustomerFactory(name="B Pausad AB"))
    FlowSettingsFactory(customer=paused.customer, paused=True)
    unconnected = ShopFactory(customer=CustomerFactory(name="C Utan Hogia AB"))
    FlowSettingsFactory(customer=unconnected.customer)
    shopless = FlowSettingsFactory(customer=CustomerFactory(name="D Utan butik AB"))
    HogiaConnectionFactory(customer=shopless.customer)
    ShopFactory(customer=shopless.customer, is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:integrations_shop_changelist"),
            {
                "action": "sync_catalogue_now",
                "_selected_action": [without_settings.pk, paused.pk, unconnected.pk],
            },
            follow=True,
        )
        page = response.content.decode()
        response = staff_client.post(
            reverse("admin:integrations_flowsettings_changelist"),
            {"action": "sync_catalogue_now", "_selected_action": [shopless.pk]},
            follow=True,
        )
        page += response.content.decode()
    assert queued == []
    assert "A Utan inställningar AB: nothing queued: the customer has no flow settings." in page
    assert "B Pausad AB: nothing queued: the integration is paused." in page
    assert "C Utan Hogia AB: nothing queued: the customer has no Hogia Smart connection." in page
    assert "D Utan butik AB: nothing queued: the customer has no active shop." in page
    assert "queued." not in page.replace("nothing queued:", "")


def test_a_sync_asked_for_by_support_says_so_on_its_runs(
    staff_client, monkeypatch, django_capture_on_commit_callbacks
):
    from integrations import tasks

    queued = []
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda func, *args, **kwargs: queued.append((func, args))
    )
    shop = ShopFactory(customer=CustomerFactory(name="E Redo AB"))
    FlowSettingsFactory(customer=shop.customer)
    HogiaConnectionFactory(customer=shop.customer)
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            reverse("admin:integrations_shop_changelist"),
            {"action": "sync_catalogue_now", "_selected_action": [shop.pk]},
            follow=True,
        )
    assert queued == [("integrations.tasks.sync_catalog", (shop.customer.pk, False, "support (admin)"))]
    seen = []
    monkeypatch.setattr(
        "integrations.catalog.sync.catalog_sync",
        lambda **kwargs: seen.append(kwargs["triggered_by"]) or CatalogReport(),
    )
    tasks.sync_catalog(*queued[0][1])
    assert seen == ["support (admin)"]
