"""The Hogia Smart client against the Hogia sandbox over real sockets."""

import time
import uuid
from decimal import Decimal

import pytest
import requests

from integrations.clients import HogiaSmartClient, InMemoryTokenCache, RetryPolicy
from integrations.errors import RateLimited, RemoteRejected, RemoteUnavailable, Unauthorised
from integrations.sandboxes import demo


def _client(hogia_sandbox, **kwargs) -> HogiaSmartClient:
    options = dict(
        api_base=hogia_sandbox.url,
        organization_id=demo.HOGIA_ORGANIZATION_ID,
        client_id=demo.HOGIA_CLIENT_ID,
        client_secret=demo.HOGIA_CLIENT_SECRET,
        token_cache=InMemoryTokenCache(),
    )
    options.update(kwargs)
    return HogiaSmartClient(**options)


def _control(hogia_sandbox, path, body):
    requests.post(f"{hogia_sandbox.url}/_sandbox/{path}", json=body, timeout=5).raise_for_status()


def test_thirty_calls_in_five_seconds_get_429_and_the_client_waits_then_succeeds(hogia_sandbox):
    _control(hogia_sandbox, "rate-limit", {"requests": 25, "seconds": 5})
    token = requests.post(
        f"{hogia_sandbox.url}/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": demo.HOGIA_CLIENT_ID,
            "client_secret": demo.HOGIA_CLIENT_SECRET,
        },
    ).json()["access_token"]
    url = f"{hogia_sandbox.url}/{demo.HOGIA_ORGANIZATION_ID}/vatcodes"
    session = requests.Session()
    statuses = []
    for _ in range(30):
        response = session.get(
            url, params={"api-version": "2025-02-13"}, headers={"Authorization": f"Bearer {token}"}
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            retry_after = response.headers["Retry-After"]
    assert statuses.count(200) == 25 and statuses.count(429) == 5
    assert 1 <= int(retry_after) <= 5

    # The portal's client makes the same 30 calls on a fresh token: it honours Retry-After.
    client = _client(hogia_sandbox)
    started = time.monotonic()
    answers = [client.vat_codes() for _ in range(30)]
    elapsed = time.monotonic() - started
    assert all({c["vatPercent"] for c in a} == {25, 12, 6, 0} for a in answers)
    assert elapsed >= 1.0  # it had to wait for the window to slide
    assert client.requests_made > 31  # the 429s were real answers it waited out


def test_token_is_cached_and_renewed_when_it_expires(hogia_sandbox):
    _control(hogia_sandbox, "token-lifetime", {"seconds": 1})
    client = _client(hogia_sandbox)
    client.organization()
    time.sleep(1.2)
    client.organization()
    assert client.requests_made == 4  # the token had expired: a new one before the second call
    _control(hogia_sandbox, "token-lifetime", {"seconds": 3600})
    client = _client(hogia_sandbox)
    for _ in range(3):
        client.result_units()
    assert client.requests_made == 4  # one token, three calls


def test_wrong_credentials_are_unauthorised(hogia_sandbox):
    with pytest.raises(Unauthorised):
        _client(hogia_sandbox, client_secret="wrong").organization()


def test_paging_and_the_rowversion_feed(hogia_sandbox):
    articles = [
        {
            "number": f"BULK-{i:04d}",
            "name": f"Artikel {i}",
            "vatPercent": 25,
            "prices": {"ordinary": "10.00"},
            "isStockArticle": True,
            "stockBalance": 5,
        }
        for i in range(1203)
    ]
    _control(hogia_sandbox, f"{demo.HOGIA_ORGANIZATION_ID}/articles", articles)
    client = _client(hogia_sandbox)
    numbers = [a["number"] for a in client.articles_iter(page_size=500)]
    assert len([n for n in numbers if n.startswith("BULK-")]) == 1203
    assert len(numbers) == len(set(numbers))
    latest = max(a["rowVersion"] for a in client.articles_iter())
    article = client.article_by_number("BULK-0007")
    client.article_update(article["id"], {"name": "Ändrad"})
    changed = list(client.articles_changed_since(latest))
    assert [a["number"] for a in changed] == ["BULK-0007"]
    assert changed[0]["name"] == "Ändrad" and changed[0]["rowVersion"] > latest


def _invoice(customer_number):
    invoice = {
        "customerNumber": customer_number,
        "invoiceDate": "2026-11-27",
        "dueDate": "2026-12-27",
        "currency": {"code": "SEK"},
        "pricesIncludeVat": False,
        "customerOrderNumber": "39",
        "dimensions": [{"type": "One", "number": "1"}],
        "useRounding": False,
    }
    lines = [
        {
            "articleNumber": "SE-MUGG-35",
            "description": "Kaffemugg",
            "quantity": Decimal("3"),
            "unitPrice": Decimal("26.6640"),
            "vatPercent": 25,
            "discountPercent": 0,
            "unitType": "st",
        }
    ]
    return invoice, lines


def test_an_invoice_create_is_retried_after_an_outage_and_still_makes_one_invoice(hogia_sandbox):
    client = _client(hogia_sandbox, retry=RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05))
    contact = client.contact_create(
        {
            "isOrganization": False,
            "givenName": "Maria",
            "surName": "Lindqvist",
            "email": "maria.lindqvist@example.se",
        },
        uuid.uuid4(),
    )
    sequence_id = uuid.uuid4()
    _control(hogia_sandbox, "faults", {"mode": "status", "status": 503, "count": 2})
    invoice = client.invoice_create(*_invoice(contact["number"]), sequence_id)
    assert invoice["netAmount"] == Decimal("79.99") and invoice["vatAmount"] == Decimal("20.00")
    # The answer was lost (connection dropped after the fact is modelled as a retry with the
    # same sequenceId): the repeat returns the first invoice and creates nothing.
    again = client.invoice_create(*_invoice(contact["number"]), sequence_id)
    assert again["id"] == invoice["id"]
    assert [i["id"] for i in client.invoices_find(customer_order_number="39")] == [invoice["id"]]


def test_a_dropped_connection_is_unavailable_and_a_bad_article_is_rejected(hogia_sandbox):
    client = _client(hogia_sandbox, retry=RetryPolicy(max_attempts=1))
    client.organization()
    _control(hogia_sandbox, "faults", {"mode": "drop", "count": 1})
    with pytest.raises(RemoteUnavailable):
        client.organization()
    contact = client.contact_create(
        {"isOrganization": True, "companyName": "Exempel Handel AB"}, uuid.uuid4()
    )
    invoice, lines = _invoice(contact["number"])
    lines[0]["articleNumber"] = "FINNS-INTE"
    with pytest.raises(RemoteRejected) as caught:
        client.invoice_create(invoice, lines, uuid.uuid4())
    assert caught.value.status == 422 and "FINNS-INTE" in str(caught.value)


def test_a_429_beyond_the_callers_patience_is_raised_as_rate_limited(hogia_sandbox):
    client = _client(hogia_sandbox, retry=RetryPolicy(max_attempts=3, max_total_wait=1))
    client.organization()
    _control(hogia_sandbox, "faults", {"mode": "status", "status": 429, "count": 1, "retry_after": 30})
    with pytest.raises(RateLimited) as caught:
        client.organization()
    assert caught.value.retry_after == 30
