from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import Feature, Package, Subscription, validate_organisation_number
from billing.selectors import customer_package, feature_refusal, package_smallest_with
from tests.factories import CustomerFactory, SubscriptionFactory, package

pytestmark = pytest.mark.django_db


def test_the_migration_loads_the_seeds_five_packages():
    rows = {p.code: p for p in Package.objects.all()}
    assert list(rows) == ["100", "200", "400", "800", "premium"]
    assert [
        (rows[c].monthly_fee, rows[c].installation_fee, rows[c].monthly_order_limit)
        for c in ("100", "200", "400", "800")
    ] == [
        (Decimal("295.00"), Decimal("2200.00"), 100),
        (Decimal("495.00"), Decimal("4200.00"), 200),
        (Decimal("795.00"), Decimal("6400.00"), 400),
        (Decimal("1195.00"), Decimal("8500.00"), 800),
    ]
    premium = rows["premium"]
    assert premium.monthly_fee is None and premium.monthly_order_limit is None
    assert all(p.extra_shop_fee == Decimal("295.00") for p in rows.values())


@pytest.mark.parametrize(
    "feature, smallest",
    [
        (Feature.ORDER_STATUS, "200"),
        (Feature.STOCK, "200"),
        (Feature.PRICE_STRUCTURES, "400"),
        (Feature.MULTISHOP, "400"),
        (Feature.PLUGIN, "800"),
        (Feature.KEY_ACCOUNT_MANAGER, "premium"),
        (Feature.COMBO_FLOW, "400"),
    ],
)
def test_each_feature_starts_at_the_package_the_seed_says(feature, smallest):
    assert package_smallest_with(feature=feature).code == smallest
    assert not package("100").includes(feature)


def test_the_newest_started_subscription_is_in_force():
    customer = CustomerFactory()
    assert customer_package(customer=customer) is None
    SubscriptionFactory(customer=customer, package=package("100"))
    SubscriptionFactory(customer=customer, package=package("800"), start_date=date.today())
    SubscriptionFactory(
        customer=customer, package=package("200"), start_date=date.today() + timedelta(days=1)
    )  # not started yet
    assert customer_package(customer=customer).code == "800"


def test_a_refusal_names_the_package_needed_and_the_one_the_customer_has():
    customer = CustomerFactory(name="Liten AB")
    SubscriptionFactory(customer=customer, package=package("200"))
    message = feature_refusal(customer=customer, feature=Feature.PLUGIN, what="Customer plugins")
    assert message == "Customer plugins needs package 800 or larger (plugins); Liten AB has package 200."
    assert feature_refusal(customer=customer, feature=Feature.STOCK, what="Stock") is None


@pytest.mark.parametrize("number", ["556036-0793", "5560360793", "16556036-0793", "212000-0142"])
def test_valid_organisation_numbers_pass(number):
    validate_organisation_number(number)


@pytest.mark.parametrize(
    "number, code", [("556036-0794", "checksum"), ("55603-0793", "format"), ("556036-079X", "format")]
)
def test_a_mistyped_organisation_number_is_refused(number, code):
    with pytest.raises(ValidationError) as caught:
        validate_organisation_number(number)
    assert caught.value.code == code


def test_two_subscriptions_of_a_customer_cannot_start_on_the_same_day():
    customer = CustomerFactory(name="Dubbel AB")
    first = SubscriptionFactory(customer=customer, package=package("400"), start_date=date(2027, 1, 1))
    second = Subscription(customer=customer, package=package("200"), start_date=date(2027, 1, 1))
    with pytest.raises(ValidationError) as caught:
        second.full_clean()
    assert caught.value.message_dict["start_date"] == [
        "Dubbel AB already has a subscription starting on 1 January 2027 (Paket 400): one package starts "
        "on a day. Change that subscription, or choose another start date."
    ]
    first.full_clean()  # the subscription itself is not its own twin
    second.start_date = date(2027, 1, 2)
    second.full_clean()
    Subscription(customer=CustomerFactory(), package=package("200"), start_date=date(2027, 1, 1)).full_clean()
