"""The WooCommerce client against the WooCommerce sandbox over real sockets.

Plain HTTP takes only OAuth 1.0a (as a real store does); HTTPS takes Basic auth with
the certificate verified. The shared fixtures round-trip through sandbox and client.
"""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from integrations.clients import RetryPolicy, WooCommerceClient
from integrations.errors import NotFound, RemoteError, RemoteRejected, RemoteUnavailable, Unauthorised
from integrations.sandboxes import demo
from integrations.sandboxes.fixtures import WOOCOMMERCE_11, WOOCOMMERCE_DOCS
from integrations.sandboxes.http import SandboxServer
from integrations.sandboxes.tls import self_signed_certificate, server_context
from integrations.sandboxes.woocommerce import WooCommerceSandbox

ROUND_TRIP_STORE = (
    "/rundtur",
    "ck_roundtrip_0000000000000000000000000000001",
    "cs_roundtrip_0000000000000000000000000000001",
)


def _client(url, key=None, secret=None, **kwargs) -> WooCommerceClient:
    _prefix, _name, demo_key, demo_secret, _unit = demo.WOO_STORES[0]
    return WooCommerceClient(
        base_url=url, consumer_key=key or demo_key, consumer_secret=secret or demo_secret, **kwargs
    )


@pytest.fixture
def empty_store(woo_sandbox):
    prefix, key, secret = ROUND_TRIP_STORE
    requests.post(
        f"{woo_sandbox.url}/_sandbox/stores",
        json={
            "prefix": prefix,
            "consumer_key": key,
            "consumer_secret": secret,
            "permissions": "read_write",
            "prices_include_tax": True,
        },
    ).raise_for_status()
    base = f"{woo_sandbox.url}{prefix}/"
    return base, _client(base, key, secret)


def _same_values(sent: dict, got: dict, path="") -> list[str]:
    """Keys whose values differ (what was sent must come back; extra keys are fine)."""
    differences = []
    for key, value in sent.items():
        if key == "_links":
            continue
        if key not in got:
            differences.append(f"{path}{key} missing")
        elif isinstance(value, dict) and isinstance(got[key], dict):
            differences += _same_values(value, got[key], f"{path}{key}.")
        elif value != got[key]:
            differences.append(f"{path}{key}: {value!r} != {got[key]!r}")
    return differences


def _fixture_products():
    for path in sorted((WOOCOMMERCE_11 / "products").glob("*.json")):
        data = json.loads(path.read_text())
        yield from (data if isinstance(data, list) else [data])


def test_the_swedish_stores_products_round_trip(empty_store):
    base, client = empty_store
    products = list(_fixture_products())
    for product in products:
        requests.post(f"{base}_sandbox/products", json=product).raise_for_status()
    parents = [p for p in products if p["type"] != "variation"]
    for product in parents:
        assert _same_values(product, client.product_get(product["id"])) == [], product["sku"]
    variations = [p for p in products if p["type"] == "variation"]
    got = {v["id"]: v for v in client.variations_iter(30)}
    for variation in variations:
        assert _same_values(variation, got[variation["id"]]) == [], variation["sku"]
    found = {p["sku"] for p in client.products_by_sku(["SE-TS-M", "SE-BOK-001", "NO-SUCH-SKU"])}
    assert found == {"SE-TS-M", "SE-BOK-001"}  # a variation's SKU is found too


@pytest.mark.parametrize(
    "folder, pattern", [(WOOCOMMERCE_11 / "orders", "[AB][0-9]_*.json"), (WOOCOMMERCE_DOCS, "order.json")]
)
def test_the_fixture_orders_round_trip(empty_store, folder, pattern):
    base, client = empty_store
    raw = [p.read_text() for p in sorted(folder.glob(pattern)) if not p.name.endswith(".request.json")]
    assert raw
    for text in raw:
        requests.post(
            f"{base}_sandbox/orders", data=text.encode(), headers={"Content-Type": "application/json"}
        ).raise_for_status()
    # The client reads JSON numbers as Decimal (line_items[].price is a float in WooCommerce).
    orders = [json.loads(text, parse_float=Decimal) for text in raw]
    got = {o["id"]: o for o in client.orders_iter(orderby="id")}
    assert set(got) == {o["id"] for o in orders}
    for order in orders:
        assert _same_values(order, got[order["id"]]) == [], order["id"]
        assert _same_values(order, client.order_get(order["id"])) == [], order["id"]


def test_the_docs_batch_request_creates_what_it_asks(empty_store):
    _base, client = empty_store
    request = json.loads((WOOCOMMERCE_DOCS / "products_batch_request.json").read_text())
    result = client.products_batch(create=request["create"])
    assert result.ok and len(result.created) == len(request["create"])
    for index, sent in enumerate(request["create"]):
        created = result.created[index]
        assert created["name"] == sent["name"] and created["regular_price"] == sent["regular_price"]


def test_a_batch_of_250_goes_in_three_requests_and_surfaces_per_item_errors(empty_store):
    _base, client = empty_store
    create = [{"name": f"Artikel {i}", "sku": f"ART-{i:03d}", "regular_price": "10.00"} for i in range(250)]
    create[120]["sku"] = "ART-000"  # a duplicate SKU: WooCommerce refuses that one item only
    before = client.requests_made
    result = client.products_batch(create=create)
    assert client.requests_made - before == 3 and result.requests == 3
    assert len(result.created) == 249
    assert [(e.index, e.code) for e in result.errors] == [(120, "product_invalid_sku")]


def test_paging_follows_total_pages_and_modified_after_is_exclusive(empty_store):
    _base, client = empty_store
    client.products_batch(create=[{"name": f"P{i}", "sku": f"P-{i:03d}"} for i in range(205)])
    everything = list(client.products_iter(per_page=100))
    assert len(everything) == 205 and len({p["id"] for p in everything}) == 205
    newest = max(
        datetime.fromisoformat(p["date_modified_gmt"]).replace(tzinfo=timezone.utc) for p in everything
    )
    assert list(client.products_iter(modified_after=newest)) == []
    assert len(list(client.products_iter(modified_after=newest - timedelta(seconds=1)))) >= 1


def test_typed_errors(woo_sandbox):
    client = _client(f"{woo_sandbox.url}/", retry=RetryPolicy(max_attempts=1))
    with pytest.raises(NotFound) as caught:
        client.product_get(999999)
    assert caught.value.code == "woocommerce_rest_product_invalid_id"
    with pytest.raises(Unauthorised) as caught:
        _client(f"{woo_sandbox.url}/", secret="cs_wrong").store_info()
    assert caught.value.status == 401
    with pytest.raises(RemoteRejected):
        client.order_update(999999, {"status": "completed"})  # 400 on PUT, as WooCommerce does


def test_a_get_is_retried_through_an_outage_and_a_write_is_not(woo_sandbox):
    client = _client(
        f"{woo_sandbox.url}/", retry=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02)
    )
    requests.post(
        f"{woo_sandbox.url}/_sandbox/faults", json={"mode": "status", "status": 503, "count": 2}
    ).raise_for_status()
    assert client.store_info()["version"] == "11.0.1"
    product = next(client.products_iter())
    requests.post(f"{woo_sandbox.url}/_sandbox/faults", json={"mode": "drop", "count": 1})
    with pytest.raises(RemoteUnavailable):
        client.products_batch(update=[{"id": product["id"], "regular_price": "1.00"}])
    # Not retried: the price never changed, the drop ate the only attempt.
    assert client.product_get(product["id"])["regular_price"] == product["regular_price"]


def test_basic_auth_over_https_with_the_certificate_from_requests_ca_bundle(tmp_path, monkeypatch):
    cert, key = self_signed_certificate(tmp_path)
    app = WooCommerceSandbox()
    with app.lock:
        app.seed_demo()
    server = SandboxServer(app, port=0, ssl_context=server_context(cert, key)).start()
    try:
        base = f"https://127.0.0.1:{server.port}/"
        with pytest.raises(RemoteError, match="certificate verify failed"):  # not retryable
            _client(base, retry=RetryPolicy(max_attempts=1)).store_info()
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        client = _client(base)
        assert client.store_info()["currency"] == "SEK"
        assert any(p["sku"] == "SE-BOK-001" for p in client.products_iter())
    finally:
        server.stop()


class _HeaderStrippingSession(requests.Session):
    """Like Apache in front of PHP-CGI: the Authorization header never reaches WordPress."""

    def send(self, request, **kwargs):
        request.headers.pop("Authorization", None)
        return super().send(request, **kwargs)


def test_over_https_keys_move_to_the_query_string_when_the_server_drops_basic_auth(tmp_path, monkeypatch):
    cert, key = self_signed_certificate(tmp_path)
    app = WooCommerceSandbox()
    with app.lock:
        app.seed_demo()
    server = SandboxServer(app, port=0, ssl_context=server_context(cert, key)).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    try:
        base = f"https://127.0.0.1:{server.port}/"
        client = _client(base, session=_HeaderStrippingSession())
        assert client.store_info()["version"] == "11.0.1"
        assert client.keys_in_query and client.requests_made == 2  # one 401, then the keys in the query
        assert any(p["sku"] == "SE-BOK-001" for p in client.products_iter())
        wrong = _client(base, secret="cs_wrong", session=_HeaderStrippingSession())
        with pytest.raises(Unauthorised):
            wrong.store_info()
    finally:
        server.stop()


def test_notes_customers_variations_and_statuses_through_the_client(woo_sandbox):
    client = _client(f"{woo_sandbox.url}/")
    fixture = (WOOCOMMERCE_11 / "orders" / "A1_guest_mixed_vat_processing.json").read_bytes()
    requests.post(
        f"{woo_sandbox.url}/_sandbox/orders", data=fixture, headers={"Content-Type": "application/json"}
    ).raise_for_status()
    note = client.order_note_create(39, "Fakturerad i Hogia Smart: faktura 7", customer_note=True)
    assert note["customer_note"] is True and note["note"].startswith("Fakturerad")
    customers = list(client.customers_iter())
    assert {c["email"] for c in customers} >= {"anna.andersson@example.se"}
    assert client.customer_get(customers[0]["id"])["id"] == customers[0]["id"]
    tshirt = next(p for p in client.products_iter() if p["sku"] == "SE-TS")
    result = client.variations_batch(
        tshirt["id"],
        update=[{"id": v["id"], "regular_price": "209.00"} for v in client.variations_iter(tshirt["id"])],
    )
    assert result.ok and {v["regular_price"] for v in client.variations_iter(tshirt["id"])} == {"209.00"}
    slugs = [slug for slug, _name in client.order_statuses()]
    assert {"pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed"} <= set(slugs)
    assert client.order_refunds(39) == []
