"""The customer's way through their own pages, in Swedish and in English, on a desktop and on a
phone: their orders and one order, without sideways scrolling and without technical errors."""

import pytest
from django.urls import reverse

from tests.browser.helpers import DESKTOP_WIDTH, LANGUAGES, WIDTHS
from tests.factories import CustomerFactory, ShopFactory, SubscriptionFactory, UserFactory, package

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_customer_logs_in_and_reads_orders_and_one_order(open_browser, portal_data, language, width):
    browser = open_browser(language=language, width=width)
    browser.visit(reverse("login"))
    browser.submit({"#id_username": "agda", "#id_password": "pw-for-tests-1"})
    assert browser.path == reverse("account")
    older = browser.visit(reverse("account") + "?page=2")
    assert "Långnamnsson Handelsbolag 1001" in older
    found = browser.visit(reverse("account") + "?q=Handelsbolag+1002")
    assert "Långnamnsson Handelsbolag 1002" in found and "Långnamnsson Handelsbolag 1001" not in found
    queued = portal_data["orders"][1]
    page = browser.visit(reverse("account-order", args=[queued.pk]))
    assert queued.order_number in page and "503" not in page
    if language == "en":
        assert "Waiting for Hogia Smart, retried automatically" in page
    browser.assert_clean()


def test_short_shop_names_keep_their_status_labels_on_one_line(open_browser):
    """Short names (the demo's "Butik 1") and nothing to report make the shop column narrow: the
    label "fungerar" once broke into "funger" / "ar" there, on a desktop."""
    customer = CustomerFactory(name="Demo Handel AB")
    SubscriptionFactory(customer=customer, package=package("400"))
    user = UserFactory(username="demo")
    customer.users.add(user)
    for number in (1, 2):
        ShopFactory(
            customer=customer,
            name=f"Butik {number}",
            last_check_ok=True,
            registered_webhooks={"order.created": 1},
        )
    browser = open_browser(language="sv", width=DESKTOP_WIDTH)
    browser.visit(reverse("login"))
    page = browser.submit({"#id_username": "demo", "#id_password": "pw-for-tests-1"})
    assert page.count("fungerar") == 2
    browser.assert_clean()
