"""The admin refuses a setting the customer's package does not include, naming the package."""
import pytest
from django.core.exceptions import ValidationError

from integrations.models import Flow
from integrations.rules import flow_settings_refusals, flow_switch_enabled
from tests.factories import (CustomerFactory, FlowSettingsFactory, ShopFactory, SubscriptionFactory,
                             package)

pytestmark = pytest.mark.django_db


def _customer(code: str, name: str = "Kund AB"):
    customer = CustomerFactory(name=name)
    SubscriptionFactory(customer=customer, package=package(code))
    return customer


def test_flow_3_needs_package_400():
    settings = FlowSettingsFactory.build(customer=_customer("200", "Mellan AB"), flow=Flow.COMBO)
    with pytest.raises(ValidationError) as caught:
        settings.full_clean()
    assert caught.value.message_dict["flow"] == [
        "Flow 3 (Combo) needs package 400 or larger (flow 3 (Combo)); Mellan AB has package 200."]
    settings.customer = _customer("400")
    settings.full_clean()


@pytest.mark.parametrize("switch, smallest", [("sync_stock", "200"), ("order_status_to_shop", "200"),
                                              ("sync_campaign_prices", "400")])
def test_switches_of_flow_2_need_their_package(switch, smallest):
    settings = FlowSettingsFactory.build(customer=_customer("100", "Liten AB"), flow=Flow.ERP,
                                         **{switch: True})
    refusals = flow_settings_refusals(settings=settings)
    assert list(refusals.by_field) == [switch]
    assert f"needs package {smallest} or larger" in refusals.messages()[0]
    assert "Liten AB has package 100" in refusals.messages()[0]


def test_a_switch_outside_the_flow_is_refused_as_such():
    settings = FlowSettingsFactory.build(customer=_customer("800"), flow=Flow.ECOM, sync_stock=True)
    assert flow_settings_refusals(settings=settings).messages() == [
        "Stock sync is not part of Flow 1 ECOM: WooCommerce is master."]


def test_a_switch_left_on_after_a_downgrade_is_skipped_with_the_reason():
    customer = _customer("400", "Krympt AB")
    settings = FlowSettingsFactory(customer=customer, flow=Flow.COMBO, sync_stock=True)
    assert flow_switch_enabled(settings=settings, name="sync_stock") == (True, "")
    SubscriptionFactory(customer=customer, package=package("100"),
                        start_date=customer.subscriptions.get().start_date.replace(year=2026))
    enabled, reason = flow_switch_enabled(settings=settings, name="sync_stock")
    assert not enabled
    assert reason == "Stock sync needs package 200 or larger (stock); Krympt AB has package 100."


def test_a_second_active_shop_needs_multishop():
    customer = _customer("200", "En Butik AB")
    ShopFactory(customer=customer)
    second = ShopFactory.build(customer=customer)
    with pytest.raises(ValidationError) as caught:
        second.full_clean()
    assert caught.value.message_dict["is_active"] == [
        "Connecting 2 active shops (multishop) needs package 400 or larger (multishop); "
        "En Butik AB has package 200."]
    second.is_active = False  # an inactive second shop is allowed: it books nothing
    second.full_clean()


def test_trigger_statuses_must_be_the_shops_own():
    shop = ShopFactory.build(customer=_customer("400"), trigger_statuses=["processing", "wc-shipped"])
    with pytest.raises(ValidationError) as caught:
        shop.full_clean()
    assert "no order status wc-shipped" in caught.value.message_dict["trigger_statuses"][0]
    shop.order_statuses = shop.order_statuses + [["wc-shipped", "Shipped"]]
    shop.full_clean()
