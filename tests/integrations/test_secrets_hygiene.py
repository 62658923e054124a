"""Secrets never leave their encrypted fields: not in a log line (at DEBUG, HTTP libraries
included), not in a queued task's arguments, not on Django's error page, not in the admin's HTML
(which shows their last four characters)."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib import admin
from django.db.models import Model
from django.test import Client, override_settings
from django.urls import NoReverseMatch, reverse
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage

from integrations import intake
from integrations.fields import last_four
from integrations.models import HogiaConnection, Shop
from integrations.orders.poll import orders_poll
from integrations.sandboxes import demo
from integrations.services import hogia_connection_test, shop_connection_test
from integrations.tasks import poll_all_shops, read_all_invoice_statuses, sync_all_catalogs
from integrations.webhooks import webhook_signature
from portal.schedules import schedules_ensure
from tests.factories import StaffFactory
from tests.integrations.helpers import connected_customer, front, sandbox_fault, webhook_orders_run
from tests.integrations.test_order_transfer import transfer_all

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "whsec-hygiene-0123456789abcdef"
LOGGERS = ("", "urllib3", "requests", "django", "django.request", "integrations", "billing", "portal")


@pytest.fixture
def shops(woo_sandbox, hogia_without_rate_limit):
    _customer, shops = connected_customer(woo_sandbox, hogia_without_rate_limit)
    for index, shop in enumerate(shops):
        shop.webhook_secret = f"{WEBHOOK_SECRET}-{index}"
        shop.save()
    return shops


def _secrets(hogia_sandbox) -> list[str]:
    """Every credential the portal holds or was given: the shops' keys and webhook secrets, the
    Hogia client's secret and every bearer token the Hogia sandbox issued."""
    found = [demo.HOGIA_CLIENT_SECRET]
    for shop in Shop.objects.all():
        found += [shop.consumer_key, shop.consumer_secret, shop.webhook_secret]
    for connection in HogiaConnection.objects.all():
        found.append(connection.client_secret)
    with hogia_sandbox.app.lock:
        found += list(hogia_sandbox.app._tokens)
    assert all(len(secret) >= 16 for secret in found)
    return sorted(set(found))


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [secret for secret in secrets if secret in text]


def _signed_post(client, shop, body: bytes, **headers):
    signature = {"HTTP_X_WC_WEBHOOK_SIGNATURE": webhook_signature(body=body, secret=shop.webhook_secret)}
    return client.post(
        f"/hooks/woocommerce/{shop.webhook_token}/",
        data=body,
        content_type="application/json",
        **{**signature, **headers},
    )


def _order_flow(client, shop, woo_sandbox, hogia_sandbox) -> None:
    """One order end to end, with the connection tests, a webhook, a poll and an outage."""
    assert shop_connection_test(shop=shop).ok
    assert hogia_connection_test(connection=shop.customer.hogia_connection).ok
    order = front(shop).place("A1_guest_mixed_vat_processing")
    body = json.dumps(order, default=str).encode()
    response = _signed_post(client, shop, body, HTTP_X_WC_WEBHOOK_TOPIC="order.created")
    assert response.status_code == 200, response.content
    assert _signed_post(client, shop, b"{}", HTTP_X_WC_WEBHOOK_SIGNATURE="forged").status_code == 401
    webhook_orders_run()
    (transfer,) = transfer_all(shop)
    assert transfer.state == "invoiced"
    # Failures log more than successes: a shop that refuses the key, Hogia that refuses the token.
    sandbox_fault(woo_sandbox, mode="status", status=401, count=1)
    with pytest.raises(Exception):  # noqa: B017 - which error is the client's business
        orders_poll(shop=shop)
    sandbox_fault(hogia_sandbox, mode="status", status=500, count=3)
    hogia_connection_test(connection=shop.customer.hogia_connection)


def test_no_secret_in_any_log_record_of_an_order_end_to_end_at_debug_level(
    client, shops, woo_sandbox, hogia_sandbox, caplog
):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    _order_flow(client, shops[0], woo_sandbox, hogia_sandbox)
    # The sandboxes' own access logs are the remote servers' (a shop's web server logs the
    # OAuth query too); everything else is the portal's or its libraries'.
    records = [record for record in caplog.records if not record.name.startswith("integrations.sandboxes")]
    assert any(record.name.startswith("urllib3") for record in records)  # the HTTP libraries spoke
    secrets = _secrets(hogia_sandbox)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    leaking = [
        formatter.format(record)
        for record in records
        if _leaks(formatter.format(record) + repr(vars(record)), secrets)
    ]
    assert leaking == []


def test_no_queued_task_or_schedule_carries_a_secret(
    client, shops, hogia_sandbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        shop = shops[0]
        order = front(shop).place("A1_guest_mixed_vat_processing")
        body = json.dumps(order, default=str).encode()
        _signed_post(client, shop, body, HTTP_X_WC_WEBHOOK_TOPIC="order.created")
        for shop in shops:
            orders_poll(shop=shop)
        poll_all_shops()
        sync_all_catalogs()
        read_all_invoice_statuses()
        schedules_ensure()
    tasks = [SignedPackage.loads(row.payload) for row in OrmQ.objects.all()]
    funcs = {task["func"] for task in tasks}
    assert {"integrations.tasks.webhook_order", "integrations.tasks.poll_shop"} <= funcs
    text = repr(tasks) + repr(list(Schedule.objects.values("func", "args", "kwargs", "hook")))
    assert _leaks(text, _secrets(hogia_sandbox)) == []


def _admin_pages(model: type[Model], obj: Model | None) -> list[str]:
    opts = model._meta
    urls = []
    for name, args in (("changelist", []), ("add", []), ("change", [obj.pk] if obj else None)):
        if args is None:
            continue
        try:
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_{name}", args=args))
        except NoReverseMatch:
            pass
    return urls


def test_no_admin_page_shows_a_full_secret_only_its_last_four(client, shops, hogia_sandbox):
    hogia_connection_test(connection=shops[0].customer.hogia_connection)  # a token issued
    secrets = _secrets(hogia_sandbox)
    client.force_login(StaffFactory(is_superuser=True))
    pages = 0
    for model in admin.site._registry:
        obj = model._default_manager.order_by("pk").first()
        for url in _admin_pages(model, obj):
            response = client.get(url)
            assert response.status_code in (200, 302, 403), (url, response.status_code)
            assert _leaks(response.content.decode(), secrets) == [], url
            pages += 1
    assert pages > 40
    for shop in shops:
        page = client.get(reverse("admin:integrations_shop_change", args=[shop.pk])).content.decode()
        for secret in (shop.consumer_key, shop.consumer_secret, shop.webhook_secret):
            assert last_four(secret) in page
    connection = HogiaConnection.objects.get()
    page = client.get(reverse("admin:integrations_hogiaconnection_change", args=[connection.pk]))
    assert last_four(connection.client_secret) in page.content.decode()
    for model in (Shop, HogiaConnection):  # the lists too, filtered and searched
        url = reverse(f"admin:integrations_{model._meta.model_name}_changelist")
        response = client.get(url, {"q": shops[0].consumer_secret[-6:]})
        assert response.status_code == 200 and _leaks(response.content.decode(), secrets) == []


def _bug(*args, **kwargs):
    raise RuntimeError("a bug in the portal")


@override_settings(DEBUG=True)
@pytest.mark.parametrize("where", ["payload check", "signature check"])
def test_django_s_error_page_for_a_bug_in_the_webhook_shows_no_secret(
    shops, hogia_sandbox, monkeypatch, where
):
    if where == "payload check":
        monkeypatch.setattr(intake, "order_payload_problems", _bug)
    else:  # a frame holding the shop's secret is on the stack

        def signature_check(*, body, secret, signature):
            _bug()

        monkeypatch.setattr(intake, "webhook_signature_valid", signature_check)
    client = Client(raise_request_exception=False)
    body = json.dumps({"id": 5, "status": "processing"}).encode()
    response = _signed_post(client, shops[0], body, HTTP_X_WC_WEBHOOK_TOPIC="order.created")
    assert response.status_code == 500 and b"a bug in the portal" in response.content
    assert b"signature_check" in response.content or where == "payload check"
    assert _leaks(response.content.decode(), _secrets(hogia_sandbox)) == []


@override_settings(DEBUG=True)
def test_django_s_error_page_for_a_bug_under_a_client_call_shows_no_secret(shops, hogia_sandbox, monkeypatch):
    """The frames of the token request and of requests hold the client secret, the token request's
    body and the bearer token: the page shows the frames, not the secrets."""
    import requests.adapters

    secrets = _secrets(hogia_sandbox)  # before the bug: the tokens the sandbox issued so far
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", _bug)
    client = Client(raise_request_exception=False)
    client.force_login(StaffFactory(is_superuser=True))
    for model, obj in ((HogiaConnection, HogiaConnection.objects.get()), (Shop, shops[0])):
        url = reverse(f"admin:integrations_{model._meta.model_name}_changelist")
        response = client.post(url, {"action": "test_connection", "_selected_action": [obj.pk]})
        assert response.status_code == 500 and b"a bug in the portal" in response.content
        assert b"_authorise" in response.content  # the client's frames are on the page
        assert _leaks(response.content.decode(), secrets) == [], model
