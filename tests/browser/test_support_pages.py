"""Support's way through the admin, in Swedish and in English, on a desktop and on a phone."""

import pytest
from django.urls import reverse

from tests.browser.helpers import LANGUAGES, WIDTHS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_support_logs_in_and_walks_through_customers_orders_and_shops(
    open_browser, portal_data, language, width
):
    browser = open_browser(language=language, width=width)
    browser.visit(reverse("admin:index"))
    assert browser.path.startswith(reverse("admin:login"))
    browser.submit({"#id_username": "support", "#id_password": "pw-for-tests-1"})
    assert browser.path == reverse("admin:index")
    customer, order = portal_data["customer"], portal_data["orders"][2]
    assert customer.name in browser.visit(reverse("admin:billing_customer_changelist"))
    browser.visit(reverse("admin:billing_customer_change", args=[customer.pk]))
    assert order.order_number in browser.visit(reverse("admin:integrations_ordertransfer_changelist"))
    browser.visit(reverse("admin:integrations_ordertransfer_change", args=[order.pk]))
    assert portal_data["shop"].name in browser.visit(reverse("admin:integrations_shop_changelist"))
    browser.assert_clean()
