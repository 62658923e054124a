"""The customer's admin page as support uses it: the form posted as the browser sends it, with its
inlines' management forms (package changes, flow settings of a new customer, saves after a downgrade)."""

import re
from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import Customer, Subscription
from integrations.models import Flow, FlowSettings, Shop
from integrations.sandboxes import demo
from tests.factories import (
    CustomerFactory,
    FlowSettingsFactory,
    ShopFactory,
    StaffFactory,
    SubscriptionFactory,
    package,
)
from tests.formpost import form_data
from tests.integrations.helpers import front

pytestmark = pytest.mark.django_db

CONFIRM = "subscriptions-{}-confirm_package_change"


@pytest.fixture
def staff(client):
    client.force_login(StaffFactory(username="support"))
    return client


def _page(staff, customer: Customer | None = None) -> tuple[str, dict]:
    url = (
        reverse("admin:billing_customer_change", args=[customer.pk])
        if customer
        else reverse("admin:billing_customer_add")
    )
    response = staff.get(url)
    assert response.status_code == 200
    return url, form_data(response.content.decode(), "customer_form")


def _add_line(data: dict, *, code: str, start: date, customer: Customer | None = None) -> int:
    """Press "Add another subscription" and fill in the new line; returns its index."""
    index = int(data["subscriptions-TOTAL_FORMS"][0])
    data["subscriptions-TOTAL_FORMS"] = [str(index + 1)]
    data.update(
        {
            f"subscriptions-{index}-{name}": [value]
            for name, value in {
                "id": "",
                "customer": str(customer.pk) if customer else "",
                "package": str(package(code).pk),
                "start_date": start.isoformat(),
                "contract_months": "3",
                "notice_months": "1",
                "cancelled_on": "",
                "monthly_fee": "",
            }.items()
        }
    )
    return index


def _errors(response) -> str:
    return response.content.decode() if response.status_code == 200 else ""


def _combo_customer(name: str = "Kombo AB") -> Customer:
    """Package 400 since 2025, flow 3 with campaign prices, two active shops."""
    customer = CustomerFactory(name=name)
    SubscriptionFactory(customer=customer, package=package("400"), start_date=date(2025, 1, 1))
    FlowSettingsFactory(customer=customer, flow=Flow.COMBO, sync_prices=True, sync_campaign_prices=True)
    ShopFactory(customer=customer)
    ShopFactory(customer=customer)
    return customer


# -- item 1: a downgrade no longer breaks every save ------------------------------------------------


def test_a_customer_with_more_than_its_package_includes_can_still_be_saved_and_the_page_says_what_is_not_included(
    staff,
):
    """The bug: a Paket 200 subscription under 2 active shops and flow 3 made every save a server error
    ("'ShopForm' has no field named 'is_active'"): the shops' summary was validated as if edited."""
    customer = _combo_customer()
    SubscriptionFactory(customer=customer, package=package("200"), start_date=date(2026, 1, 1))
    url, data = _page(staff, customer)
    data["notes"] = ["Nedgraderad, ska stänga en butik."]
    response = staff.post(url, data)
    assert response.status_code == 302, _errors(response)[:3000]
    customer.refresh_from_db()
    assert customer.notes == "Nedgraderad, ska stänga en butik."
    assert FlowSettings.objects.get(customer=customer).flow == Flow.COMBO  # kept, the flows skip it
    page = staff.get(url).content.decode()
    assert "flow 3 (Combo) is not included in Paket 200: the catalogue sync stops" in page
    assert "2 active shops, Paket 200 allows 1: deactivate 1 shop first, on its own page" in page


# -- item 2: a package change says what stops, refuses what cannot work ----------------------------


def test_a_downgrade_lists_what_stops_and_is_saved_only_when_confirmed_on_its_line(staff):
    customer = _combo_customer()
    new_year = date(timezone.localdate().year + 1, 1, 1)
    url, data = _page(staff, customer)
    line = _add_line(data, code="200", start=new_year, customer=customer)

    response = staff.post(url, data)
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        f"From 1 January {new_year.year}: flow 3 (Combo) is not included in Paket 200: the catalogue sync "
        f"stops (articles, prices and stock); orders are still transferred; campaign prices are not "
        f"included in Paket 200: they are no longer written to the shops; 2 active shops, Paket 200 "
        f"allows 1: deactivate 1 shop before 1 January {new_year.year}."
    ) in page
    assert "Tick &quot;confirm what stops&quot; on this line to save the package change anyway." in page
    assert not Subscription.objects.filter(customer=customer, package__code="200").exists()

    data[CONFIRM.format(line)] = ["on"]
    response = staff.post(url, data, follow=True)
    assert response.redirect_chain, _errors(response)[:3000]
    assert Subscription.objects.filter(customer=customer, package__code="200", start_date=new_year).exists()
    assert "Package change confirmed. From 1 January" in response.content.decode()

    url, data = _page(staff, customer)  # and the page saves as it is afterwards
    assert staff.post(url, data).status_code == 302


def test_a_downgrade_from_today_with_too_many_active_shops_is_refused_even_when_confirmed(staff):
    customer = _combo_customer()
    url, data = _page(staff, customer)
    line = _add_line(data, code="200", start=timezone.localdate(), customer=customer)
    data[CONFIRM.format(line)] = ["on"]
    response = staff.post(url, data)
    assert response.status_code == 200
    assert (
        "This cannot be confirmed: 2 active shops, Paket 200 allows 1: deactivate 1 shop first, on its "
        "own page."
    ) in response.content.decode()
    assert customer.subscriptions.count() == 1


def test_an_upgrade_needs_no_confirmation(staff):
    customer = _combo_customer()
    url, data = _page(staff, customer)
    _add_line(data, code="800", start=date(timezone.localdate().year + 1, 1, 1), customer=customer)
    response = staff.post(url, data)
    assert response.status_code == 302, _errors(response)[:3000]
    assert customer.subscriptions.count() == 2


def test_two_subscriptions_starting_on_the_same_day_are_refused(staff):
    customer = _combo_customer("Dubbel AB")
    url, data = _page(staff, customer)
    _add_line(data, code="800", start=date(2025, 1, 1), customer=customer)
    response = staff.post(url, data)
    assert (
        "Dubbel AB already has a subscription starting on 1 January 2025 (Paket 400): one package "
        "starts on a day."
    ) in _errors(response)

    url, data = _page(staff, customer)
    _add_line(data, code="800", start=date(2030, 1, 1), customer=customer)
    _add_line(data, code="premium", start=date(2030, 1, 1), customer=customer)
    response = staff.post(url, data)
    assert "Another line starts on 1 January 2030 too: one package starts on a day." in _errors(response)
    assert customer.subscriptions.count() == 1


# -- item 3: a new customer's flow settings --------------------------------------------------------


def _new_customer(staff, name: str = "Ny Kund AB", **changes) -> tuple[str, dict]:
    url, data = _page(staff)
    data["name"] = [name]
    _add_line(data, code="400", start=date(2025, 1, 1))
    data.update({key: [value] for key, value in changes.items()})
    return url, data


def test_a_new_customers_flow_settings_are_saved_as_the_page_shows_them(staff):
    url, data = _new_customer(staff)
    response = staff.post(url, data)
    assert response.status_code == 302, _errors(response)[:3000]
    customer = Customer.objects.get(name="Ny Kund AB")
    settings = FlowSettings.objects.get(customer=customer)  # the pre-filled block, left unchanged
    assert (settings.flow, settings.transfer_orders, settings.sync_articles) == (Flow.ECOM, True, True)
    page = staff.get(reverse("admin:billing_customer_change", args=[customer.pk])).content.decode()
    assert re.search(r'<b>Flow settings:</b> <span class="inline_label">Flow 1 \(ECOM\)\s*</span>', page)


def test_flow_3_for_a_new_customer_is_refused_in_words_not_with_a_server_error(staff):
    url, data = _new_customer(staff, **{"flow_settings-0-flow": "3"})
    response = staff.post(url, data)
    assert response.status_code == 200
    assert (
        "Flow 3 (Combo) needs package 400 or larger (flow 3 (Combo)); Ny Kund AB has no package yet."
        in response.content.decode()
    )


@pytest.mark.sandbox
def test_register_webhooks_registers_the_product_webhooks_of_a_new_customers_flow(
    staff, settings, woo_sandbox
):
    settings.PORTAL_PUBLIC_URL = "http://127.0.0.1:9"  # nothing listens: WooCommerce's pings fail, unseen
    url, data = _new_customer(staff)
    assert staff.post(url, data).status_code == 302
    customer = Customer.objects.get(name="Ny Kund AB")
    prefix, shop_name, key, secret, unit = demo.WOO_STORES[0]
    shop = Shop.objects.create(
        customer=customer,
        name=shop_name,
        url=f"{woo_sandbox.url}{prefix}/",
        consumer_key=key,
        consumer_secret=secret,
        result_unit=unit,
    )
    changelist = reverse("admin:integrations_shop_changelist")

    staff.post(changelist, {"action": "register_webhooks", "_selected_action": [shop.pk]})
    topics = sorted(hook["topic"] for hook in front(shop).call("GET", "webhooks"))
    assert topics == [
        "order.created",
        "order.updated",
        "product.created",
        "product.deleted",
        "product.updated",
    ]  # flow 1 sends the shop's articles to Hogia Smart

    FlowSettings.objects.filter(customer=customer).update(flow=Flow.ERP)
    response = staff.post(
        changelist, {"action": "register_webhooks", "_selected_action": [shop.pk]}, follow=True
    )
    assert (
        "No product webhooks: flow 2 takes the articles from Hogia Smart, not from the shop."
        in response.content.decode()
    )
    shop.refresh_from_db()
    assert sorted(shop.registered_webhooks) == ["order.created", "order.updated"]
