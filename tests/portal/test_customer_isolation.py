"""Per-customer isolation: customer B, logged in, walks every URL the portal has, filled in with
customer A's ids (orders, shops, customers, users), and never sees A's data.

The list of URLs comes from the URL resolver, so a page added later is walked too; a URL whose
arguments this test cannot fill, or that no rule below says what B should get, fails the test
until someone decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from integrations.models import OrderEvent, OrderTransfer, SyncLogEntry, SyncRun
from tests.factories import CustomerFactory, ShopFactory, SubscriptionFactory, UserFactory, package

pytestmark = pytest.mark.django_db

# What customer A's pages show and customer B must never see.
A_MARKERS = ("Alfa Kunden AB", "Alfabutiken", "A-90417", "A-90418", "Astrid Alfasson", "Alfa Grossist AB")
B_MARKERS = ("Beta Kunden AB", "Betabutiken", "B-555", "Bengt Betasson")

ADMIN_LOGIN = "/admin/login/"
# Each URL pattern (its route, as the resolver spells it) and what customer B gets there: the
# first rule that matches decides. "own page" = 200 showing only B's data; "refused" = redirect
# to a login, 403, 404 or 405.
RULES = [
    (r"^admin/login/$", "no data"),  # the admin's login form ("not authorised, log in as staff")
    (r"^admin/", "admin"),  # the whole admin, the billing reports included: staff only
    (r"^account/orders/", "not found"),  # A's order, with or without ?customer=A
    (r"^account/$", "own page"),  # with ?customer=A: 404, without: B's own page
    (r"^hooks/woocommerce/", "refused"),  # a shop's webhook: signed by the shop, no page
    (r"^password-reset/<uidb64>/<token>/$", "no data"),  # a wrong link: the "too old" page
    (r"^i18n/setlang/$", "no data"),  # the language switch: a redirect back
    (r"^logout/$", "no data"),  # a POST form only (405 for a GET)
    (r"^health/$", "health"),  # for load balancers: 503 while the task cluster is not seen
    (
        r"^(|login/|favicon\.ico|password-reset/|password-reset/sent/|password-reset/done/)$",
        "no data",
    ),
]


@dataclass
class Customers:
    a: object
    b: object
    a_user: object
    b_user: object
    a_shop: object
    a_orders: list
    a_objects: dict  # model label -> pk of one of A's records


@pytest.fixture
def customers() -> Customers:
    a = CustomerFactory(name="Alfa Kunden AB")
    b = CustomerFactory(name="Beta Kunden AB")
    for customer in (a, b):
        SubscriptionFactory(customer=customer, package=package("400"))
    a_shop = ShopFactory(customer=a, name="Alfabutiken")
    b_shop = ShopFactory(customer=b, name="Betabutiken")
    a_user, b_user = UserFactory(username="alfa"), UserFactory(username="beta")
    a.users.add(a_user)
    b.users.add(b_user)
    a_orders = [
        OrderTransfer.objects.create(
            shop=a_shop,
            woo_order_id=90417 + i,
            order_number=f"A-{90417 + i}",
            sequence_id=f"00000000-0000-4000-8000-0000000904{17 + i}",
            state=OrderTransfer.State.NEEDS_ATTENTION if i else OrderTransfer.State.INVOICED,
            buyer=buyer,
            last_error="Alfa Grossist AB: unknown article",
        )
        for i, buyer in enumerate(["Astrid Alfasson", "Alfa Grossist AB"])
    ]
    OrderEvent.objects.create(transfer=a_orders[0], kind="received", message="Received for Astrid Alfasson.")
    OrderTransfer.objects.create(
        shop=b_shop,
        woo_order_id=555,
        order_number="B-555",
        sequence_id="00000000-0000-4000-8000-000000000555",
        state=OrderTransfer.State.INVOICED,
        buyer="Bengt Betasson",
    )
    run = SyncRun.objects.create(customer=a, shop=a_shop, kind=SyncRun.Kind.values[0])
    SyncLogEntry.objects.create(
        customer=a, shop=a_shop, run=run, message="Alfabutiken: order A-90417 invoiced."
    )
    a_objects = {
        "billing.customer": a.pk,
        "integrations.shop": a_shop.pk,
        "integrations.ordertransfer": a_orders[0].pk,
        "integrations.syncrun": run.pk,
        "auth.user": a_user.pk,
    }
    return Customers(a, b, a_user, b_user, a_shop, a_orders, a_objects)


def _routes(resolver=None, prefix: str = "") -> list[str]:
    """Every URL pattern of the project as one route string (nested includes joined)."""
    resolver = resolver or get_resolver()
    routes = []
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            routes += _routes(pattern, prefix + str(pattern.pattern))
        else:
            assert isinstance(pattern, URLPattern)
            routes.append(prefix + str(pattern.pattern))
    return routes


def _argument(name: str, route: str, c: Customers) -> str:
    """A's value for a URL argument."""
    model = re.search(r"^admin/(\w+)/(\w+)/", route)
    if name in ("object_id", "id"):
        label = f"{model.group(1)}.{model.group(2)}" if model else "billing.customer"
        return str(c.a_objects.get(label, c.a.pk))
    values = {
        "transfer_id": c.a_orders[0].pk,
        "shop_id": c.a_shop.pk,
        "version_id": c.a.pk,  # A has no plugin version: the page must refuse B before it looks
        "action": "retry",  # an admin object action ("do/<action>/"): staff only, whichever
        "customer_id": c.a.pk,
        "month": "2025-03",
        "token": c.a_shop.webhook_token if route.startswith("hooks/") else "set-password",
        "uidb64": urlsafe_base64_encode(force_bytes(c.a_user.pk)),
        "content_type_id": apps.get_model("contenttypes.ContentType")
        .objects.get_for_model(apps.get_model("billing.Customer"))
        .pk,
        "app_label": "billing",
        "url": "billing/customer/",
    }
    assert name in values, f"{route}: add A's value for the URL argument {name!r} to this test"
    return str(values[name])


def _url(route: str, c: Customers) -> str:
    """The route filled in with A's values (path converters and the admin's regex groups)."""
    path = route.replace("^", "").replace("$", "")
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: _argument(m.group(1), route, c), path)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: _argument(m.group(1), route, c), path)
    return "/" + path


def _rule(route: str) -> str:
    for pattern, rule in RULES:
        if re.search(pattern, route):
            return rule
    raise AssertionError(f"{route}: no rule says what another customer gets here; add one to RULES")


def _assert_no_a_data(response, url: str, typed: str = ""):
    """None of A's markers in the answer, except what B typed (a search is shown back)."""
    text = response.content.decode(errors="replace") + response.get("Location", "")
    for marker in A_MARKERS:
        if marker == typed:
            continue  # the search box shows it back; A's row would bring the other markers
        assert marker not in text, f"{url}: customer B sees A's {marker!r}"


def test_customer_b_never_sees_customer_a_on_any_url(client, customers):
    client.force_login(customers.b_user)
    routes = _routes()
    assert len(routes) > 100  # the admin's URLs are in the walk, not only the customer pages
    walked = 0
    for route in routes:
        rule = _rule(route)
        url = _url(route, customers)
        for query in ({}, {"customer": customers.a.pk}):
            response = client.get(url, query)
            where = f"{url}?{query}" if query else url
            _assert_no_a_data(response, where)
            assert response.status_code < 500 or (rule == "health" and response.status_code == 503), where
            if rule == "admin":
                assert response.status_code in (302, 403, 404), where
                if response.status_code == 302:
                    # The admin's logout sends a non-staff login to the admin's index (then its login).
                    assert (
                        response["Location"].startswith(ADMIN_LOGIN) or response["Location"] == "/admin/"
                    ), where
            elif rule == "not found":
                assert response.status_code == 404, where
            elif rule == "refused":
                assert response.status_code in (400, 401, 403, 404, 405), where
            elif rule == "own page":
                if query:
                    assert response.status_code == 404, where
                else:
                    page = response.content.decode()
                    assert response.status_code == 200 and "Beta Kunden AB" in page and "B-555" in page, where
            walked += 1
    assert walked == 2 * len(routes)
    # B was logged in all along (no URL above logged B out), so every answer was B's.
    assert client.get(reverse("account")).wsgi_request.user == customers.b_user


def test_b_cannot_reach_a_through_posts_either(client, customers):
    """The forms a customer can send: the order search, the language switch, the admin's actions."""
    client.force_login(customers.b_user)
    for search in ("A-90417", "Astrid Alfasson", "Alfa Grossist AB"):
        page = client.get(reverse("account"), {"q": search})
        assert page.status_code == 200
        _assert_no_a_data(page, f"search {search}", typed=search)
        assert "No order matches your search." in page.content.decode()
    change = reverse("admin:integrations_ordertransfer_changelist")
    response = client.post(
        change, {"action": "retry", "_selected_action": [t.pk for t in customers.a_orders]}
    )
    assert response.status_code == 302 and response["Location"].startswith(ADMIN_LOGIN)
    state = OrderTransfer.objects.get(pk=customers.a_orders[1].pk).state
    assert state == OrderTransfer.State.NEEDS_ATTENTION  # untouched


def test_the_walk_reaches_a_s_data_when_a_looks(client, customers):
    """The same URLs as A show A's data: the markers are real, so their absence above means something."""
    client.force_login(customers.a_user)
    page = client.get(reverse("account")).content.decode()
    assert "Alfabutiken" in page and "A-90417" in page and "Astrid Alfasson" in page
    order = client.get(reverse("account-order", args=[customers.a_orders[0].pk])).content.decode()
    assert "A-90417" in order and "Alfa Kunden AB" in order
    for marker in B_MARKERS:
        assert marker not in page
