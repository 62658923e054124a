"""Support acts on one object from its own page: its actions are buttons there; records are never deleted."""

import uuid

import pytest
from django.urls import reverse

from integrations.models import OrderTransfer, SyncRun
from integrations.services import sync_run_finish, sync_run_start
from tests.factories import ShopFactory, StaffFactory

pytestmark = pytest.mark.django_db
State = OrderTransfer.State


@pytest.fixture
def support(client):
    client.force_login(StaffFactory(username="support"))
    return client


def stuck_order(**fields) -> OrderTransfer:
    return OrderTransfer.objects.create(
        shop=ShopFactory(),
        woo_order_id=41,
        order_number="41",
        state=State.NEEDS_ATTENTION,
        sequence_id=uuid.uuid4(),
        quota_key="k41",
        **fields,
    )


def test_an_order_is_retried_from_its_own_page(support):
    transfer = stuck_order(last_error="Hogia Smart answered 503")
    page = support.get(
        reverse("admin:integrations_ordertransfer_change", args=[transfer.pk])
    ).content.decode()
    action = reverse("admin:integrations_ordertransfer_object_action", args=[transfer.pk, "retry"])
    assert f'action="{action}"' in page and "Retry the selected orders now" in page
    response = support.post(action)
    assert response.status_code == 302
    assert response.url == reverse("admin:integrations_ordertransfer_change", args=[transfer.pk])
    transfer.refresh_from_db()
    assert transfer.state == State.QUEUED
    assert support.get(action).status_code == 405  # a link followed by a crawler changes nothing
    unknown = reverse("admin:integrations_ordertransfer_object_action", args=[transfer.pk, "delete_selected"])
    assert support.post(unknown).status_code == 404


def test_a_shop_is_tested_from_its_own_page(support):
    shop = ShopFactory()
    page = support.get(reverse("admin:integrations_shop_change", args=[shop.pk])).content.decode()
    for action in ("test_connection", "register_webhooks", "poll_orders", "sync_catalogue_now"):
        assert reverse("admin:integrations_shop_object_action", args=[shop.pk, action]) in page
    assert "none: orders arrive by the poll only" in page  # registered webhooks read as words, not JSON


def test_orders_and_runs_are_evidence_and_cannot_be_deleted(support):
    transfer = stuck_order()
    run = sync_run_start(customer=transfer.shop.customer, shop=transfer.shop, kind=SyncRun.Kind.ORDERS)
    sync_run_finish(run=run)
    for name, pk in (("ordertransfer", transfer.pk), ("syncrun", run.pk)):
        assert support.get(reverse(f"admin:integrations_{name}_delete", args=[pk])).status_code == 403
        listing = support.get(reverse(f"admin:integrations_{name}_changelist")).content.decode()
        assert 'value="delete_selected"' not in listing
    assert OrderTransfer.objects.filter(pk=transfer.pk).exists()


def test_the_order_list_shows_the_state_as_a_badge_and_the_whole_error_on_hover(support):
    error = "Hogia Smart rejected the request: " + "article SE-KAFFE-500 is missing; " * 6
    stuck_order(last_error=error)
    page = support.get(reverse("admin:integrations_ordertransfer_changelist")).content.decode()
    assert 'class="state-badge"' in page and "needs attention" in page
    assert f'title="{error}' in page


def _buttons(support, transfer) -> set[str]:
    page = support.get(
        reverse("admin:integrations_ordertransfer_change", args=[transfer.pk])
    ).content.decode()
    return {
        name
        for name in (
            "retry",
            "release_held",
            "refunds_booked_by_hand",
            "status_to_shop_again",
            "capture_again",
        )
        if reverse("admin:integrations_ordertransfer_object_action", args=[transfer.pk, name]) in page
    }


def test_an_orders_page_offers_only_the_actions_that_can_do_something_to_it(support):
    """A filtered order (the shop's status is not one that is invoiced) offered "mark as credited
    by hand", "send the invoice status again" and "retry the capture" in make run's demo."""
    from integrations.models import PaymentCapture, StatusPush

    transfer = stuck_order()
    OrderTransfer.objects.filter(pk=transfer.pk).update(state=State.FILTERED)
    assert _buttons(support, transfer) == {"retry"}
    OrderTransfer.objects.filter(pk=transfer.pk).update(state=State.HELD)
    assert _buttons(support, transfer) == {"release_held"}
    OrderTransfer.objects.filter(pk=transfer.pk).update(state=State.INVOICED, hogia_invoice_id="inv-1")
    assert _buttons(support, transfer) == set()
    # Waiting for support's credit of a refund by amount; a status write and a capture failed.
    OrderTransfer.objects.filter(pk=transfer.pk).update(state=State.NEEDS_ATTENTION)
    push = StatusPush.objects.create(
        transfer=transfer,
        hogia_status="paid",
        state=StatusPush.State.NEEDS_ATTENTION,
        seen_at=transfer.created_at,
    )
    capture = PaymentCapture.objects.create(
        transfer=transfer, provider="klarna", payment_method="kco", state=PaymentCapture.State.FAILED
    )
    assert _buttons(support, transfer) == {
        "retry",
        "refunds_booked_by_hand",
        "status_to_shop_again",
        "capture_again",
    }
    StatusPush.objects.filter(pk=push.pk).update(state=StatusPush.State.DONE)
    PaymentCapture.objects.filter(pk=capture.pk).update(state=PaymentCapture.State.CAPTURED)
    assert _buttons(support, transfer) == {"retry", "refunds_booked_by_hand"}


def test_an_orders_page_names_the_shops_status_as_the_shop_does(support):
    transfer = stuck_order(woo_status="on-hold")
    transfer.shop.order_statuses = [["processing", "Behandlas"], ["on-hold", "Pausad"]]
    transfer.shop.save(update_fields=["order_statuses"])
    page = support.get(
        reverse("admin:integrations_ordertransfer_change", args=[transfer.pk])
    ).content.decode()
    assert "Pausad (on-hold)" in page
