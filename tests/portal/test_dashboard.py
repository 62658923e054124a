"""The admin home shows what needs a person, and each shop's health, in a fixed number of queries."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.health import AMBER, GREEN, RED, shop_health, shops_with_health
from integrations.models import Flow, OrderTransfer, Shop, SyncRun
from integrations.services import sync_run_finish, sync_run_start
from portal.dashboard import support_tallies
from tests.factories import FlowSettingsFactory, ShopFactory, StaffFactory

pytestmark = pytest.mark.django_db
State = OrderTransfer.State


def transfer(shop: Shop, state: str, number: int) -> OrderTransfer:
    return OrderTransfer.objects.create(
        shop=shop,
        woo_order_id=number,
        order_number=str(number),
        state=state,
        sequence_id=uuid.uuid4(),
        quota_key=f"k{number}",
    )


def tallies() -> dict:
    return {t.key: t.count for t in support_tallies()}


def test_the_admin_home_counts_what_needs_a_person_and_links_to_it(client):
    shop = ShopFactory(last_check_ok=True, registered_webhooks={"order.created": 12})
    broken = ShopFactory(last_check_ok=False, last_check_message="401 Unauthorized")
    transfer(shop, State.NEEDS_ATTENTION, 1)
    transfer(shop, State.NEEDS_ATTENTION, 2)
    transfer(broken, State.HELD, 3)
    transfer(shop, State.INVOICED, 4)
    run = sync_run_start(customer=shop.customer, shop=shop, kind=SyncRun.Kind.PRICES)
    sync_run_finish(run=run, error="Hogia Smart answered 503")
    counts = tallies()
    assert (counts["attention"], counts["held"], counts["failing_shops"], counts["failed_runs"]) == (
        2,
        1,
        1,
        1,
    )
    assert counts["webhooks"] == 1  # the broken shop has none registered
    client.force_login(StaffFactory(username="support"))
    page = client.get(reverse("admin:index")).content.decode()
    assert "What needs doing" in page
    assert "?state__exact=needs_attention" in page and "?state__exact=held" in page


def test_the_admin_home_costs_the_same_queries_with_more_data(client):
    client.force_login(StaffFactory(username="support"))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("admin:index")).status_code == 200
        return len(captured)

    shop = ShopFactory()
    transfer(shop, State.NEEDS_ATTENTION, 1)
    few = queries()
    for number in range(2, 40):
        transfer(ShopFactory(), (State.HELD, State.NEEDS_ATTENTION, State.INVOICED)[number % 3], number)
    assert queries() == few


def test_a_shops_health_says_why(django_assert_max_num_queries):
    healthy = ShopFactory(last_check_ok=True, registered_webhooks={"order.created": 12})
    FlowSettingsFactory(customer=healthy.customer, flow=Flow.ECOM)
    failing = ShopFactory(
        last_check_ok=False, last_check_message="401 Unauthorized", registered_webhooks={"order.created": 12}
    )
    waiting = ShopFactory(last_check_ok=True, registered_webhooks={})
    transfer(waiting, State.HELD, 7)
    attention = ShopFactory(last_check_ok=True, registered_webhooks={"order.created": 12})
    transfer(attention, State.NEEDS_ATTENTION, 8)
    with django_assert_max_num_queries(1):
        shops = {s.pk: shop_health(s) for s in shops_with_health(Shop.objects.all())}
    assert shops[healthy.pk].level == GREEN and shops[healthy.pk].reasons == []
    assert shops[failing.pk].level == RED and "401 Unauthorized" in shops[failing.pk].reasons[0]
    assert shops[waiting.pk].level == AMBER
    assert any("held" in r for r in shops[waiting.pk].reasons)
    assert any("No webhooks" in r for r in shops[waiting.pk].reasons)
    assert shops[attention.pk].level == RED and "1 order needs attention." in shops[attention.pk].reasons


def test_the_shop_list_shows_each_shops_health(client):
    ShopFactory(name="Trasig butik", last_check_ok=False, last_check_message="401 Unauthorized")
    client.force_login(StaffFactory(username="support"))
    page = client.get(reverse("admin:integrations_shop_changelist")).content.decode()
    assert "needs action" in page and "401 Unauthorized" in page
