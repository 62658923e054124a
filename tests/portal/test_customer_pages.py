"""The customer's own pages: log in, see each shop's status, the orders and one order's timeline,
and nothing of other customers."""
import pytest
from django.urls import reverse

from integrations.models import Flow, FlowSettings, OrderEvent, OrderTransfer
from tests.factories import (CustomerFactory, FlowSettingsFactory, ShopFactory, StaffFactory, SubscriptionFactory,
                             UserFactory, package)

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer_user():
    customer = CustomerFactory(name="Kaffe & Kakor AB")
    SubscriptionFactory(customer=customer, package=package("400"))
    shop = ShopFactory(customer=customer, name="Kafébutiken")
    user = UserFactory(username="agda")
    customer.users.add(user)
    needs = OrderTransfer.objects.create(shop=shop, woo_order_id=41, order_number="41",
                                         sequence_id="00000000-0000-4000-8000-000000000041",
                                         state=OrderTransfer.State.NEEDS_ATTENTION, buyer="Exempel Handel AB",
                                         last_error="Hogia Smart rejected the invoice: unknown article SE-X",
                                         attention="Create the article in Hogia Smart, then retry.")
    OrderEvent.objects.create(transfer=needs, kind="received", message="Received by webhook (status processing).")
    OrderEvent.objects.create(transfer=needs, kind="needs_attention", message="Hogia Smart rejected the invoice.")
    OrderTransfer.objects.create(shop=shop, woo_order_id=39, order_number="39", invoice_number="7",
                                 sequence_id="00000000-0000-4000-8000-000000000039",
                                 state=OrderTransfer.State.INVOICED, buyer="Maria Lindqvist")
    return user, customer, needs


def test_the_login_page_sends_customers_to_their_page_and_staff_to_the_admin(client, customer_user):
    response = client.post(reverse("login"), {"username": "agda", "password": "pw-for-tests-1"})
    assert response.status_code == 302 and response["Location"] == reverse("account")
    client.logout()
    StaffFactory(username="support")
    response = client.post(reverse("login"), {"username": "support", "password": "pw-for-tests-1"})
    assert response["Location"] == reverse("admin:index")


def test_the_account_page_shows_shop_status_orders_and_what_to_do(client, customer_user):
    user, customer, _needs = customer_user
    client.force_login(user)
    page = client.get(reverse("account")).content.decode()
    assert "Kafébutiken" in page and "Create the article in Hogia Smart, then retry." in page
    assert "Maria Lindqvist" in page and "Exempel Handel AB" in page
    only_attention = client.get(reverse("account"), {"state": "needs_attention"}).content.decode()
    assert "Exempel Handel AB" in only_attention and "Maria Lindqvist" not in only_attention


def test_an_order_page_shows_its_timeline_but_never_another_customers_order(client, customer_user):
    user, customer, needs = customer_user
    client.force_login(user)
    page = client.get(reverse("account-order", args=[needs.pk])).content.decode()
    assert "Received by webhook (status processing)." in page
    assert "Hogia Smart rejected the invoice." in page
    assert "Create the article in Hogia Smart, then retry." in page
    other_shop = ShopFactory(customer=CustomerFactory(name="Annan AB"))
    other = OrderTransfer.objects.create(shop=other_shop, woo_order_id=1, order_number="1",
                                         sequence_id="00000000-0000-4000-8000-000000000001")
    assert client.get(reverse("account-order", args=[other.pk])).status_code == 404


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get(reverse("account"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_account_page_says_which_shop_waits_for_its_prices_and_stock(client, customer_user):
    user, customer, _needs = customer_user
    FlowSettingsFactory(customer=customer, flow=Flow.COMBO)
    ShopFactory(customer=customer, name="Nya butiken", catalog__overwrite_accepted_at=None)
    client.force_login(user)
    page = client.get(reverse("account")).content.decode()
    notice = "Prices and stock are not written to this shop until the initial sync's differences are accepted."
    assert page.count(notice) == 1 and page.index("Kafébutiken") < page.index("Nya butiken") < page.index(notice)
    FlowSettings.objects.filter(customer=customer).update(flow=Flow.ECOM)  # flow 1 writes nothing to a shop
    assert notice not in client.get(reverse("account")).content.decode()
