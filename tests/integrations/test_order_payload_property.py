"""Property tests of order intake: whatever a correctly signed order delivery carries, the
portal keeps it, never answers 5xx, stores only values that fit their columns, and every
page that shows orders or deliveries still answers afterwards.

Bodies are the real store's orders with fields mutated (odd numbers, strings, lists,
objects, null, unicode, ints beyond 64 bits, deep nesting, missing keys), order-shaped
random objects, random JSON and random bytes. Examples are derandomised, so the suite
runs the same 10,000 bodies every time (``PAYLOAD_EXAMPLES=500`` for a quick run while
working; switch ``derandomize`` off to explore other bodies).

What the 10,000 cost, measured (about 13 ms an example, CPU-bound): the webhook request
itself, 5-7 ms (shop lookup with its encrypted fields, the delivery stored and settled,
the sync log or ``order_seen``'s five statements, Django's middleware and test client);
Hypothesis drawing a body, 2-3 ms; reading back what was stored, 1-2 ms. Queuing the
transfer is not a cost here: ``transaction.on_commit`` never fires inside the test's
transaction, so ``transfer_enqueue`` is left as it is.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from decimal import Decimal

import pytest
from django.db.models import Max
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.intake import webhook_order_take
from integrations.mapping.contacts import buyer_key, hogia_contact_body
from integrations.mapping.invoices import InvoiceBlocked, invoice_from_order
from integrations.models import OrderTransfer, WebhookDelivery
from integrations.orders.payload import MAX_STORED_MONEY, order_payload_problems
from integrations.webhooks import webhook_signature
from tests.factories import (
    CustomerFactory,
    ShopFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    package,
)
from tests.integrations.test_order_payload import REAL

SECRET = "a-shop-secret-for-property-tests"
EXAMPLES = int(os.environ.get("PAYLOAD_EXAMPLES", 10_000))
FIXTURES = list(REAL.values())


class Raw:
    """JSON text put into a body as it is: numbers and nesting no Python value round-trips."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r}{'...' if len(self.text) > 40 else ''})"


# Decimal and Raw values leave json.dumps as placeholders and are put back as JSON text
# afterwards: json.dumps walks the order in C, which keeps 10,000 bodies quick to make.
_PLACEHOLDER = "\ue000p7c1e{}\ue000"
_PLACED = re.compile(r'"\\ue000p7c1e(\d+)\\ue000"')


def to_json(value: object) -> str:
    """Compact JSON as WooCommerce writes it, with Decimal as exact numbers and Raw as is.

    Lone surrogates stay ``\\ud800`` escapes, as PHP can send them.
    """
    texts: list[str] = []

    def place(item: object) -> str:
        if not isinstance(item, (Raw, Decimal)):
            raise TypeError(type(item))
        texts.append(item.text if isinstance(item, Raw) else str(item))
        return _PLACEHOLDER.format(len(texts) - 1)

    dumped = json.dumps(value, separators=(",", ":"), default=place)
    return _PLACED.sub(lambda match: texts[int(match.group(1))], dumped) if texts else dumped


def _paths(value: object, prefix: tuple = (), depth: int = 0) -> list[tuple]:
    """Every key path into an order down to three levels (line_items.0.taxes.0.total)."""
    found = []
    if depth > 3:
        return found
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.append(prefix + (key,))
        found.extend(_paths(child, prefix + (key,), depth + 1))
    return found


PATHS = [_paths(order) for order in FIXTURES]

# Values that broke, or nearly broke, the portal on a real deployment, and their neighbours.
NOTORIOUS = [
    "1000000000000.00",
    "999999999999.99",
    "-999999999999.99",
    "999999999999.995",
    "12.345",
    "abc",
    "",
    " ",
    "1e3",
    "1_000",
    "NaN",
    "-0",
    "0.00",
    "١٢",
    "2026-13-45T25:61:00",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59",
    "2026-11-27T03:41:21+14:00",
    "2026-11-27",
    "x",
    "SEK",
    "sek",
    "processing",
    "completed",
    "\x00",
    "\ud800",
    "Åsa Öberg",
    "🧾",
    "x" * 41,
    "x" * 300,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63),
    10**30,
    0,
    -1,
    1,
    True,
    False,
    None,
    [],
    {},
    ["x"],
    {"id": 1},
    Raw("1E+999999999"),
    Raw("-1E-999999999"),
    Raw("NaN"),
    Raw("Infinity"),
    Raw("1" * 5000),
    Raw("0.1e-5"),
    Raw("1.0"),
    Raw("[" * 100_000 + "]" * 100_000),
]

# Cheap strategies on purpose: 10,000 examples through a Django view is the cost to keep down
# (st.decimals and a deep st.recursive each cost milliseconds an example).
decimals = st.tuples(
    st.integers(min_value=-(10**20), max_value=10**20), st.integers(min_value=-30, max_value=30)
).map(lambda t: Decimal(t[0]).scaleb(t[1]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-1000, max_value=100_000),
    decimals,
    st.text(max_size=20),
)
# One level of containers (deeper ones come from `deep` and NOTORIOUS): st.recursive is slow.
containers = st.one_of(
    st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=8), scalars, max_size=3)
)
json_values = st.one_of(scalars, containers, st.lists(containers, max_size=2))
deep = st.integers(min_value=1, max_value=3_000).map(lambda depth: Raw("[" * depth + "]" * depth))
odd_values = st.one_of(st.sampled_from(NOTORIOUS), scalars, containers, deep)


def _changed(order: dict, path: tuple, value: object, delete: bool) -> dict:
    """``order`` with the value at ``path`` replaced (or removed); the containers on the path are
    copied, so the shared fixtures stay as they are without a deep copy per example."""
    root = dict(order)
    parent = root
    for key in path[:-1]:
        child = parent[key]
        child = dict(child) if isinstance(child, dict) else list(child) if isinstance(child, list) else child
        parent[key] = child
        parent = child
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return root


@st.composite
def mutated_orders(draw) -> bytes:
    """A real order with one to three values replaced or removed, anywhere in it."""
    index = draw(st.integers(min_value=0, max_value=len(FIXTURES) - 1))
    order = FIXTURES[index]
    paths = PATHS[index]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(paths))
        value, delete = draw(odd_values), draw(st.integers(0, 9)) == 0
        try:
            order = _changed(order, path, value, delete)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier change replaced or removed what this path went through
    return to_json(order).encode()


ORDER_KEYS = [
    "id",
    "number",
    "status",
    "currency",
    "total",
    "date_created_gmt",
    "date_modified_gmt",
    "billing",
    "shipping",
    "refunds",
    "line_items",
    "fee_lines",
    "shipping_lines",
    "coupon_lines",
    "tax_lines",
    "meta_data",
    "customer_id",
]
order_shaped = st.dictionaries(
    st.one_of(st.sampled_from(ORDER_KEYS), st.text(max_size=6)), odd_values, max_size=8
).map(lambda order: to_json(order).encode())
bodies = st.one_of(
    mutated_orders(),
    mutated_orders(),
    mutated_orders(),  # most bodies: near-real orders
    order_shaped,
    json_values.map(lambda value: to_json(value).encode()),
    deep.map(lambda raw: raw.text.encode()),
    st.binary(max_size=300),
)


def _fits_its_columns(transfer: OrderTransfer) -> None:
    assert 0 < transfer.woo_order_id < 2**63
    assert len(transfer.order_number) <= 40 and len(transfer.woo_status) <= 40
    assert len(transfer.currency) <= 3 and len(transfer.buyer) <= 200
    if transfer.total is not None:
        assert abs(transfer.total) <= MAX_STORED_MONEY
        assert transfer.total == transfer.total.quantize(Decimal("0.01"))
    for moment in (transfer.woo_modified_gmt, transfer.order_created_gmt):
        if moment is not None:
            timezone.localtime(moment)  # the pages show it in the portal's time zone


@pytest.fixture
def shop():
    customer = CustomerFactory(name="Egenskapstest AB")
    SubscriptionFactory(customer=customer, package=package("400"))
    return ShopFactory(customer=customer, webhook_secret=SECRET)


@pytest.fixture
def quiet_rejections():
    """Django logs every 400 as a warning; 7,000 of them cost seconds and say nothing here."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def _pages_answer(customer_client: Client, staff_client: Client, transfers: list[OrderTransfer]) -> None:
    """The customer's pages and support's lists, as people open them, all answer 200."""
    assert customer_client.get(reverse("account")).status_code == 200
    for transfer in transfers:
        assert customer_client.get(reverse("account-order", args=[transfer.pk])).status_code == 200
    for model in ("ordertransfer", "webhookdelivery"):
        assert staff_client.get(reverse(f"admin:integrations_{model}_changelist")).status_code == 200


@pytest.mark.django_db
@pytest.mark.timeout(900)  # 10,000 requests: about a minute on an idle machine, more on a busy one
def test_no_signed_order_body_gives_a_5xx_is_lost_or_breaks_a_page(client, shop, quiet_rejections):
    url = f"/hooks/woocommerce/{shop.webhook_token}/"
    user = UserFactory(username="egenskap")
    shop.customer.users.add(user)
    customer_client, staff_client = Client(), Client()
    customer_client.force_login(user)
    staff_client.force_login(StaffFactory(username="support-egenskap"))
    outcomes = {"accepted": 0, "malformed": 0}
    before = WebhookDelivery.objects.count()
    last = {"pk": WebhookDelivery.objects.aggregate(last=Max("pk"))["last"] or 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )
    @given(body=bodies, topic=st.sampled_from(["order.created", "order.updated"]))
    def deliver(body: bytes, topic: str) -> None:
        response = client.post(
            url,
            data=body,
            content_type="application/json",
            HTTP_X_WC_WEBHOOK_TOPIC=topic,
            HTTP_X_WC_WEBHOOK_SIGNATURE=webhook_signature(body=body, secret=SECRET),
        )
        assert response.status_code < 500, response.content
        # The rows added since the last example (an index range, not a count of the table,
        # which keeps 10,000 examples linear): this body, and only it, was stored.
        (delivery,) = WebhookDelivery.objects.filter(pk__gt=last["pk"]).values(
            "pk", "body", "outcome", "reason", "resource_id"
        )
        last["pk"] = delivery["pk"]
        assert bytes(delivery["body"]) == body
        assert delivery["outcome"] in outcomes, (delivery["outcome"], delivery["reason"])
        outcomes[delivery["outcome"]] += 1
        if delivery["outcome"] == "accepted":
            assert response.status_code == 200
            # A worker records the order from the stored delivery: it must take every accepted one.
            assert webhook_order_take(delivery_id=delivery["pk"]) is not None
            # Read back from the database: a value that does not fit fails here, as on a page.
            transfer = OrderTransfer.objects.get(shop=shop, woo_order_id=delivery["resource_id"])
            _fits_its_columns(transfer)
            if outcomes["accepted"] % 100 == 1:  # now and then, the pages with this order as it is now
                _pages_answer(customer_client, staff_client, [transfer])
        else:
            assert response.status_code == 400 and delivery["reason"]
            assert response.json()["message"].startswith("rejected: ")

    started = time.monotonic()
    deliver()
    seconds = time.monotonic() - started
    print(f"\n{EXAMPLES} signed bodies in {seconds:.1f} s: {outcomes}")
    assert sum(outcomes.values()) >= EXAMPLES
    assert WebhookDelivery.objects.count() == before + sum(outcomes.values())
    # Not vacuous: plenty of near-real orders got through, and plenty were turned away.
    assert outcomes["accepted"] >= EXAMPLES // 20 and outcomes["malformed"] >= EXAMPLES // 4

    transfers = list(OrderTransfer.objects.filter(shop=shop))
    for transfer in transfers:
        _fits_its_columns(transfer)
    _pages_answer(customer_client, staff_client, transfers)
    for state in OrderTransfer.State.values:
        assert customer_client.get(reverse("account"), {"state": state}).status_code == 200
    for outcome in WebhookDelivery.Outcome.values:
        assert (
            staff_client.get(
                reverse("admin:integrations_webhookdelivery_changelist"), {"outcome": outcome}
            ).status_code
            == 200
        )
    last_page = (WebhookDelivery.objects.count() + 99) // 100
    assert (
        staff_client.get(
            reverse("admin:integrations_webhookdelivery_changelist"), {"p": last_page}
        ).status_code
        == 200
    )
    for transfer in transfers:
        assert (
            staff_client.get(
                reverse("admin:integrations_ordertransfer_change", args=[transfer.pk])
            ).status_code
            == 200
        )
    for delivery in WebhookDelivery.objects.order_by("?").only("pk")[:50]:
        assert (
            staff_client.get(
                reverse("admin:integrations_webhookdelivery_change", args=[delivery.pk])
            ).status_code
            == 200
        )
    print(f"and the pages in {time.monotonic() - started - seconds:.1f} s")


def _refuse(constant: str):
    raise ValueError(f"{constant} is not JSON")


@settings(
    max_examples=2_000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=mutated_orders())
def test_an_order_that_passes_the_check_meets_the_mappings_without_a_shape_error(body):
    """What the check lets through, the mappings read without TypeError, KeyError or
    InvalidOperation: they may still block the order, in words (InvoiceBlocked, ValueError)."""
    try:
        order = json.loads(body, parse_float=Decimal, parse_constant=_refuse)
    except (ValueError, RecursionError):
        return  # the intake turns it away before the check
    if order_payload_problems(order):
        return
    try:
        invoice_from_order(order)
    except (InvoiceBlocked, ValueError):  # the transfer shows both to support as "needs attention"
        pass
    for policy in ("email", "organisation_number", "shop_customer_number"):
        try:
            buyer_key(order, policy=policy)
        except ValueError:
            pass
    try:
        hogia_contact_body(order)
    except ValueError:
        pass
