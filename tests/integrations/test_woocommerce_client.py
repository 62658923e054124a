"""Unit tests of WooCommerceClient and the shared HttpClient, HTTP stubbed with ``responses``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests
import responses

from integrations.clients import NO_RETRY, RetryPolicy, WooCommerceClient
from integrations.clients.oauth1 import oauth1_sign, signature_base_string
from integrations.errors import (
    NotFound,
    RateLimited,
    RemoteRejected,
    RemoteUnavailable,
    Unauthorised,
)
from integrations.sandboxes.fixtures import FIXTURES_DIR

FIXTURES = FIXTURES_DIR
HTTP_SHOP = "http://127.0.0.1:8101/"
HTTPS_SHOP = "https://shop.example/butik2/"
HTTP_API = HTTP_SHOP + "wp-json/wc/v3/"
HTTPS_API = HTTPS_SHOP + "wp-json/wc/v3/"
KEY = "ck_0123456789abcdef0123456789abcdef01234567"
SECRET = "cs_fedcba9876543210fedcba9876543210fedcba98"
NOW = 1_800_000_000.0


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"), parse_float=Decimal)


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


class Sleeper:
    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class RecordingSession(requests.Session):
    """A real Session that remembers the keyword arguments the client passed."""

    def __init__(self):
        super().__init__()
        self.calls: list[dict] = []

    def request(self, method, url, **kwargs):
        self.calls.append(dict(kwargs, method=method, url=url))
        return super().request(method, url, **kwargs)


def client(base_url: str = HTTP_SHOP, **kwargs) -> WooCommerceClient:
    kwargs.setdefault("sleep", Sleeper())
    kwargs.setdefault("jitter", lambda: 1.0)
    kwargs.setdefault("clock", lambda: NOW)
    return WooCommerceClient(base_url=base_url, consumer_key=KEY, consumer_secret=SECRET, **kwargs)


def sent_query(call) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(call.request.url).query, keep_blank_values=True)


def sent_json(call):
    return json.loads(call.request.body)


def expected_signature(
    method: str, url: str, pairs: list[tuple[str, str]], secret: str, algorithm=hashlib.sha256
) -> str:
    """The woocommerce-api.md recipe, written independently of the client.

    PHP turns ``k[]`` into ``k[0]``, ``k[1]``…; top-level keys sorted with strcmp;
    ``rawurlencode(key)=rawurlencode(value)`` each encoded again, joined with %26.
    """

    def enc(text: str) -> str:
        return quote(text, safe="-._~")

    grouped: dict[str, list[tuple[str, str]]] = {}
    for key, value in pairs:
        if key == "oauth_signature":
            continue
        if key.endswith("[]"):
            base = key[:-2]
            items = grouped.setdefault(base, [])
            items.append((f"{enc(base)}%5B{len(items)}%5D", value))
        else:
            grouped[key] = [(enc(key), value)]
    joined = [enc(f"{k}={enc(v)}") for base in sorted(grouped, key=str.encode) for k, v in grouped[base]]
    base_string = "&".join([method, enc(url), "%26".join(joined)])
    mac = hmac.new(f"{secret}&".encode(), base_string.encode(), algorithm)
    return base64.b64encode(mac.digest()).decode()


# OAuth 1.0a ---------------------------------------------------------------------------------


def test_oauth_base_string_for_fixed_timestamp_and_nonce():
    url = "http://127.0.0.1:8101/wp-json/wc/v3/orders"
    params = [
        ("status[]", "processing"),
        ("status[]", "on-hold"),
        ("search", "kaffe & te/ö"),
        ("per_page", "100"),
    ]
    signed = oauth1_sign(
        method="GET",
        url=url,
        params=params,
        consumer_key=KEY,
        consumer_secret=SECRET,
        timestamp=1700000000,
        nonce="abc123",
    )
    assert signed[:4] == params
    assert dict(signed)["oauth_signature_method"] == "HMAC-SHA256"
    assert "oauth_version" not in dict(signed)
    assert signature_base_string("GET", url, signed) == (
        "GET&http%3A%2F%2F127.0.0.1%3A8101%2Fwp-json%2Fwc%2Fv3%2Forders&"
        f"oauth_consumer_key%3D{KEY}%26oauth_nonce%3Dabc123"
        "%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D1700000000"
        "%26per_page%3D100%26search%3Dkaffe%2520%2526%2520te%252F%25C3%25B6"
        "%26status%255B0%255D%3Dprocessing%26status%255B1%255D%3Don-hold"
    )
    assert dict(signed)["oauth_signature"] == expected_signature("GET", url, signed, SECRET)


def test_oauth_hmac_sha1():
    url = "http://shop.test/wp-json/wc/v3/products"
    signed = oauth1_sign(
        method="POST",
        url=url,
        params=[],
        consumer_key=KEY,
        consumer_secret=SECRET,
        signature_method="HMAC-SHA1",
        timestamp=1,
        nonce="n",
    )
    assert dict(signed)["oauth_signature"] == expected_signature("POST", url, signed, SECRET, hashlib.sha1)


@responses.activate
def test_plain_http_signs_every_request_in_the_query_string():
    responses.get(HTTP_API + "orders", json=[], headers={"X-WP-Total": "0", "X-WP-TotalPages": "0"})
    after = datetime(2026, 11, 27, 5, 41, 21, 500, tzinfo=timezone(timedelta(hours=1)))
    orders = list(
        client().orders_iter(
            modified_after=after, statuses=["processing", "on-hold"], search="Sveavägen 20 & co"
        )
    )
    assert orders == []
    call = responses.calls[0]
    pairs = sent_query(call)
    query = dict(pairs)
    assert "Authorization" not in call.request.headers
    assert query["modified_after"] == "2026-11-27T04:41:21"  # UTC, no offset
    assert query["dates_are_gmt"] == "true"
    assert query["orderby"] == "modified" and query["order"] == "asc"
    assert [v for k, v in pairs if k == "status[]"] == ["processing", "on-hold"]
    assert query["search"] == "Sveavägen 20 & co"
    assert query["oauth_consumer_key"] == KEY and len(query["oauth_nonce"]) >= 16
    assert "oauth_version" not in query and SECRET not in call.request.url
    assert query["oauth_signature"] == expected_signature("GET", HTTP_API + "orders", pairs, SECRET)


@responses.activate
def test_each_attempt_gets_a_fresh_nonce():
    responses.get(HTTP_API + "orders/727", status=503)
    responses.get(HTTP_API + "orders/727", json={"id": 727})
    client().order_get(727)
    nonces = [dict(sent_query(c))["oauth_nonce"] for c in responses.calls]
    assert len(set(nonces)) == 2


@responses.activate
def test_https_uses_basic_auth_and_no_query_signature():
    responses.get(HTTPS_API + "orders/727", json=fixture("woocommerce/order.json"))
    client(HTTPS_SHOP).order_get(727)
    request = responses.calls[0].request
    expected = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert urlsplit(request.url).query == ""


@responses.activate
def test_explicit_timeout_and_tls_left_to_requests(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/portal-ca.pem")
    responses.get(HTTPS_API + "orders/1", json={"id": 1})
    session = RecordingSession()
    client(HTTPS_SHOP, session=session, timeout=(3.0, 20.0)).order_get(1)
    assert session.calls[0]["timeout"] == (3.0, 20.0)
    assert "verify" not in session.calls[0]
    # The session's trust_env turns the variable into the verify setting of the send.
    assert responses.calls[0].request.req_kwargs["verify"] == "/etc/ssl/portal-ca.pem"
    assert responses.calls[0].request.req_kwargs["timeout"] == (3.0, 20.0)


@responses.activate
def test_verify_passed_through_when_given():
    responses.get(HTTPS_API + "orders/1", json={"id": 1})
    session = RecordingSession()
    client(HTTPS_SHOP, session=session, verify="/tmp/other-ca.pem").order_get(1)
    assert session.calls[0]["verify"] == "/tmp/other-ca.pem"


# Reading ----------------------------------------------------------------------------------


@responses.activate
def test_orders_iter_follows_total_pages_across_three_pages():
    orders = fixture("woocommerce/orders_list.json")
    pages = [[orders[0], orders[1]], [orders[0], orders[1]], [orders[0]]]
    for number, page in enumerate(pages, start=1):
        links = []
        if number > 1:
            links.append(f'<{HTTP_API}orders?page={number - 1}>; rel="prev"')
        if number < 3:
            links.append(f'<{HTTP_API}orders?page={number + 1}>; rel="next"')
        responses.get(
            HTTP_API + "orders",
            json=page,
            headers={"X-WP-Total": "5", "X-WP-TotalPages": "3", "Link": ", ".join(links)},
        )
    woo = client()
    got = list(woo.orders_iter(per_page=2))
    assert [o["id"] for o in got] == [727, 723, 727, 723, 727]
    assert [dict(sent_query(c))["page"] for c in responses.calls] == ["1", "2", "3"]
    assert all(dict(sent_query(c))["per_page"] == "2" for c in responses.calls)
    assert woo.requests_made == 3


@responses.activate
def test_real_payloads_come_through_unchanged_with_decimal_numbers():
    names = sorted(
        p.name
        for p in (FIXTURES / "woocommerce-11" / "orders").glob("*.json")
        if not p.name.endswith(".request.json")
    )
    bodies = [fixture_text(f"woocommerce-11/orders/{name}") for name in names]
    responses.get(
        HTTP_API + "orders",
        body="[" + ",".join(bodies) + "]",
        headers={"X-WP-TotalPages": "1", "Content-Type": "application/json"},
    )
    got = list(client().orders_iter())
    assert got == [json.loads(b, parse_float=Decimal) for b in bodies]
    a1 = next(o for o in got if o["id"] == 39)
    assert a1["line_items"][0]["price"] == Decimal("79.4642855")
    assert isinstance(a1["line_items"][0]["price"], Decimal)
    assert a1["total"] == "1088.24"  # money stays WooCommerce's string
    a7 = next(o for o in got if o["id"] == 64)
    assert str(a7["line_items"][0]["price"]) == "18.663999999999998"


@responses.activate
def test_products_variations_customers_iterators():
    responses.get(
        HTTP_API + "products",
        json=fixture("woocommerce/products_list.json"),
        headers={"X-WP-TotalPages": "1"},
    )
    responses.get(
        HTTP_API + "products/22/variations",
        json=fixture("woocommerce/product_variations_list.json"),
        headers={"X-WP-TotalPages": "1"},
    )
    responses.get(
        HTTP_API + "customers",
        json=fixture("woocommerce/customers_list.json"),
        headers={"X-WP-TotalPages": "1"},
    )
    woo = client()
    assert [p["id"] for p in woo.products_iter(status="publish")] == [799, 794]
    assert len(list(woo.variations_iter(22))) == len(fixture("woocommerce/product_variations_list.json"))
    assert list(woo.customers_iter(role="all")) == fixture("woocommerce/customers_list.json")
    assert dict(sent_query(responses.calls[0]))["status"] == "publish"
    assert dict(sent_query(responses.calls[2]))["role"] == "all"


@pytest.mark.parametrize("per_page", [0, 101, 500])
def test_per_page_out_of_range_is_refused_before_any_request(per_page):
    woo = client()
    with pytest.raises(ValueError):
        woo.orders_iter(per_page=per_page)
    with pytest.raises(ValueError):
        woo.products_iter(per_page=per_page)
    assert woo.requests_made == 0


@responses.activate
def test_products_by_sku_chunks_long_lists_and_matches_variations():
    skus = [f"SKU-{n}" for n in range(120)]
    variation = fixture("woocommerce/product_variation.json")
    responses.get(HTTP_API + "products", json=[variation], headers={"X-WP-TotalPages": "1"})
    responses.get(HTTP_API + "products", json=[], headers={"X-WP-TotalPages": "0"})
    responses.get(HTTP_API + "products", json=[], headers={"X-WP-TotalPages": "0"})
    found = client().products_by_sku(skus + ["SKU-1"])
    assert found == [variation]
    sent = [dict(sent_query(c))["sku"].split(",") for c in responses.calls]
    assert [len(chunk) for chunk in sent] == [50, 50, 20]
    assert sum(sent, []) == skus
    with pytest.raises(ValueError):
        client().products_by_sku(["A,B"])


@responses.activate
def test_store_info_and_order_statuses():
    responses.get(
        HTTP_API + "system_status",
        json={
            "environment": {"home_url": "http://127.0.0.1:8101", "version": "11.0.1"},
            "settings": {"currency": "SEK"},
        },
    )
    responses.get(
        HTTP_API + "reports/orders/totals",
        json=[
            {"slug": "pending", "name": "Pending payment", "total": 0},
            {"slug": "checkout-draft", "name": "Draft", "total": 1},
            {"slug": "awaiting-shipment", "name": "Väntar på frakt", "total": 2},
        ],
    )
    woo = client()
    assert woo.store_info() == {"version": "11.0.1", "currency": "SEK", "home_url": "http://127.0.0.1:8101"}
    assert woo.order_statuses() == [
        ("pending", "Pending payment"),
        ("checkout-draft", "Draft"),
        ("awaiting-shipment", "Väntar på frakt"),
    ]


@responses.activate
def test_refunds_webhooks_and_writes():
    responses.get(
        HTTP_API + "orders/723/refunds",
        json=fixture("woocommerce/order_refunds_list.json"),
        headers={"X-WP-TotalPages": "1"},
    )
    responses.get(
        HTTP_API + "webhooks",
        json=fixture("woocommerce/webhooks_list.json"),
        headers={"X-WP-TotalPages": "1"},
    )
    responses.put(HTTP_API + "orders/727", json=fixture("woocommerce/order_update_response.json"))
    responses.post(HTTP_API + "orders/723/notes", json=fixture("woocommerce/order_note.json"), status=201)
    responses.post(HTTP_API + "webhooks", json=fixture("woocommerce/webhook.json"), status=201)
    responses.put(HTTP_API + "webhooks/142", json=fixture("woocommerce/webhook.json"))
    woo = client()
    assert woo.order_refunds(723) == fixture("woocommerce/order_refunds_list.json")
    assert woo.webhooks_list() == fixture("woocommerce/webhooks_list.json")
    assert woo.order_update(727, {"status": "completed"})["status"] == "completed"
    woo.order_note_create(723, "Faktura 1001 skapad", customer_note=True)
    woo.webhook_create(
        name="Orders",
        topic="order.updated",
        delivery_url="https://portal.example/hooks/woo/1",
        secret="whsec",
    )
    woo.webhook_update(142, {"status": "active"})
    bodies = [sent_json(c) for c in responses.calls[2:]]
    assert bodies[0] == {"status": "completed"}
    assert bodies[1] == {"note": "Faktura 1001 skapad", "customer_note": True}
    assert bodies[2]["topic"] == "order.updated" and bodies[2]["status"] == "active"
    assert bodies[3] == {"status": "active"}


@responses.activate
def test_decimal_in_a_request_body_is_sent_as_an_exact_string():
    responses.put(HTTP_API + "orders/1", json={"id": 1})
    client().order_update(1, {"meta_data": [{"key": "paid", "value": Decimal("1088.24")}]})
    assert responses.calls[0].request.body.decode() == '{"meta_data":[{"key":"paid","value":"1088.24"}]}'


# Batches ----------------------------------------------------------------------------------


@responses.activate
def test_batch_of_250_items_goes_in_three_requests_and_surfaces_item_errors():
    create = [{"name": f"P{n}", "sku": f"SKU-{n}", "regular_price": "10.00"} for n in range(150)]
    update = [{"id": 1000 + n, "regular_price": "12.00"} for n in range(80)]
    delete = [2000 + n for n in range(20)]

    def answer(request):
        body = json.loads(request.body)
        out = {}
        for kind, items in body.items():
            out[kind] = []
            for item in items:
                item_id = item if kind == "delete" else item.get("id", 0)
                if kind == "create" and item["sku"] == "SKU-120":
                    out[kind].append(
                        {
                            "id": 0,
                            "error": {
                                "code": "product_invalid_sku",
                                "message": "Invalid or duplicated SKU.",
                                "data": {"status": 400, "resource_id": 794, "unique_sku": "SKU-120-1"},
                            },
                        }
                    )
                elif kind == "delete" and item_id == 2005:
                    out[kind].append(
                        {
                            "id": 2005,
                            "error": {
                                "code": "woocommerce_rest_product_invalid_id",
                                "message": "Invalid ID.",
                                "data": {"status": 404},
                            },
                        }
                    )
                else:
                    new_id = 5000 + int(item["sku"].split("-")[1]) if kind == "create" else item_id
                    out[kind].append({"id": new_id})
        return 200, {}, json.dumps(out)

    responses.add_callback(responses.POST, HTTP_API + "products/batch", callback=answer)
    woo = client()
    result = woo.products_batch(create=create, update=update, delete=delete)
    sizes = [sum(len(v) for v in sent_json(c).values()) for c in responses.calls]
    assert sizes == [100, 100, 50]
    assert result.requests == 3 and woo.requests_made == 3
    assert len(result.created) == 149 and result.created[0] == {"id": 5000}
    assert result.created[121] == {"id": 5121}
    assert len(result.updated) == 80 and len(result.deleted) == 19
    assert not result.ok
    first, second = result.errors
    assert (first.kind, first.index, first.id, first.code) == ("create", 120, 0, "product_invalid_sku")
    assert first.message == "Invalid or duplicated SKU." and first.data["resource_id"] == 794
    assert (second.kind, second.index, second.id, second.status) == ("delete", 5, 2005, 404)


@responses.activate
def test_variations_batch_413_is_rejected_and_not_retried():
    responses.post(
        HTTP_API + "products/22/variations/batch",
        status=413,
        json={
            "code": "woocommerce_rest_request_entity_too_large",
            "message": "Unable to accept more than 100 items for this request.",
            "data": {"status": 413},
        },
    )
    woo = client()
    with pytest.raises(RemoteRejected) as caught:
        woo.variations_batch(22, update=[{"id": 733, "regular_price": "10.00"}])
    assert caught.value.status == 413
    assert caught.value.code == "woocommerce_rest_request_entity_too_large"
    assert "100 items" in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate
def test_batch_not_retried_after_a_timeout():
    responses.post(HTTP_API + "products/batch", body=requests.exceptions.ReadTimeout("slow"))
    sleeper = Sleeper()
    with pytest.raises(RemoteUnavailable):
        client(sleep=sleeper).products_batch(update=[{"id": 1, "regular_price": "1.00"}])
    assert len(responses.calls) == 1 and sleeper.waits == []


def test_batch_input_checked_before_sending():
    woo = client()
    with pytest.raises(ValueError):
        woo.products_batch(update=[{"regular_price": "1"}])
    with pytest.raises(ValueError):
        woo.products_batch(delete=[0])
    assert woo.requests_made == 0


# Errors -----------------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    "status, body, error_type, code",
    [
        (
            400,
            {
                "code": "rest_invalid_param",
                "message": "Invalid parameter(s): per_page",
                "data": {
                    "status": 400,
                    "params": {"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"},
                },
            },
            RemoteRejected,
            "rest_invalid_param",
        ),
        (
            401,
            {
                "code": "woocommerce_rest_authentication_error",
                "message": "Invalid signature - provided signature does not match.",
                "data": {"status": 401},
            },
            Unauthorised,
            "woocommerce_rest_authentication_error",
        ),
        (
            403,
            {
                "code": "woocommerce_rest_cannot_view",
                "message": "Sorry, you cannot list resources.",
                "data": {"status": 403},
            },
            Unauthorised,
            "woocommerce_rest_cannot_view",
        ),
        (404, "woocommerce/error_rest_no_route.json", NotFound, "rest_no_route"),
        (
            409,
            {"code": "conflict", "message": "Conflict", "data": {"status": 409}},
            RemoteRejected,
            "conflict",
        ),
        (
            422,
            {"code": "unprocessable", "message": "Nope", "data": {"status": 422}},
            RemoteRejected,
            "unprocessable",
        ),
        (429, None, RateLimited, ""),
        (500, "<html>Internal Server Error</html>", RemoteUnavailable, ""),
    ],
)
def test_http_errors_become_typed_errors(status, body, error_type, code):
    if isinstance(body, str) and body.endswith(".json"):
        body = fixture(body)
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body or ""}
    responses.get(HTTP_API + "orders/9", status=status, **kwargs)
    with pytest.raises(error_type) as caught:
        client(retry=NO_RETRY).order_get(9)
    error = caught.value
    assert type(error) is error_type
    assert (error.status, error.code, error.system) == (status, code, "WooCommerce")
    if isinstance(body, dict):
        assert error.message.startswith(body["message"])
        if error_type is not Unauthorised:
            assert error.errors == body
    if status == 400:
        assert "per_page must be between" in str(error)


@responses.activate
@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("Connection refused"),
    ],
)
def test_timeouts_and_connection_errors_are_unavailable(exc):
    responses.get(HTTP_API + "orders/9", body=exc)
    with pytest.raises(RemoteUnavailable) as caught:
        client(retry=NO_RETRY).order_get(9)
    assert type(caught.value) is RemoteUnavailable
    assert "oauth_signature=" not in str(caught.value) or "oauth_signature=***" in str(caught.value)


@responses.activate
def test_unparsable_json_on_success_is_unavailable():
    responses.get(HTTP_API + "orders/9", body="<br /><b>Notice</b>: {", status=200)
    with pytest.raises(RemoteUnavailable) as caught:
        client(retry=NO_RETRY).order_get(9)
    assert caught.value.status == 200 and "Notice" in caught.value.body


# Retries ----------------------------------------------------------------------------------


@responses.activate
def test_get_retried_on_503_with_exponential_backoff_then_succeeds():
    responses.get(HTTP_API + "orders/727", status=503)
    responses.get(HTTP_API + "orders/727", status=502)
    responses.get(HTTP_API + "orders/727", json=fixture("woocommerce/order.json"))
    sleeper = Sleeper()
    woo = client(sleep=sleeper)
    assert woo.order_get(727)["id"] == 727
    assert sleeper.waits == [0.5, 1.0]
    assert woo.requests_made == 3


@responses.activate
def test_full_jitter_stays_within_the_exponential_cap():
    for _ in range(3):
        responses.get(HTTP_API + "orders/1", status=500)
    sleeper = Sleeper()
    woo = client(sleep=sleeper, jitter=lambda: 0.25, retry=RetryPolicy(max_attempts=3, base_delay=2))
    with pytest.raises(RemoteUnavailable):
        woo.order_get(1)
    assert sleeper.waits == [0.5, 1.0]
    assert woo.requests_made == 3


@responses.activate
def test_post_order_note_not_retried_on_503():
    responses.post(HTTP_API + "orders/723/notes", status=503, body="")
    sleeper = Sleeper()
    with pytest.raises(RemoteUnavailable):
        client(sleep=sleeper).order_note_create(723, "Skickad")
    assert len(responses.calls) == 1 and sleeper.waits == []


@responses.activate
def test_post_retried_on_429_honouring_retry_after_seconds():
    responses.post(HTTP_API + "orders/723/notes", status=429, headers={"Retry-After": "7"})
    responses.post(HTTP_API + "orders/723/notes", json=fixture("woocommerce/order_note.json"), status=201)
    sleeper = Sleeper()
    note = client(sleep=sleeper).order_note_create(723, "Order ok!!!")
    assert note["id"] == fixture("woocommerce/order_note.json")["id"]
    assert sleeper.waits == [7.0]


@responses.activate
def test_retry_after_http_date_is_honoured():
    when = datetime.fromtimestamp(NOW + 30, tz=timezone.utc)
    responses.get(
        HTTP_API + "orders/1", status=429, headers={"Retry-After": format_datetime(when, usegmt=True)}
    )
    responses.get(HTTP_API + "orders/1", json={"id": 1})
    sleeper = Sleeper()
    client(sleep=sleeper).order_get(1)
    assert sleeper.waits == [30.0]


@responses.activate
def test_503_with_retry_after_is_rate_limited():
    responses.get(HTTP_API + "orders/1", status=503, headers={"Retry-After": "12"})
    with pytest.raises(RateLimited) as caught:
        client(retry=NO_RETRY).order_get(1)
    assert caught.value.retry_after == 12.0 and caught.value.status == 503


@responses.activate
def test_retry_after_without_value_uses_the_default():
    responses.get(HTTP_API + "orders/1", status=429)
    with pytest.raises(RateLimited) as caught:
        client(retry=RetryPolicy(max_attempts=1, default_retry_after=9)).order_get(1)
    assert caught.value.retry_after == 9


@responses.activate
def test_wait_beyond_the_total_budget_is_left_to_the_caller():
    responses.get(HTTP_API + "orders/1", status=429, headers={"Retry-After": "600"})
    sleeper = Sleeper()
    with pytest.raises(RateLimited) as caught:
        client(sleep=sleeper, retry=RetryPolicy(max_total_wait=60)).order_get(1)
    assert caught.value.retry_after == 600 and sleeper.waits == []
    assert len(responses.calls) == 1


@responses.activate
def test_attempts_are_capped():
    responses.get(HTTP_API + "orders/1", body=requests.exceptions.ConnectionError("reset"))
    sleeper = Sleeper()
    woo = client(sleep=sleeper, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(RemoteUnavailable):
        woo.order_get(1)
    assert woo.requests_made == 3 and len(sleeper.waits) == 2


# Logging ----------------------------------------------------------------------------------


@responses.activate
def test_no_secret_in_debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    responses.get(HTTP_API + "orders", json=[], headers={"X-WP-TotalPages": "0"})
    responses.get(HTTPS_API + "orders", json=[], headers={"X-WP-TotalPages": "0"})
    responses.get(
        HTTP_API + "orders/5",
        body=requests.exceptions.ConnectionError(
            f"Max retries exceeded with url: /wp-json/wc/v3/orders/5?oauth_consumer_key={KEY}"
            "&oauth_signature=abc%3D"
        ),
    )
    list(client().orders_iter(statuses=["processing"]))
    list(client(HTTPS_SHOP).orders_iter())
    with pytest.raises(RemoteUnavailable) as caught:
        client(retry=RetryPolicy(max_attempts=2)).order_get(5)
    signature = dict(sent_query(responses.calls[0]))["oauth_signature"]
    text = caplog.text + str(caught.value)
    assert "wp-json/wc/v3/orders" in caplog.text  # the calls are logged ...
    for secret in (KEY, SECRET, signature, "Basic ", "abc%3D"):
        assert secret not in text  # ... without credentials
