"""What support meets in the admin forms: masked secrets and package refusals."""

import pytest
from django.urls import reverse

from integrations.models import FlowSettings, Shop
from tests.factories import (
    CustomerFactory,
    FlowSettingsFactory,
    ShopFactory,
    StaffFactory,
    SubscriptionFactory,
    package,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(StaffFactory())
    return client


def _shop_form(shop, **changes):
    data = {
        "customer": shop.customer_id,
        "name": shop.name,
        "url": shop.url,
        "consumer_key": "",
        "consumer_secret": "",
        "webhook_secret": "",
        "result_unit": shop.result_unit,
        "is_active": "on",
        "trigger_statuses": shop.trigger_statuses,
    }
    data.update(changes)
    return data


def test_a_secret_is_never_sent_to_the_browser_only_its_last_four(staff):
    shop = ShopFactory(consumer_secret="cs_0123456789_wxyz")
    page = staff.get(reverse("admin:integrations_shop_change", args=[shop.pk])).content.decode()
    assert "cs_0123456789_wxyz" not in page
    assert "Stored: …wxyz. Leave empty to keep it." in page
    assert shop.webhook_secret not in page


def test_an_empty_secret_field_keeps_the_stored_secret_and_a_typed_one_replaces_it(staff):
    shop = ShopFactory(consumer_key="ck_keep_me_1111", consumer_secret="cs_keep_me_2222")
    url = reverse("admin:integrations_shop_change", args=[shop.pk])
    response = staff.post(url, _shop_form(shop, name="Nytt namn"))
    assert response.status_code == 302, response.content.decode()[:2000]
    shop.refresh_from_db()
    assert (shop.name, shop.consumer_key, shop.consumer_secret) == (
        "Nytt namn",
        "ck_keep_me_1111",
        "cs_keep_me_2222",
    )
    staff.post(url, _shop_form(shop, consumer_secret="cs_new_one_3333"))
    shop.refresh_from_db()
    assert shop.consumer_secret == "cs_new_one_3333"


def test_a_new_shop_gets_a_generated_webhook_secret(staff):
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package("100"))
    response = staff.post(
        reverse("admin:integrations_shop_add"),
        {
            "customer": customer.pk,
            "name": "Webbutik",
            "url": "butik.example.se",
            "consumer_key": "ck_1",
            "consumer_secret": "cs_1",
            "webhook_secret": "",
            "result_unit": "",
            "is_active": "on",
            "trigger_statuses": ["processing"],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    shop = Shop.objects.get(name="Webbutik")
    assert shop.url == "https://butik.example.se"
    assert len(shop.webhook_secret) >= 40


def test_trigger_statuses_are_offered_from_the_shops_own_statuses(staff):
    shop = ShopFactory(
        order_statuses=[["processing", "Behandlas"], ["shipped", "Skickad"]], trigger_statuses=["processing"]
    )
    page = staff.get(reverse("admin:integrations_shop_change", args=[shop.pk])).content.decode()
    assert "Skickad (shipped)" in page and "Behandlas (processing)" in page
    assert "On hold" not in page


def test_the_admin_refuses_flow_3_on_package_200_and_names_the_package(staff):
    customer = CustomerFactory(name="Mellan AB")
    SubscriptionFactory(customer=customer, package=package("200"))
    settings = FlowSettingsFactory(customer=customer)
    url = reverse("admin:integrations_flowsettings_change", args=[settings.pk])
    form = {
        f.name: getattr(settings, f.name)
        for f in FlowSettings._meta.fields
        if f.name not in ("id", "updated_at", "live_plugin")
    }  # live_plugin: switched on from its page
    form = {k: ("on" if v is True else v) for k, v in form.items() if v is not False}
    form.update(customer=customer.pk, flow=3)
    response = staff.post(url, form)
    assert response.status_code == 200
    assert (
        "Flow 3 (Combo) needs package 400 or larger (flow 3 (Combo)); Mellan AB has package 200."
        in response.content.decode()
    )
    settings.refresh_from_db()
    assert settings.flow == 1


def test_the_customer_list_shows_package_flow_and_shops_in_a_fixed_number_of_queries(
    staff, django_assert_max_num_queries
):
    for index in range(5):
        customer = CustomerFactory(name=f"Kund {index}")
        SubscriptionFactory(customer=customer, package=package("400"))
        FlowSettingsFactory(customer=customer, flow=3)
        ShopFactory(customer=customer)
    with django_assert_max_num_queries(12):
        page = staff.get(reverse("admin:billing_customer_changelist")).content.decode()
    assert page.count("Paket 400") >= 5
