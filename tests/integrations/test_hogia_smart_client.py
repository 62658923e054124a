"""Unit tests of HogiaSmartClient, HTTP stubbed with ``responses``."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from integrations.clients import NO_RETRY, HogiaSmartClient, InMemoryTokenCache, RetryPolicy
from integrations.clients.base import json_dumps
from integrations.errors import (
    NotFound,
    RateLimited,
    RemoteRejected,
    RemoteUnavailable,
    Unauthorised,
)

API = "https://api.hogia.test"
AUTH = "https://id.hogia.test"
ORG = "3f2b8c1e-5d4a-4e8b-9c7f-0a1b2c3d4e5f"
ROOT = f"{API}/{ORG}/"
TOKEN_URL = f"{AUTH}/connect/token"
CLIENT_SECRET = "s3cr3t-client-secret-value"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Sleeper:
    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def hogia(**kwargs) -> HogiaSmartClient:
    clock = kwargs.pop("clock", None) or Clock()
    kwargs.setdefault("sleep", Sleeper())
    kwargs.setdefault("jitter", lambda: 1.0)
    kwargs.setdefault("token_cache", InMemoryTokenCache(clock))
    return HogiaSmartClient(
        api_base=API,
        auth_base=AUTH,
        organization_id=ORG,
        client_id="portal-client",
        client_secret=CLIENT_SECRET,
        clock=clock,
        **kwargs,
    )


def add_token(token: str = "token-1", expires_in: int = 3600) -> None:
    responses.post(TOKEN_URL, json={"access_token": token, "token_type": "Bearer", "expires_in": expires_in})


def api_calls() -> list:
    return [c for c in responses.calls if not c.request.url.startswith(TOKEN_URL)]


def token_calls() -> list:
    return [c for c in responses.calls if c.request.url.startswith(TOKEN_URL)]


def query(call) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(call.request.url).query))


def paged(items: list, page: int, page_count: int, total: int) -> dict:
    return {
        "json": items,
        "headers": {
            "X-Pagination-Currentpage": str(page),
            "X-Pagination-Pagecount": str(page_count),
            "X-Pagination-Totalcount": str(total),
        },
    }


# Token ------------------------------------------------------------------------------------


@responses.activate
def test_token_fetched_once_and_sent_as_bearer_with_api_version():
    add_token()
    responses.get(
        ROOT + "organization",
        json={"id": ORG, "name": "Butik AB", "modules": {"bookkeeping": True, "invoicing": True}},
    )
    client = hogia()
    assert client.organization()["name"] == "Butik AB"
    assert client.organization()["id"] == ORG
    assert len(token_calls()) == 1 and len(api_calls()) == 2
    form = dict(parse_qsl(token_calls()[0].request.body))
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "portal-client",
        "client_secret": CLIENT_SECRET,
    }
    request = api_calls()[0].request
    assert request.headers["Authorization"] == "Bearer token-1"
    assert query(api_calls()[0]) == {"api-version": "2025-02-13"}
    assert client.requests_made == 3


@responses.activate
def test_token_renewed_60_seconds_before_expiry():
    add_token("token-1", expires_in=3600)
    add_token("token-2", expires_in=3600)
    responses.get(ROOT + "vatcodes", **paged([], 1, 0, 0))
    clock = Clock()
    client = hogia(clock=clock)
    client.vat_codes()
    clock.now += 3600 - 61
    client.vat_codes()
    assert len(token_calls()) == 1
    clock.now += 2
    client.vat_codes()
    assert len(token_calls()) == 2
    assert api_calls()[-1].request.headers["Authorization"] == "Bearer token-2"


@responses.activate
def test_token_shared_by_clients_of_the_same_client_id():
    add_token()
    responses.get(ROOT + "organization", json={"id": ORG})
    cache = InMemoryTokenCache()
    hogia(token_cache=cache).organization()
    hogia(token_cache=cache).organization()
    assert len(token_calls()) == 1


@responses.activate
def test_default_cache_is_per_process_and_keyed_by_auth_base_and_client_id():
    add_token()
    responses.get(ROOT + "organization", json={"id": ORG})
    client_id = f"client-{uuid.uuid4()}"

    def make():
        return HogiaSmartClient(
            api_base=API,
            auth_base=AUTH,
            organization_id=ORG,
            client_id=client_id,
            client_secret="x",
        )

    make().organization()
    make().organization()
    other = HogiaSmartClient(
        api_base=API, auth_base=AUTH, organization_id=ORG, client_id=client_id + "-other", client_secret="x"
    )
    other.organization()
    assert len(token_calls()) == 2


@responses.activate
def test_401_renews_the_token_once_and_repeats_the_call():
    add_token("old")
    add_token("new")
    responses.get(ROOT + "organization", status=401)
    responses.get(ROOT + "organization", json={"id": ORG})
    sleeper = Sleeper()
    assert hogia(sleep=sleeper).organization() == {"id": ORG}
    assert [c.request.headers["Authorization"] for c in api_calls()] == ["Bearer old", "Bearer new"]
    assert sleeper.waits == []


@responses.activate
def test_second_401_is_unauthorised():
    add_token("old")
    add_token("new")
    responses.get(ROOT + "organization", status=401)
    with pytest.raises(Unauthorised) as caught:
        hogia().organization()
    assert caught.value.status == 401
    assert len(api_calls()) == 2 and len(token_calls()) == 2


@responses.activate
def test_invalid_client_at_the_token_endpoint_is_unauthorised():
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_client"})
    client = hogia()
    with pytest.raises(Unauthorised) as caught:
        client.organization()
    assert caught.value.code == "invalid_client"
    assert api_calls() == [] and len(token_calls()) == 1


@responses.activate
def test_rate_gate_runs_before_every_api_call_but_not_the_token_call():
    add_token()
    responses.get(ROOT + "organization", status=503)
    responses.get(ROOT + "organization", json={"id": ORG})
    calls: list[int] = []
    hogia(rate_gate=lambda: calls.append(len(responses.calls))).organization()
    # The gate ran before each API attempt: after the token call, and after the 503.
    assert calls == [1, 2]


@responses.activate
def test_token_endpoint_outage_is_retried_once_not_compounded_with_the_call():
    responses.post(TOKEN_URL, status=503)
    sleeper = Sleeper()
    with pytest.raises(RemoteUnavailable):
        hogia(sleep=sleeper, retry=RetryPolicy(max_attempts=3)).organization()
    assert len(token_calls()) == 3 and api_calls() == []
    assert sleeper.waits == [0.5, 1.0]


@responses.activate
def test_a_rate_gate_may_refuse_a_call():
    add_token()

    def gate() -> None:
        raise RateLimited("shared budget spent", retry_after=4.0, system="Hogia Smart")

    with pytest.raises(RateLimited):
        hogia(rate_gate=gate).organization()
    assert api_calls() == []


# Paging -----------------------------------------------------------------------------------


@responses.activate
def test_articles_iter_follows_pagination_headers_across_three_pages():
    add_token()
    for page in (1, 2, 3):
        items = [{"id": f"a{page}{n}", "number": f"SKU-{page}-{n}"} for n in range(2 if page < 3 else 1)]
        responses.get(ROOT + "articles", **paged(items, page, 3, 5))
    articles = list(hogia().articles_iter(page_size=2))
    assert [a["number"] for a in articles] == ["SKU-1-0", "SKU-1-1", "SKU-2-0", "SKU-2-1", "SKU-3-0"]
    assert [(query(c)["page"], query(c)["pageSize"]) for c in api_calls()] == [
        ("1", "2"),
        ("2", "2"),
        ("3", "2"),
    ]


@pytest.mark.parametrize("page_size", [0, 501])
def test_page_size_above_500_is_refused(page_size):
    client = hogia()
    with pytest.raises(ValueError):
        client.articles_iter(page_size=page_size)
    with pytest.raises(ValueError):
        client.invoices_changed_since(0, page_size=page_size)
    assert client.requests_made == 0


@responses.activate
def test_rowversion_feed_continues_after_the_highest_row_version_seen():
    add_token()
    responses.get(
        ROOT + "articles/rowversion",
        **paged([{"id": "a", "rowVersion": 11}, {"id": "b", "rowVersion": 12}], 1, 3, 5),
    )
    responses.get(
        ROOT + "articles/rowversion",
        **paged([{"id": "c", "rowVersion": 15}, {"id": "d", "rowVersion": 17}], 1, 2, 3),
    )
    responses.get(ROOT + "articles/rowversion", **paged([{"id": "e", "rowVersion": 18}], 1, 1, 1))
    changed = list(hogia().articles_changed_since(10, page_size=2))
    assert [a["id"] for a in changed] == ["a", "b", "c", "d", "e"]
    assert [query(c)["lastKnownRowVersion"] for c in api_calls()] == ["10", "12", "17"]
    assert all(query(c)["page"] == "1" for c in api_calls())


@responses.activate
def test_lookups_send_exact_filters():
    add_token()
    responses.get(ROOT + "contacts", **paged([{"id": "c1", "number": "1001"}], 1, 1, 1))
    responses.get(ROOT + "articles", **paged([], 1, 0, 0))
    responses.get(ROOT + "customerinvoices", **paged([{"id": "i1"}], 1, 1, 1))
    responses.get(ROOT + "dimensions", **paged([{"id": "d1", "number": "2", "name": "Butik 2"}], 1, 1, 1))
    client = hogia()
    assert client.contacts_find(email="anna@example.se", identification_number="19800101-1234") == [
        {"id": "c1", "number": "1001"}
    ]
    assert client.article_by_number("SKU 1/ö") is None
    assert client.invoices_find(customer_order_number="39") == [{"id": "i1"}]
    assert client.result_units()[0]["name"] == "Butik 2"
    calls = api_calls()
    assert query(calls[0])["email"] == "anna@example.se"
    assert query(calls[0])["identificationNumber"] == "19800101-1234"
    assert query(calls[1])["number"] == "SKU 1/ö"
    assert query(calls[2])["customerOrderNumber"] == "39"
    assert query(calls[3])["dimensionType"] == "One"
    with pytest.raises(ValueError):
        client.contacts_find()


# Writes and retries -----------------------------------------------------------------------


INVOICE = {
    "customerNumber": "1001",
    "invoiceDate": "2026-11-27",
    "dueDate": "2026-12-27",
    "currency": {"code": "SEK"},
    "pricesIncludeVat": False,
    "customerOrderNumber": "39",
}
LINES = [
    {
        "articleNumber": "SKU-1",
        "description": "Kaffe",
        "quantity": Decimal("3"),
        "unitPrice": Decimal("26.6640"),
        "vatPercent": 12,
        "discountPercent": Decimal("0.00"),
    },
    {
        "articleNumber": "fraktavg",
        "description": "Frakt",
        "quantity": 1,
        "unitPrice": Decimal("49.00"),
        "vatPercent": 25,
    },
]


@responses.activate
def test_invoice_create_retried_with_the_same_sequence_id_and_exact_numbers():
    add_token()
    responses.post(ROOT + "customerinvoices", status=503)
    responses.post(ROOT + "customerinvoices", body=requests.exceptions.ReadTimeout("slow"))
    responses.post(
        ROOT + "customerinvoices",
        status=200,
        body='{"id": "inv-1", "invoiceNumber": 5001, "netAmount": 128.99, '
        '"vatAmount": 21.85, "grossAmount": 150.84}',
    )
    sequence_id = uuid.uuid4()
    sleeper = Sleeper()
    created = hogia(sleep=sleeper).invoice_create(INVOICE, LINES, sequence_id=sequence_id)
    assert created["grossAmount"] == Decimal("150.84") and isinstance(created["netAmount"], Decimal)
    bodies = [c.request.body for c in api_calls()]
    assert len(bodies) == 3 and len(set(bodies)) == 1
    sent = json.loads(bodies[0], parse_float=Decimal)
    assert sent["sequenceId"] == str(sequence_id)
    assert sent["customerInvoice"] == INVOICE
    assert b'"unitPrice":26.6640' in bodies[0] and b'"discountPercent":0.00' in bodies[0]
    assert sleeper.waits == [0.5, 1.0]


@responses.activate
def test_invoice_create_retried_on_429_with_retry_after():
    add_token()
    responses.post(
        ROOT + "customerinvoices",
        status=429,
        headers={"Retry-After": "3"},
        json={"title": "Too Many Requests", "status": 429},
    )
    responses.post(ROOT + "customerinvoices", status=201, json={"id": "inv-1"})
    sleeper = Sleeper()
    hogia(sleep=sleeper).invoice_create(INVOICE, LINES, sequence_id="a-guid")
    assert sleeper.waits == [3.0]


@responses.activate
def test_creates_and_updates_carry_their_bodies():
    add_token()
    responses.post(ROOT + "contacts", status=201, json={"id": "c1", "number": "1001"})
    responses.post(ROOT + "contacts/c1", json={"id": "c1"})
    responses.post(ROOT + "articles", status=201, json={"id": "a1"})
    responses.patch(ROOT + "articles/a1", json={"id": "a1"})
    responses.get(ROOT + "contacts/c1", json={"id": "c1"})
    responses.get(ROOT + "articles/a1", json={"id": "a1", "stockBalance": 12.5})
    responses.get(ROOT + "customerinvoices/inv-1", json={"id": "inv-1", "status": "Invoiced"})
    client = hogia()
    client.contact_create({"givenName": "Anna", "surName": "Andersson"}, sequence_id="seq-c")
    client.contact_update("c1", {"email": "anna@example.se"})
    client.article_create({"number": "SKU-1", "name": "Kaffe"}, sequence_id="seq-a")
    client.article_update("a1", {"prices": {"ordinary": Decimal("89.00")}})
    assert client.contact_get("c1") == {"id": "c1"}
    assert client.article_get("a1")["stockBalance"] == Decimal("12.5")
    assert client.invoice_get("inv-1")["status"] == "Invoiced"
    bodies = [c.request.body for c in api_calls()[:4]]
    assert json.loads(bodies[0]) == {"sequenceId": "seq-c", "givenName": "Anna", "surName": "Andersson"}
    assert json.loads(bodies[1]) == {"email": "anna@example.se"}
    assert json.loads(bodies[2]) == {"sequenceId": "seq-a", "number": "SKU-1", "name": "Kaffe"}
    assert bodies[3] == b'{"prices":{"ordinary":89.00}}'
    assert api_calls()[3].request.method == "PATCH"


# Errors -----------------------------------------------------------------------------------


@responses.activate
def test_validation_problem_details_become_remote_rejected_with_field_errors():
    add_token()
    responses.post(
        ROOT + "contacts",
        status=400,
        json={
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
            "title": "One or more validation errors occurred.",
            "status": 400,
            "errors": {"email": ["The email is not valid."], "countryCode": ["Unknown country."]},
        },
    )
    with pytest.raises(RemoteRejected) as caught:
        hogia().contact_create({"email": "x"}, sequence_id="s")
    error = caught.value
    assert error.errors == {"email": ["The email is not valid."], "countryCode": ["Unknown country."]}
    assert "email: The email is not valid." in str(error)
    assert "countryCode: Unknown country." in str(error)
    assert len(api_calls()) == 1


@responses.activate
@pytest.mark.parametrize("status", [409, 422])
def test_error_code_lists_become_remote_rejected_with_readable_messages(status):
    add_token()
    errors = [
        {"errorCode": 1001009, "message": "Artikelnumret finns redan."},
        {"errorCode": 1001010, "message": "Momskod saknas."},
    ]
    responses.post(ROOT + "articles", status=status, json=errors)
    with pytest.raises(RemoteRejected) as caught:
        hogia().article_create({"number": "SKU-1"}, sequence_id="s")
    error = caught.value
    assert type(error) is RemoteRejected and error.status == status
    assert error.errors == errors and error.code == "1001009,1001010"
    assert error.message == "Artikelnumret finns redan.; Momskod saknas."
    assert len(api_calls()) == 1


@responses.activate
@pytest.mark.parametrize(
    "status, body, error_type",
    [
        (403, {"title": "Forbidden", "status": 403}, Unauthorised),
        (404, {"title": "Not Found", "status": 404}, NotFound),
        (429, {"title": "Too Many Requests", "status": 429}, RateLimited),
        (500, None, RemoteUnavailable),
    ],
)
def test_other_statuses_become_typed_errors(status, body, error_type):
    add_token()
    responses.get(
        ROOT + "customerinvoices/x", status=status, **({"json": body} if body else {"body": "boom"})
    )
    with pytest.raises(error_type) as caught:
        hogia(retry=NO_RETRY).invoice_get("x")
    assert type(caught.value) is error_type and caught.value.system == "Hogia Smart"
    if body:
        assert body["title"] in str(caught.value)


@responses.activate
def test_connection_error_is_unavailable_after_the_retries():
    add_token()
    responses.get(ROOT + "organization", body=requests.exceptions.ConnectionError("refused"))
    sleeper = Sleeper()
    client = hogia(sleep=sleeper, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(RemoteUnavailable):
        client.organization()
    assert len(api_calls()) == 2 and sleeper.waits == [0.5]


@responses.activate
def test_no_secret_or_token_in_debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    add_token("very-secret-access-token")
    responses.get(ROOT + "organization", status=401)
    with pytest.raises(Unauthorised):
        hogia().organization()
    assert "connect/token" in caplog.text and "organization" in caplog.text
    for secret in (CLIENT_SECRET, "very-secret-access-token", "Bearer"):
        assert secret not in caplog.text


def test_request_bodies_write_decimals_exactly_and_dates_as_text():
    body = {
        "invoiceDate": date(2026, 11, 27),
        "sequenceId": uuid.UUID(int=1),
        "lines": [{"unitPrice": Decimal("26.6640"), "quantity": Decimal("1E+1")}],
    }
    assert json_dumps(body) == (
        '{"invoiceDate":"2026-11-27",'
        '"sequenceId":"00000000-0000-0000-0000-000000000001",'
        '"lines":[{"unitPrice":26.6640,"quantity":10}]}'
    )
    with pytest.raises(ValueError):
        json_dumps({"x": Decimal("NaN")})
