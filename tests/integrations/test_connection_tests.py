"""The admin's "test connection" through the real clients against the sandboxes on loopback."""

import pytest
import requests
from django.urls import reverse

from integrations.models import FlowSettings, HogiaConnection, Shop, SyncLogEntry, SyncRun
from integrations.sandboxes import demo
from integrations.services import hogia_connection_test, shop_connection_test
from tests.factories import (
    CustomerFactory,
    HogiaConnectionFactory,
    ShopFactory,
    StaffFactory,
    SubscriptionFactory,
    package,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    customer = CustomerFactory(name="Demo Handel AB")
    SubscriptionFactory(customer=customer, package=package("400"))
    return customer


def _shop(customer, woo_sandbox, index=0, **overrides):
    prefix, name, key, secret, unit = demo.WOO_STORES[index]
    values = dict(
        customer=customer,
        name=name,
        url=f"{woo_sandbox.url}{prefix}/",
        consumer_key=key,
        consumer_secret=secret,
        result_unit=unit,
    )
    values.update(overrides)
    return ShopFactory(**values)


def _hogia(customer, hogia_sandbox, **overrides):
    values = dict(
        customer=customer,
        organization_id=demo.HOGIA_ORGANIZATION_ID,
        client_id=demo.HOGIA_CLIENT_ID,
        client_secret=demo.HOGIA_CLIENT_SECRET,
        api_base=hogia_sandbox.url,
        auth_base=hogia_sandbox.url,
    )
    values.update(overrides)
    return HogiaConnectionFactory(**values)


def test_a_shop_reports_version_currency_and_its_own_order_statuses(customer, woo_sandbox):
    shop = _shop(customer, woo_sandbox, index=1)
    requests.post(
        f"{woo_sandbox.url}/butik2/_sandbox/order-statuses", json={"slug": "shipped", "name": "Skickad"}
    ).raise_for_status()
    report = shop_connection_test(shop=shop, triggered_by="test")
    assert report.ok, report.summary
    shop.refresh_from_db()
    assert (shop.store_version, shop.currency, shop.last_check_ok) == ("11.0.1", "SEK", True)
    slugs = [slug for slug, _name in shop.order_statuses]
    assert {"pending", "processing", "completed", "checkout-draft", "shipped"} <= set(slugs)
    assert report.summary.startswith("Connected to WooCommerce 11.0.1, currency SEK")
    run = SyncRun.objects.get(shop=shop)
    assert (run.kind, run.outcome) == (SyncRun.Kind.CONNECTION_TEST, SyncRun.Outcome.SUCCEEDED)


def test_a_wrong_consumer_secret_says_what_failed(customer, woo_sandbox):
    shop = _shop(customer, woo_sandbox, consumer_secret="cs_wrong_secret_0000")
    report = shop_connection_test(shop=shop)
    assert not report.ok
    assert "WooCommerce refused the credentials" in report.summary
    assert "HTTP 401" in report.summary
    shop.refresh_from_db()
    assert shop.last_check_ok is False and shop.last_check_message == report.summary
    entry = SyncLogEntry.objects.get(shop=shop)
    assert entry.level == "error" and "cs_wrong_secret_0000" not in entry.message


def test_an_unreachable_shop_says_so(customer):
    shop = ShopFactory(customer=customer, url="http://127.0.0.1:9/")
    report = shop_connection_test(shop=shop)
    assert not report.ok and report.summary.startswith("Could not reach WooCommerce at http://127.0.0.1:9/")


def test_hogia_reports_company_modules_and_result_units(customer, woo_sandbox, hogia_sandbox):
    _shop(customer, woo_sandbox, index=0)
    connection = _hogia(customer, hogia_sandbox)
    report = hogia_connection_test(connection=connection)
    assert report.ok, report.summary
    connection.refresh_from_db()
    assert connection.company_name == demo.HOGIA_ORGANIZATION_NAME
    assert (connection.has_bookkeeping, connection.has_invoicing, connection.has_point_of_sale) == (
        True,
        True,
        True,
    )
    assert [number for number, _ in connection.result_units] == ["1", "2"]


def test_hogia_flags_a_shop_booked_on_a_missing_result_unit(customer, woo_sandbox, hogia_sandbox):
    _shop(customer, woo_sandbox, index=0, result_unit="9")
    report = hogia_connection_test(connection=_hogia(customer, hogia_sandbox))
    assert not report.ok
    assert "books on result unit 9, which the company does not have" in report.summary


def test_hogia_names_each_article_of_the_flow_settings_it_does_not_have(customer, hogia_sandbox):
    FlowSettings.objects.create(
        customer=customer, fee_article_number="avgift9", discount_article_number="rabatt2"
    )
    report = hogia_connection_test(connection=_hogia(customer, hogia_sandbox))
    assert not report.ok
    assert (
        "the fee article 'avgift9' chosen in the flow settings does not exist in Hogia Smart"
        in report.summary
    )
    assert (
        "the discount article 'rabatt2' chosen in the flow settings does not exist in Hogia Smart"
        in report.summary
    )
    assert "fraktavg" not in report.summary  # the freight article exists


def test_hogia_with_a_wrong_secret_says_what_failed(customer, hogia_sandbox):
    report = hogia_connection_test(connection=_hogia(customer, hogia_sandbox, client_secret="nope"))
    assert not report.ok and "Hogia Smart refused the credentials" in report.summary


def test_the_admin_actions_test_connections(client, customer, woo_sandbox, hogia_sandbox):
    client.force_login(StaffFactory())
    shop = _shop(customer, woo_sandbox)
    connection = _hogia(customer, hogia_sandbox)
    response = client.post(
        reverse("admin:integrations_shop_changelist"),
        {"action": "test_connection", "_selected_action": [shop.pk]},
        follow=True,
    )
    assert "Connected to WooCommerce 11.0.1" in response.content.decode()
    response = client.post(
        reverse("admin:integrations_hogiaconnection_changelist"),
        {"action": "test_connection", "_selected_action": [connection.pk]},
        follow=True,
    )
    assert f"Connected to {demo.HOGIA_ORGANIZATION_NAME}" in response.content.decode()
    assert Shop.objects.get().last_check_ok and HogiaConnection.objects.get().last_check_ok


def test_the_poll_action_reads_orders_or_says_why_it_could_not(client, customer, woo_sandbox):
    client.force_login(StaffFactory())
    reachable = _shop(customer, woo_sandbox)
    unreachable = ShopFactory(customer=customer, name="Borta", url="http://127.0.0.1:9/", is_active=False)
    response = client.post(
        reverse("admin:integrations_shop_changelist"),
        {"action": "poll_orders", "_selected_action": [reachable.pk, unreachable.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert f"{reachable.name}: 0 changed order(s) read." in page
    assert "Borta: Could not reach WooCommerce at http://127.0.0.1:9/" in page
