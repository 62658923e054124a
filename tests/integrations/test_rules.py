"""The admin refuses a setting the customer's package does not include, naming the package; a package
change says what stops working."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import formats, timezone

from billing.models import OrderUsage
from integrations.models import Flow
from integrations.rules import flow_settings_refusals, flow_switch_enabled, package_change_check
from tests.factories import CustomerFactory, FlowSettingsFactory, ShopFactory, SubscriptionFactory, package

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
        "Flow 3 (Combo) needs package 400 or larger (flow 3 (Combo)); Mellan AB has package 200."
    ]
    settings.customer = _customer("400")
    settings.full_clean()


@pytest.mark.parametrize(
    "switch, smallest",
    [("sync_stock", "200"), ("order_status_to_shop", "200"), ("sync_campaign_prices", "400")],
)
def test_switches_of_flow_2_need_their_package(switch, smallest):
    settings = FlowSettingsFactory.build(
        customer=_customer("100", "Liten AB"), flow=Flow.ERP, **{switch: True}
    )
    refusals = flow_settings_refusals(settings=settings)
    assert list(refusals.by_field) == [switch]
    assert f"needs package {smallest} or larger" in refusals.messages()[0]
    assert "Liten AB has package 100" in refusals.messages()[0]


def test_a_switch_outside_the_flow_is_refused_as_such():
    settings = FlowSettingsFactory.build(customer=_customer("800"), flow=Flow.ECOM, sync_stock=True)
    assert flow_settings_refusals(settings=settings).messages() == [
        "Stock sync is not part of Flow 1 ECOM: WooCommerce is master."
    ]


def test_a_switch_left_on_after_a_downgrade_is_skipped_with_the_reason():
    customer = _customer("400", "Krympt AB")
    settings = FlowSettingsFactory(customer=customer, flow=Flow.COMBO, sync_stock=True)
    assert flow_switch_enabled(settings=settings, name="sync_stock") == (True, "")
    SubscriptionFactory(
        customer=customer,
        package=package("100"),
        start_date=customer.subscriptions.get().start_date.replace(year=2026),
    )
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
        "En Butik AB has package 200."
    ]
    second.is_active = False  # an inactive second shop is allowed: it books nothing
    second.full_clean()


def test_trigger_statuses_must_be_the_shops_own():
    shop = ShopFactory.build(customer=_customer("400"), trigger_statuses=["processing", "wc-shipped"])
    with pytest.raises(ValidationError) as caught:
        shop.full_clean()
    assert "no order status wc-shipped" in caught.value.message_dict["trigger_statuses"][0]
    shop.order_statuses = shop.order_statuses + [["wc-shipped", "Shipped"]]
    shop.full_clean()


def test_flow_settings_kept_after_a_downgrade_are_not_refused_but_turning_something_on_is():
    customer = _customer("400", "Krympt AB")
    settings = FlowSettingsFactory(customer=customer, flow=Flow.COMBO, sync_prices=True)
    SubscriptionFactory(customer=customer, package=package("200"), start_date=timezone.localdate())
    settings.freight_article_number = "frakt"
    settings.full_clean()  # the customer's page still saves: flow 3 was allowed when it was chosen
    settings.sync_campaign_prices = True
    assert list(flow_settings_refusals(settings=settings).by_field) == ["sync_campaign_prices"]
    settings.sync_campaign_prices = False
    settings.flow = Flow.ERP
    settings.save()
    settings.flow = Flow.COMBO  # chosen again: now held against the package
    assert flow_settings_refusals(settings=settings).messages() == [
        "Flow 3 (Combo) needs package 400 or larger (flow 3 (Combo)); Krympt AB has package 200."
    ]


def _combo_customer(name: str = "Kombo AB"):
    """Package 400 since 2025, flow 3 with campaign prices, stock and order status, two shops."""
    customer = _customer("400", name)
    FlowSettingsFactory(
        customer=customer,
        flow=Flow.COMBO,
        sync_prices=True,
        sync_campaign_prices=True,
        sync_stock=True,
        order_status_to_shop=True,
    )
    ShopFactory(customer=customer)
    ShopFactory(customer=customer)
    return customer


def test_a_downgrade_says_what_stops_working_and_from_when():
    customer = _combo_customer()
    new_year = date(timezone.localdate().year + 1, 1, 1)
    change = package_change_check(customer=customer, package=package("200"), start_date=new_year)
    assert change.summary() == (
        f"From 1 January {new_year.year}: flow 3 (Combo) is not included in Paket 200: the catalogue sync "
        f"stops (articles, prices and stock); orders are still transferred; campaign prices are not included "
        f"in Paket 200: they are no longer written to the shops; 2 active shops, Paket 200 allows 1: "
        f"deactivate 1 shop before 1 January {new_year.year}."
    )
    assert change.refused == ()  # the shop can still be deactivated before then
    to_100 = package_change_check(customer=customer, package=package("100"), start_date=new_year)
    assert [s.key for s in to_100.shortfalls] == [
        "flow",
        "sync_campaign_prices",
        "sync_stock",
        "order_status_to_shop",
        "shops",
    ]
    assert not package_change_check(customer=customer, package=package("800"), start_date=new_year)


def test_a_downgrade_from_today_refuses_more_active_shops_than_the_package_allows():
    customer = _combo_customer()
    today = timezone.localdate()
    change = package_change_check(customer=customer, package=package("200"), start_date=today)
    assert [s.text for s in change.refused] == [
        "2 active shops, Paket 200 allows 1: deactivate 1 shop first, on its own page"
    ]
    assert change.start == today
    back_dated = package_change_check(
        customer=customer, package=package("200"), start_date=today - timedelta(days=40)
    )
    assert back_dated.start == today and back_dated.refused  # things stop now, not in the past
    customer.shops.filter(pk=customer.shops.first().pk).update(is_active=False)
    change = package_change_check(customer=customer, package=package("200"), start_date=today)
    assert not change.refused and [s.key for s in change.shortfalls] == ["flow", "sync_campaign_prices"]


def test_only_what_the_package_before_included_stops():
    customer = _combo_customer()
    new_year = date(timezone.localdate().year + 1, 1, 1)
    SubscriptionFactory(customer=customer, package=package("100"), start_date=new_year)
    # From 100 to 200 a year later: stock and order status come back, nothing that works stops.
    assert not package_change_check(
        customer=customer, package=package("200"), start_date=new_year.replace(year=new_year.year + 1)
    )


def test_a_later_subscription_ends_what_stops_and_a_change_is_judged_without_its_old_self():
    customer = _combo_customer()
    new_year = date(timezone.localdate().year + 1, 1, 1)
    SubscriptionFactory(customer=customer, package=package("800"), start_date=new_year.replace(month=6))
    change = package_change_check(customer=customer, package=package("200"), start_date=new_year)
    assert change.until == new_year.replace(month=5, day=31)
    assert change.summary().startswith(f"From 1 January {new_year.year} to 31 May {new_year.year}: flow 3")
    downgrade = SubscriptionFactory(customer=customer, package=package("200"), start_date=new_year)
    # Changing that downgrade to package 100: what 200 lacks stops as well, since 400 was before it.
    change = package_change_check(
        customer=customer, package=package("100"), start_date=new_year, changing=downgrade
    )
    assert "sync_stock" in [s.key for s in change.shortfalls]
    assert "flow" in [s.key for s in change.shortfalls]


def test_more_orders_than_the_smaller_package_includes_are_said_with_the_month():
    customer = _customer("400", "Order AB")
    month = timezone.localdate().replace(day=1)
    OrderUsage.objects.bulk_create(
        [
            OrderUsage(
                customer=customer,
                order_key=f"o-{n}",
                arrived_at=timezone.now(),
                status=OrderUsage.Status.COUNTED,
                month=month,
            )
            for n in range(150)
        ]
    )
    change = package_change_check(
        customer=customer, package=package("100"), start_date=date(month.year + 1, 1, 1)
    )
    assert change.summary().endswith(
        f"150 orders were transferred in {formats.date_format(month, 'F Y')}, Paket 100 includes 100 a month: "
        f"orders over that are held until the next month or a larger package."
    )
    assert not package_change_check(
        customer=customer, package=package("200"), start_date=date(month.year + 1, 1, 1)
    )
