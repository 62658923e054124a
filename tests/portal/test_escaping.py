"""Every page that shows shop data escapes it: markup typed into a shop (a buyer's name, an order
number, a product's name) or into the portal is shown as text, never run, on every admin list and
change page and on the customer's own pages."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from integrations.models import (
    ArticleBinding,
    BuyerBinding,
    HogiaArticle,
    HogiaConnection,
    InitialSync,
    OrderEvent,
    OrderStockLines,
    OrderTransfer,
    PaymentCapture,
    StatusPush,
    SyncLogEntry,
    SyncRun,
    WebhookDelivery,
)
from tests.factories import (
    ContactFactory,
    CustomerFactory,
    HogiaConnectionFactory,
    ShopFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    package,
)

pytestmark = pytest.mark.django_db
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
# What must never reach a page unescaped: the script tag, and the image tag that breaks out of
# an attribute (escaped, the page holds &lt;img and &quot;&gt;).
RAW = ("<script>alert(1)", "<img src=x onerror")


def hostile(label: str) -> str:
    return f"{label} {SCRIPT}{ATTRIBUTE}"


@pytest.fixture
def hostile_data():
    customer = CustomerFactory(name=hostile("Kund"))
    SubscriptionFactory(customer=customer, package=package("400"))
    ContactFactory(customer=customer, name=hostile("Kontakt"))
    shop = ShopFactory(customer=customer, name=hostile("Butik"), last_check_message=hostile("test"))
    connection = HogiaConnectionFactory(customer=customer, company_name=hostile("Bolag"))
    HogiaConnection.objects.filter(pk=connection.pk).update(last_check_message=hostile("svar"))
    user = UserFactory(username="kund")
    customer.users.add(user)
    transfer = OrderTransfer.objects.create(
        shop=shop,
        woo_order_id=7,
        order_number=hostile("7")[:40],
        sequence_id="00000000-0000-4000-8000-000000000007",
        state=OrderTransfer.State.NEEDS_ATTENTION,
        buyer=hostile("Köpare"),
        woo_status="processing",
        payment_method=ATTRIBUTE[:60],
        last_error=hostile("fel"),
        attention=hostile("gör så här"),
    )
    for kind in ("received", "needs_attention"):
        OrderEvent.objects.create(
            transfer=transfer,
            kind=kind,
            message=hostile("händelse"),
            details={"lines": [{"name": hostile("Rad")}], "diff": hostile("diff"), "error": hostile("fel")},
        )
    OrderStockLines.objects.create(transfer=transfer, quantities={hostile("SKU"): 1})
    PaymentCapture.objects.create(transfer=transfer, provider=hostile("psp")[:60], payment_method=SCRIPT[:60])
    StatusPush.objects.create(
        transfer=transfer, hogia_status="paid", tracking_number=hostile("spårning")[:120]
    )
    run = SyncRun.objects.create(
        customer=customer,
        shop=shop,
        kind=SyncRun.Kind.values[0],
        error=hostile("körning"),
        details={"x": SCRIPT},
    )
    SyncLogEntry.objects.create(
        customer=customer, shop=shop, run=run, message=hostile("logg"), object_ref=hostile("ref")[:60]
    )
    HogiaArticle.objects.create(
        customer=customer, number=hostile("art")[:100], data={"name": hostile("Artikel")}
    )
    ArticleBinding.objects.create(shop=shop, sku=hostile("sku")[:100])
    BuyerBinding.objects.create(
        customer=customer,
        key_kind="email",
        key_value=hostile("köpare@example.invalid"),
        hogia_contact_id="c1",
        hogia_customer_number=hostile("1")[:40],
    )
    WebhookDelivery.objects.create(
        shop=shop,
        outcome=WebhookDelivery.Outcome.values[0],
        body=SCRIPT.encode(),
        reason=hostile("skäl"),
        topic=SCRIPT[:60],
        source=hostile("källa"),
        headers={"X-WC-Webhook-Source": hostile("huvud")},
    )
    InitialSync.objects.create(
        customer=customer, shop=shop, direction=InitialSync.Direction.values[0], error=hostile("initial")
    )
    return user, customer, transfer


def _assert_escaped(response, where: str):
    assert response.status_code == 200, (where, response.status_code)
    page = response.content.decode()
    for raw in RAW:
        assert raw not in page, f"{where}: unescaped {raw!r}"


def test_every_admin_list_and_change_page_escapes_shop_data(client, hostile_data):
    client.force_login(StaffFactory(username="support"))
    seen = 0
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        listing = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        _assert_escaped(client.get(listing), listing)
        _assert_escaped(client.get(listing, {"q": SCRIPT}), listing + "?q=")
        for obj in model_admin.get_queryset(client.get(listing).wsgi_request)[:5]:
            try:
                change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            except NoReverseMatch:
                continue
            _assert_escaped(client.get(change), change)
            seen += 1
    assert seen >= 15  # the hostile records were all opened, not only empty lists
    dashboard = reverse("admin:index")
    _assert_escaped(client.get(dashboard), dashboard)


def test_the_customer_pages_escape_shop_data(client, hostile_data):
    user, customer, transfer = hostile_data
    client.force_login(user)
    page = client.get(reverse("account"))
    _assert_escaped(page, "/account/")
    assert "Köpare &lt;script&gt;" in page.content.decode()  # shown, as text
    _assert_escaped(client.get(reverse("account"), {"q": SCRIPT}), "/account/?q=")
    order = client.get(reverse("account-order", args=[transfer.pk]))
    _assert_escaped(order, "/account/orders/<id>/")
    assert "Butik &lt;script&gt;" in order.content.decode()


def test_staff_viewing_as_the_customer_and_the_billing_pages_escape_shop_data(client, hostile_data):
    _user, customer, transfer = hostile_data
    client.force_login(StaffFactory(username="support"))
    _assert_escaped(client.get(reverse("account"), {"customer": customer.pk}), "/account/?customer=")
    _assert_escaped(
        client.get(reverse("account-order", args=[transfer.pk]), {"customer": customer.pk}), "order as staff"
    )
    _assert_escaped(client.get(reverse("billing:reports")), "billing reports")
    month = f"{timezone.localdate():%Y-%m}"
    statement = reverse("billing:statement", args=[customer.pk, month])
    _assert_escaped(client.get(statement), statement)
