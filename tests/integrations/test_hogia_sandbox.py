"""The Hogia Smart sandbox over real sockets, against the contract in hogia-smart-api.md.

Expected invoice figures are worked out by hand in the comments, to the öre, so
that a change in the sandbox's arithmetic cannot hide behind the same code
computing both sides.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from decimal import Decimal

import pytest
import requests

from integrations.sandboxes.hogia import (
    API_VERSION,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_ORGANIZATION_ID,
    HogiaSmartSandbox,
)
from integrations.sandboxes.http import SandboxServer, json_dumps

pytestmark = pytest.mark.sandbox

ORG = DEMO_ORGANIZATION_ID


@pytest.fixture(scope="module")
def server():
    server = SandboxServer(HogiaSmartSandbox(), port=0).start()
    yield server
    server.stop()


class Hogia:
    """Plain requests against the sandbox: a token, the API and the controls."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()
        self.token = ""

    def fetch_token(self, client_id: str = DEMO_CLIENT_ID, secret: str = DEMO_CLIENT_SECRET) -> str:
        response = self.session.post(
            f"{self.base}/connect/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def api(
        self,
        method: str,
        path: str,
        *,
        org: str = ORG,
        token: str | None = None,
        params: dict | None = None,
        body=None,
    ) -> requests.Response:
        params = {"api-version": API_VERSION, **(params or {})}
        headers = {"Authorization": f"Bearer {token or self.token}"}
        data = None
        if body is not None:
            data = json_dumps(body)
            headers["Content-Type"] = "application/json"
        return self.session.request(
            method, f"{self.base}/{org}/{path}", params=params, headers=headers, data=data, timeout=10
        )

    def control(self, path: str, body=None, method: str = "POST") -> requests.Response:
        return self.session.request(
            method,
            f"{self.base}/_sandbox/{path}",
            data=json_dumps(body if body is not None else {}),
            timeout=30,
        )

    def create_contact(self, **fields) -> dict:
        response = self.api("POST", "contacts", body={"sequenceId": str(uuid.uuid4()), **fields})
        assert response.status_code == 201, response.text
        return decimal_json(response)

    def article(self, number: str) -> dict:
        response = self.api("GET", "articles", params={"number": number})
        assert response.status_code == 200, response.text
        found = decimal_json(response)
        assert len(found) == 1
        return found[0]


def decimal_json(response: requests.Response):
    return json.loads(response.text, parse_float=Decimal)


@pytest.fixture
def hogia(server):
    """The demo organisation on a fresh sandbox, rate limit off unless a test turns it on."""
    client = Hogia(server.url)
    assert client.control("reset", {"demo": True}).status_code == 200
    client.token = client.fetch_token()
    client.control("rate-limit", {"requests": 0})
    yield client
    client.session.close()


def invoice_body(
    lines,
    *,
    customer="1001",
    prices_include_vat=False,
    use_rounding=False,
    sequence_id=None,
    order_number="W-1",
    **head,
) -> dict:
    return {
        "sequenceId": sequence_id or str(uuid.uuid4()),
        "customerInvoice": {
            "customerNumber": customer,
            "invoiceDate": "2026-11-27",
            "dueDate": "2026-12-27",
            "currency": {"code": "SEK"},
            "pricesIncludeVat": prices_include_vat,
            "customerOrderNumber": order_number,
            "dimensions": [{"type": "One", "number": "2"}],
            "useRounding": use_rounding,
            **head,
        },
        "invoiceLines": lines,
    }


def line(article, quantity, price, vat, discount=0, **extra) -> dict:
    data = {
        "quantity": Decimal(str(quantity)),
        "unitPrice": Decimal(str(price)),
        "vatPercent": vat,
        "discountPercent": Decimal(str(discount)),
        "unitType": "st",
        **extra,
    }
    if article:
        data["articleNumber"] = article
    return data


# -- token, auth, organisation --------------------------------------------------------------------


def test_token_endpoint_and_unauthorised_calls(hogia):
    bad = hogia.session.post(
        f"{hogia.base}/connect/token",
        data={"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID, "client_secret": "wrong"},
    )
    assert bad.status_code == 400 and bad.json() == {"error": "invalid_client"}
    good = hogia.session.post(
        f"{hogia.base}/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
        },
    )
    assert good.json()["token_type"] == "Bearer" and good.json()["expires_in"] == 3600

    no_header = hogia.session.get(f"{hogia.base}/{ORG}/organization", params={"api-version": API_VERSION})
    assert no_header.status_code == 401 and no_header.content == b""
    assert hogia.api("GET", "organization", token="not-a-token").status_code == 401

    hogia.control("token-lifetime", {"seconds": 0.4})
    short = hogia.fetch_token()
    assert hogia.api("GET", "organization", token=short).status_code == 200
    time.sleep(0.5)
    expired = hogia.api("GET", "organization", token=short)
    assert expired.status_code == 401 and expired.content == b""
    hogia.control("token-lifetime", {"seconds": 3600})
    assert hogia.api("GET", "organization", token=hogia.fetch_token()).status_code == 200


def test_organisation_access_and_api_version(hogia):
    other = hogia.control(
        "organizations",
        {
            "name": "Annat AB",
            "organizationNumber": "556000-1111",
            "clientId": "other-client",
            "clientSecret": "other-secret",
        },
    ).json()
    other_token = hogia.fetch_token("other-client", "other-secret")
    assert hogia.api("GET", "organization", org=other["id"], token=other_token).json()["name"] == "Annat AB"
    assert hogia.api("GET", "organization", token=other_token).status_code == 403
    assert hogia.api("GET", "organization", org=other["id"]).status_code == 403
    unknown = hogia.api("GET", "organization", org=str(uuid.uuid4()))
    assert unknown.status_code == 404 and unknown.json()["status"] == 404

    missing_version = hogia.session.get(
        f"{hogia.base}/{ORG}/organization", headers={"Authorization": f"Bearer {hogia.token}"}
    )
    assert missing_version.status_code == 400
    problem = missing_version.json()
    assert (
        problem["title"] == "One or more validation errors occurred." and "api-version" in problem["errors"]
    )


def test_organization_result_units_and_vat_codes(hogia):
    assert hogia.api("GET", "organization").json() == {
        "id": ORG,
        "name": "Demo Handel AB",
        "organizationNumber": "556677-8899",
        "modules": {"bookkeeping": True, "invoicing": True, "pointOfSale": True},
    }
    units = hogia.api("GET", "dimensions", params={"dimensionType": "One"}).json()
    assert [(u["number"], u["name"], u["isActive"]) for u in units] == [
        ("1", "Butik 1", True),
        ("2", "Butik 2", True),
    ]
    codes = hogia.api("GET", "vatcodes").json()
    assert sorted(c["vatPercent"] for c in codes) == [0, 6, 12, 25]


# -- paging and rate limit ----------------------------------------------------------------------------


def test_paging_headers_and_page_size_limit(hogia):
    created = hogia.control(
        f"{ORG}/articles",
        [
            {
                "number": f"BULK-{n:03}",
                "name": f"Bulk {n}",
                "vatPercent": 25,
                "prices": {"ordinary": "10.00"},
                "stockBalance": 5,
            }
            for n in range(250)
        ],
    )  # strings: controls only
    assert created.status_code == 201 and len(created.json()) == 250
    first = hogia.api("GET", "articles")
    assert len(first.json()) == 100
    assert first.headers["X-Pagination-Currentpage"] == "1"
    assert first.headers["X-Pagination-Pagecount"] == "3"
    assert first.headers["X-Pagination-Totalcount"] == "262"  # 12 demo articles + 250
    last = hogia.api("GET", "articles", params={"page": 3, "pageSize": 100})
    assert len(last.json()) == 62 and last.json()[-1]["number"] == "BULK-249"
    assert decimal_json(last)[-1]["prices"]["ordinary"] == Decimal("10.00")
    assert hogia.api("GET", "articles", params={"pageSize": 500}).headers["X-Pagination-Pagecount"] == "1"
    too_big = hogia.api("GET", "articles", params={"pageSize": 501})
    assert too_big.status_code == 400 and "pageSize" in too_big.json()["errors"]
    assert hogia.api("GET", "articles", params={"page": 0}).status_code == 400


def test_rate_limit_small_window(hogia):
    hogia.control("rate-limit", {"requests": 5, "seconds": 1})
    statuses = [hogia.api("GET", "organization").status_code for _ in range(5)]
    assert statuses == [200] * 5
    limited = hogia.api("GET", "organization")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    # Token requests are not counted, and a new token does not get a new window.
    assert hogia.api("GET", "organization", token=hogia.fetch_token()).status_code == 429
    time.sleep(int(limited.headers["Retry-After"]))
    assert hogia.api("GET", "organization").status_code == 200


def test_rate_limit_counts_per_api_client_not_per_company(hogia):
    """Hogia Smart counts calls per API client: one client id's companies share a window, and
    another client id reaching the same company has its own."""
    second = hogia.control(
        "organizations",
        {
            "name": "Andra AB",
            "organizationNumber": "556000-2222",
            "clientId": DEMO_CLIENT_ID,
            "clientSecret": DEMO_CLIENT_SECRET,
        },
    ).json()
    hogia.control(
        "seed",
        {"clients": [{"clientId": "byra-client", "clientSecret": "byra-secret", "organizations": [ORG]}]},
    )
    other_client = hogia.fetch_token("byra-client", "byra-secret")
    hogia.control("rate-limit", {"requests": 4, "seconds": 2})
    statuses = [hogia.api("GET", "organization", org=org).status_code for org in (ORG, second["id"]) * 2]
    assert statuses == [200] * 4
    assert hogia.api("GET", "organization", org=second["id"]).status_code == 429
    assert hogia.api("GET", "organization").status_code == 429
    assert [hogia.api("GET", "organization", token=other_client).status_code for _ in range(4)] == [200] * 4
    assert hogia.api("GET", "organization", token=other_client).status_code == 429


def test_rate_limit_default_25_per_5_seconds(hogia):
    hogia.control("rate-limit", {"requests": 25, "seconds": 5})
    statuses = [hogia.api("GET", "vatcodes").status_code for _ in range(30)]
    assert statuses[:25] == [200] * 25 and statuses[25:] == [429] * 5
    limited = hogia.api("GET", "vatcodes")
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 5
    time.sleep(retry_after)
    assert hogia.api("GET", "vatcodes").status_code == 200


# -- contacts ----------------------------------------------------------------------------------------


def test_contacts_numbers_conflicts_validation_and_filters(hogia):
    anna = hogia.create_contact(
        givenName="Anna",
        surName="Svensson",
        email="anna@example.se",
        identificationNumber="19800101-1234",
        addresses=[
            {
                "addressType": "Billing",
                "street": "Storgatan 1",
                "zipCode": "111 22",
                "city": "Stockholm",
                "countryCode": "SE",
            }
        ],
    )
    firma = hogia.create_contact(
        isOrganization=True, companyName="Firma AB", email="info@firma.se", identificationNumber="556123-4567"
    )
    assert (anna["number"], firma["number"]) == ("1001", "1002")
    assert anna["customer"] == {"isActive": True, "paymentTerms": 30, "currencyCode": "SEK"}
    assert firma["rowVersion"] > anna["rowVersion"]

    explicit = hogia.create_contact(number="1003", givenName="Bo")
    assert explicit["number"] == "1003"
    assert hogia.create_contact(givenName="Cia")["number"] == "1004"  # 1003 was taken
    duplicate = hogia.api(
        "POST", "contacts", body={"sequenceId": str(uuid.uuid4()), "number": "1001", "givenName": "Dup"}
    )
    assert duplicate.status_code == 409 and duplicate.json()[0]["errorCode"] == 1001009

    invalid = hogia.api(
        "POST",
        "contacts",
        body={"sequenceId": str(uuid.uuid4()), "isOrganization": True, "email": "not-an-address"},
    )
    assert invalid.status_code == 400
    assert {"companyName", "email"} <= set(invalid.json()["errors"])

    assert [c["id"] for c in hogia.api("GET", "contacts", params={"email": "anna@example.se"}).json()] == [
        anna["id"]
    ]
    assert hogia.api("GET", "contacts", params={"email": "ANNA@example.se"}).json() == []
    assert [c["id"] for c in hogia.api("GET", "contacts", params={"number": "1002"}).json()] == [firma["id"]]
    by_id_number = hogia.api("GET", "contacts", params={"identificationNumber": "556123-4567"})
    assert [c["id"] for c in by_id_number.json()] == [firma["id"]]
    assert by_id_number.headers["X-Pagination-Totalcount"] == "1"
    assert hogia.api("GET", f"contacts/{anna['id']}").json()["email"] == "anna@example.se"

    updated = hogia.api("POST", f"contacts/{anna['id']}", body={"email": "anna.s@example.se"})
    assert updated.status_code == 200
    assert (
        updated.json()["email"] == "anna.s@example.se"
        and updated.json()["rowVersion"] > explicit["rowVersion"]
    )
    assert hogia.api("GET", "contacts", params={"email": "anna@example.se"}).json() == []
    assert hogia.api("POST", f"contacts/{anna['id']}", body={"number": "1002"}).status_code == 409


def test_contact_create_is_idempotent_on_sequence_id(hogia):
    body = {"sequenceId": str(uuid.uuid4()), "givenName": "Eva", "email": "eva@example.se"}
    first = hogia.api("POST", "contacts", body=body)
    again = hogia.api("POST", "contacts", body=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert hogia.api("GET", "contacts").headers["X-Pagination-Totalcount"] == "1"


# -- articles ----------------------------------------------------------------------------------------


def test_articles_create_patch_conflict_and_filter(hogia):
    body = {
        "sequenceId": str(uuid.uuid4()),
        "number": "WOO-1",
        "name": "Termos",
        "vatPercent": 25,
        "prices": {"ordinary": Decimal("199.2000")},
        "sendToWebshop": True,
    }
    created = hogia.api("POST", "articles", body=body)
    assert created.status_code == 201
    article = decimal_json(created)
    assert article["unit"] == "st" and article["prices"]["ordinary"] == Decimal("199.2000")
    assert article["isStockArticle"] is True and article["stockBalance"] == 0
    assert hogia.api("POST", "articles", body=body).status_code == 200  # same sequenceId
    duplicate = hogia.api("POST", "articles", body={**body, "sequenceId": str(uuid.uuid4())})
    assert duplicate.status_code == 409 and duplicate.json()[0]["errorCode"] == 1001009
    as_string = hogia.api(
        "POST",
        "articles",
        body={**body, "sequenceId": str(uuid.uuid4()), "number": "WOO-3", "prices": {"ordinary": "199.20"}},
    )
    assert as_string.status_code == 400 and "prices.ordinary" in as_string.json()["errors"]
    no_code = hogia.api(
        "POST",
        "articles",
        body={**body, "sequenceId": str(uuid.uuid4()), "number": "WOO-2", "vatPercent": 18},
    )
    assert no_code.status_code == 422

    patched = hogia.api(
        "PATCH",
        f"articles/{article['id']}",
        body={"name": "Termos 1 l", "prices": {"campaign": Decimal("149.00")}},
    )
    assert patched.status_code == 200
    patched = decimal_json(patched)
    assert patched["name"] == "Termos 1 l" and patched["prices"]["ordinary"] == Decimal("199.2000")
    assert (
        patched["prices"]["campaign"] == Decimal("149.00") and patched["rowVersion"] > article["rowVersion"]
    )
    json_patch = hogia.api(
        "PATCH",
        f"articles/{article['id']}",
        body=[{"op": "replace", "path": "/sendToWebshop", "value": False}],
    )
    assert json_patch.json()["sendToWebshop"] is False
    assert hogia.api("PATCH", f"articles/{article['id']}", body={"number": "SE-MUGG-35"}).status_code == 409
    assert hogia.api("PATCH", f"articles/{uuid.uuid4()}", body={"name": "x"}).status_code == 404
    assert hogia.article("WOO-1")["name"] == "Termos 1 l"


def test_article_rowversion_feed_is_oldest_first_and_paged(hogia):
    watermark = max(a["rowVersion"] for a in hogia.api("GET", "articles").json())
    created = hogia.control(
        f"{ORG}/articles", [{"number": f"FEED-{n}", "name": f"Feed {n}", "vatPercent": 12} for n in range(5)]
    ).json()
    hogia.api("PATCH", f"articles/{created[0]['id']}", body={"name": "Feed 0 renamed"})

    page1 = hogia.api("GET", "articles/rowversion", params={"lastKnownRowVersion": watermark, "pageSize": 2})
    assert page1.headers["X-Pagination-Totalcount"] == "5"
    assert page1.headers["X-Pagination-Pagecount"] == "3"
    rows = page1.json()
    for page in (2, 3):
        rows += hogia.api(
            "GET",
            "articles/rowversion",
            params={"lastKnownRowVersion": watermark, "pageSize": 2, "page": page},
        ).json()
    assert [r["number"] for r in rows] == ["FEED-1", "FEED-2", "FEED-3", "FEED-4", "FEED-0"]
    assert rows[-1]["name"] == "Feed 0 renamed"
    versions = [r["rowVersion"] for r in rows]
    assert versions == sorted(versions) and versions[0] > watermark
    after = hogia.api("GET", "articles/rowversion", params={"lastKnownRowVersion": versions[-1]})
    assert after.json() == [] and after.headers["X-Pagination-Totalcount"] == "0"


# -- invoices ----------------------------------------------------------------------------------------


def test_invoice_totals_prices_excluding_vat(hogia):
    hogia.create_contact(givenName="Anna", surName="Svensson")
    stock_before = hogia.article("SE-KAFFE-500")["stockBalance"]
    response = hogia.api(
        "POST",
        "customerinvoices",
        body=invoice_body(
            [
                line("SE-KAFFE-500", 3, "79.00", 12),  # 237.00
                line("SE-MUGG-35", 2, "99.20", 25, discount=10),  # 2 x 99.20 x 0.90 = 178.56
                line("SE-BOK-001", 1, "279.00", 6),  # 279.00
                line("fraktavg", 1, "39.20", 25),  # 39.20
                line(None, "1.5", "10.01", 25, description="Presentinslagning"),  # 15.015 -> 15.02
                {"description": "Tack för din beställning!"},  # text line
            ],
            use_rounding=True,
        ),
    )
    assert response.status_code == 201, response.text
    invoice = decimal_json(response)
    # 25 %: 178.56 + 39.20 + 15.02 = 232.78, VAT 58.195 -> 58.20 (half up);
    # 12 %: 237.00, VAT 28.44; 6 %: 279.00, VAT 16.74.
    assert invoice["vatDistributions"] == [
        {"percent": 25, "netAmount": Decimal("232.78"), "vatAmount": Decimal("58.20")},
        {"percent": 12, "netAmount": Decimal("237.00"), "vatAmount": Decimal("28.44")},
        {"percent": 6, "netAmount": Decimal("279.00"), "vatAmount": Decimal("16.74")},
    ]
    # 748.78 + 103.38 = 852.16, rounded to whole kronor: 852.00.
    assert invoice["netAmount"] == Decimal("748.78")
    assert invoice["vatAmount"] == Decimal("103.38")
    assert invoice["roundingAmount"] == Decimal("-0.16")
    assert invoice["grossAmount"] == Decimal("852.00")
    assert '"grossAmount":852.00' in response.text  # an exact JSON number, not a float's digits
    mug = invoice["invoiceLines"][1]
    assert (mug["netAmount"], mug["vatAmount"], mug["grossAmount"]) == (
        Decimal("178.56"),
        Decimal("44.64"),
        Decimal("223.20"),
    )
    assert invoice["invoiceLines"][4]["netAmount"] == Decimal("15.02")
    assert invoice["invoiceLines"][5]["description"] == "Tack för din beställning!"
    assert invoice["invoiceLines"][0]["description"] == "Kaffe mellanrost 500 g"
    assert (invoice["status"], invoice["isBilled"], invoice["isCustomerPaid"], invoice["isCanceled"]) == (
        "Draft",
        False,
        False,
        False,
    )
    assert invoice["invoiceNumber"] == 1 and invoice["customerNumber"] == "1001"
    assert invoice["dimensions"] == [{"type": "One", "number": "2"}]
    assert hogia.article("SE-KAFFE-500")["stockBalance"] == stock_before - 3
    assert decimal_json(hogia.api("GET", f"customerinvoices/{invoice['id']}")) == invoice


def test_invoice_totals_prices_including_vat(hogia):
    hogia.create_contact(givenName="Anna")
    response = hogia.api(
        "POST",
        "customerinvoices",
        body=invoice_body(
            [
                line("SE-KAFFE-500", 3, "88.48", 12),  # gross 265.44, net 265.44 / 1.12 = 237.00
                line("SE-MUGG-35", 2, "124.00", 25, discount=10),  # gross 223.20, net 178.56
                line("SE-BOK-001", 1, "295.74", 6),  # gross 295.74, net 279.00
                line("fraktavg", 1, "49.00", 25),  # gross 49.00, net 39.20
                line("expavg", "1.5", "10.01", 25),  # gross 15.015 -> 15.02, net 12.016 -> 12.02
                line(None, 1, "112.14", 12, description="Inslagning"),  # net 100.125 -> 100.13 (half up)
            ],
            prices_include_vat=True,
        ),
    )
    assert response.status_code == 201, response.text
    invoice = decimal_json(response)
    # 25 %: 178.56 + 39.20 + 12.02 = 229.78, VAT 57.445 -> 57.45 (half up);
    # 12 %: 237.00 + 100.13 = 337.13, VAT 40.4556 -> 40.46; 6 %: 279.00, VAT 16.74.
    assert invoice["vatDistributions"] == [
        {"percent": 25, "netAmount": Decimal("229.78"), "vatAmount": Decimal("57.45")},
        {"percent": 12, "netAmount": Decimal("337.13"), "vatAmount": Decimal("40.46")},
        {"percent": 6, "netAmount": Decimal("279.00"), "vatAmount": Decimal("16.74")},
    ]
    assert (invoice["netAmount"], invoice["vatAmount"]) == (Decimal("845.91"), Decimal("114.65"))
    # VAT per rate on the sum: 960.56, two öre more than the lines' grosses (960.54).
    assert (invoice["roundingAmount"], invoice["grossAmount"]) == (Decimal("0.00"), Decimal("960.56"))
    wrapping = invoice["invoiceLines"][5]
    assert (wrapping["netAmount"], wrapping["vatAmount"], wrapping["grossAmount"]) == (
        Decimal("100.13"),
        Decimal("12.01"),
        Decimal("112.14"),
    )
    assert invoice["invoiceLines"][4]["grossAmount"] == Decimal("15.02")
    assert invoice["invoiceLines"][4]["netAmount"] == Decimal("12.02")


def test_use_rounding_rounds_half_krona_up(hogia):
    hogia.create_contact(givenName="Anna")
    invoice = decimal_json(
        hogia.api(
            "POST",
            "customerinvoices",
            body=invoice_body([line("SE-MUGG-35", 1, "100.40", 25)], use_rounding=True),
        )
    )
    # 100.40 + 25.10 = 125.50 -> 126.00
    assert (invoice["roundingAmount"], invoice["grossAmount"]) == (Decimal("0.50"), Decimal("126.00"))
    plain = decimal_json(
        hogia.api(
            "POST",
            "customerinvoices",
            body=invoice_body([line("SE-MUGG-35", 1, "100.40", 25)], order_number="W-2"),
        )
    )
    assert (plain["roundingAmount"], plain["grossAmount"]) == (Decimal("0.00"), Decimal("125.50"))
    assert plain["invoiceNumber"] == invoice["invoiceNumber"] + 1


def test_invoice_create_is_idempotent_on_sequence_id(hogia):
    hogia.create_contact(givenName="Anna")
    body = invoice_body([line("SE-TE-100", 2, "49.00", 12)], order_number="W-77")
    first = hogia.api("POST", "customerinvoices", body=body)
    again = hogia.api("POST", "customerinvoices", body=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    listed = hogia.api("GET", "customerinvoices", params={"customerOrderNumber": "W-77"})
    assert len(listed.json()) == 1 and listed.headers["X-Pagination-Totalcount"] == "1"
    assert hogia.article("SE-TE-100")["stockBalance"] == 58  # 60 less 2, once


def test_invoice_business_rule_and_validation_errors(hogia):
    hogia.create_contact(givenName="Anna")
    stock = hogia.article("SE-TE-100")["stockBalance"]
    unknown_article = hogia.api(
        "POST",
        "customerinvoices",
        body=invoice_body([line("SE-TE-100", 1, "49.00", 12), line("NO-SUCH-SKU", 1, "10.00", 25)]),
    )
    assert unknown_article.status_code == 422
    assert "NO-SUCH-SKU" in unknown_article.json()[0]["message"] and unknown_article.json()[0]["errorCode"]
    no_vat_code = hogia.api(
        "POST", "customerinvoices", body=invoice_body([line("SE-TE-100", 1, "49.00", 18)])
    )
    assert no_vat_code.status_code == 422 and "18" in no_vat_code.json()[0]["message"]
    unknown_customer = hogia.api(
        "POST", "customerinvoices", body=invoice_body([line("SE-TE-100", 1, "49.00", 12)], customer="9999")
    )
    assert unknown_customer.status_code == 422

    too_precise = hogia.api(
        "POST", "customerinvoices", body=invoice_body([line("SE-TE-100", "1.0005", "49.00001", 12)])
    )
    assert too_precise.status_code == 400
    assert set(too_precise.json()["errors"]) == {"invoiceLines[0].quantity", "invoiceLines[0].unitPrice"}
    no_customer = invoice_body([line("SE-TE-100", 1, "49.00", 12)])
    del no_customer["customerInvoice"]["customerNumber"]
    missing = hogia.api("POST", "customerinvoices", body=no_customer)
    assert missing.status_code == 400 and "customerInvoice.customerNumber" in missing.json()["errors"]

    assert hogia.api("GET", "customerinvoices").json() == []
    assert hogia.article("SE-TE-100")["stockBalance"] == stock


def test_credit_invoice_links_back_and_returns_stock(hogia):
    hogia.create_contact(givenName="Anna")
    original = decimal_json(
        hogia.api(
            "POST",
            "customerinvoices",
            body=invoice_body([line("SE-TS-M", 2, "159.20", 25), line("fraktavg", 1, "39.20", 25)]),
        )
    )
    assert hogia.article("SE-TS-M")["stockBalance"] == 23
    credit = hogia.api(
        "POST",
        "customerinvoices",
        body=invoice_body(
            [line("SE-TS-M", -2, "159.20", 25), line("fraktavg", -1, "39.20", 25)],
            order_number="W-1",
            creditedInvoiceId=original["id"],
        ),
    )
    assert credit.status_code == 201, credit.text
    credit = decimal_json(credit)
    assert credit["creditedInvoiceId"] == original["id"]
    assert credit["customerInvoiceReferences"] == [
        {"referencedCustomerInvoiceId": original["id"], "type": "Credit"}
    ]
    # 318.40 + 39.20 = 357.60, VAT 89.40, gross 447.00; the credit is its exact negative.
    assert original["grossAmount"] == Decimal("447.00")
    assert (credit["netAmount"], credit["vatAmount"], credit["grossAmount"]) == (
        Decimal("-357.60"),
        Decimal("-89.40"),
        Decimal("-447.00"),
    )
    assert hogia.article("SE-TS-M")["stockBalance"] == 25
    positive = hogia.api(
        "POST",
        "customerinvoices",
        body=invoice_body([line("SE-TS-M", 1, "159.20", 25)], creditedInvoiceId=original["id"]),
    )
    assert positive.status_code == 400
    orphan = hogia.api(
        "POST",
        "customerinvoices",
        body=invoice_body([line("SE-TS-M", -1, "159.20", 25)], creditedInvoiceId=str(uuid.uuid4())),
    )
    assert orphan.status_code == 422
    both = hogia.api("GET", "customerinvoices", params={"customerOrderNumber": "W-1"}).json()
    assert [i["id"] for i in both] == [original["id"], credit["id"]]


def test_till_sale_lowers_stock_and_needs_point_of_sale(hogia):
    mug = hogia.article("SE-MUGG-35")
    sale = hogia.control(
        f"{ORG}/till-sale",
        {
            "lines": [
                {"articleNumber": "SE-MUGG-35", "quantity": 2},
                {"articleNumber": "fraktavg", "quantity": 1},
            ]
        },
    )
    assert sale.status_code == 200
    after = hogia.article("SE-MUGG-35")
    assert after["stockBalance"] == mug["stockBalance"] - 2 and after["rowVersion"] > mug["rowVersion"]
    feed = hogia.api("GET", "articles/rowversion", params={"lastKnownRowVersion": mug["rowVersion"]}).json()
    assert [a["number"] for a in feed][-1] == "SE-MUGG-35"
    assert "fraktavg" not in [a["number"] for a in feed]  # not a stock article: unchanged

    no_till = hogia.control(
        "organizations",
        {"name": "Utan kassa AB", "organizationNumber": "556000-2222", "modules": {"pointOfSale": False}},
    ).json()
    hogia.control(
        f"{no_till['id']}/articles", {"number": "X-1", "name": "X", "vatPercent": 25, "stockBalance": 3}
    )
    rejected = hogia.control(
        f"{no_till['id']}/till-sale", {"lines": [{"articleNumber": "X-1", "quantity": 1}]}
    )
    assert rejected.status_code == 409
    unknown = hogia.control(f"{ORG}/till-sale", {"lines": [{"articleNumber": "NOPE", "quantity": 1}]})
    assert unknown.status_code == 422


def test_status_control_bumps_row_version(hogia):
    hogia.create_contact(givenName="Anna")
    invoice = hogia.api(
        "POST", "customerinvoices", body=invoice_body([line("SE-BRYGG-01", 1, "639.20", 25)])
    ).json()
    assert hogia.article("SE-BRYGG-01")["stockBalance"] == 5
    delivered = hogia.control(
        f"{ORG}/customerinvoices/{invoice['id']}/status",
        {
            "status": "Delivered",
            "delivery": {
                "carrier": "PostNord",
                "trackingNumber": "00370712345",
                "trackingUrl": "https://tracking.postnord.com/00370712345",
            },
        },
    )
    assert delivered.status_code == 200
    feed = hogia.api(
        "GET", "customerinvoices/rowversion", params={"lastKnownRowVersion": invoice["rowVersion"]}
    )
    changed = feed.json()
    assert len(changed) == 1 and changed[0]["status"] == "Delivered"
    assert changed[0]["delivery"]["carrier"] == "PostNord" and changed[0]["isBilled"] is False

    paid = hogia.control(f"{ORG}/customerinvoices/{invoice['id']}/status", {"status": "Paid"}).json()
    assert (paid["isBilled"], paid["isCustomerPaid"], paid["delivery"]["trackingNumber"]) == (
        True,
        True,
        "00370712345",
    )
    assert paid["rowVersion"] > changed[0]["rowVersion"]
    cancelled = hogia.control(
        f"{ORG}/customerinvoices/{invoice['id']}/status", {"status": "Cancelled"}
    ).json()
    assert cancelled["isCanceled"] is True
    assert hogia.article("SE-BRYGG-01")["stockBalance"] == 6  # cancelling returns the stock
    assert (
        hogia.control(f"{ORG}/customerinvoices/{invoice['id']}/status", {"status": "Paid"}).status_code == 409
    )
    assert (
        hogia.control(f"{ORG}/customerinvoices/{invoice['id']}/status", {"status": "Lost"}).status_code == 400
    )


def test_lag_hides_changes_until_it_passes(hogia):
    hogia.control("lag", {"seconds": 0.6})
    mug = hogia.article("SE-MUGG-35")
    watermark = max(a["rowVersion"] for a in hogia.api("GET", "articles").json())
    created = hogia.api(
        "POST",
        "articles",
        body={"sequenceId": str(uuid.uuid4()), "number": "LAG-1", "name": "Sen", "vatPercent": 25},
    )
    assert created.status_code == 201
    patched = hogia.api("PATCH", f"articles/{mug['id']}", body={"name": "Mugg ny"})
    assert patched.json()["name"] == "Mugg ny"  # the writer's own answer is current

    assert hogia.api("GET", f"articles/{created.json()['id']}").status_code == 404
    assert hogia.api("GET", "articles", params={"number": "LAG-1"}).json() == []
    assert hogia.api("GET", f"articles/{mug['id']}").json()["name"] == "Mugg 35 cl"
    hidden = hogia.api("GET", "articles/rowversion", params={"lastKnownRowVersion": watermark})
    assert hidden.json() == [] and hidden.headers["X-Pagination-Totalcount"] == "0"
    assert hogia.api("GET", "articles").headers["X-Pagination-Totalcount"] == "12"

    time.sleep(0.7)
    assert hogia.api("GET", f"articles/{created.json()['id']}").status_code == 200
    assert hogia.api("GET", f"articles/{mug['id']}").json()["name"] == "Mugg ny"
    shown = hogia.api("GET", "articles/rowversion", params={"lastKnownRowVersion": watermark}).json()
    assert [a["number"] for a in shown] == ["LAG-1", "SE-MUGG-35"]


def test_fault_injection_from_the_base(hogia):
    hogia.control("faults", {"mode": "status", "status": 503, "count": 1})
    assert hogia.api("GET", "organization").status_code == 503
    assert hogia.api("GET", "organization").status_code == 200
    hogia.control("faults", {"mode": "drop", "count": 1})
    with pytest.raises(requests.ConnectionError):
        hogia.api("GET", "organization")
    assert hogia.api("GET", "organization").status_code == 200
    hogia.control("faults", {"mode": "status", "status": 429, "retry_after": 2, "count": 1})
    injected = hogia.api("GET", "organization")
    assert injected.status_code == 429 and injected.headers["Retry-After"] == "2"


def test_state_survives_a_restart(tmp_path):
    state_file = tmp_path / "hogia.json"
    first = SandboxServer(HogiaSmartSandbox(demo=True), port=0, state_file=state_file).start()
    try:
        client = Hogia(first.url)
        client.token = client.fetch_token()
        client.create_contact(givenName="Anna", email="anna@example.se")
        invoice = client.api(
            "POST",
            "customerinvoices",
            body=invoice_body([line("SE-KAFFE-500", 3, "79.00", 12), line("SE-MUGG-35", 1, "100.40", 25)]),
        ).json()
        before = {
            path: client.api("GET", path).text
            for path in (
                f"customerinvoices/{invoice['id']}",
                "articles",
                "contacts",
                "articles/rowversion?lastKnownRowVersion=5",
            )
        }
    finally:
        first.stop()
    second = SandboxServer(HogiaSmartSandbox(), port=0, state_file=state_file).start()
    try:
        client.base = second.url  # the old token still works: tokens are state too
        after = {path: client.api("GET", path).text for path in before}
        assert after == before
        assert client.create_contact(givenName="Bo")["number"] == "1002"
        # 237.00 + 28.44 at 12 %, 100.40 + 25.10 at 25 %
        gross = decimal_json(client.api("GET", f"customerinvoices/{invoice['id']}"))["grossAmount"]
        assert gross == Decimal("390.94")
    finally:
        second.stop()
        client.session.close()

    app = HogiaSmartSandbox(demo=True)
    loaded = HogiaSmartSandbox()
    loaded.state_load(json.loads(json_dumps(app.state_dump()), parse_float=Decimal))
    assert json_dumps(loaded.state_dump()) == json_dumps(app.state_dump())


def test_concurrent_creates_get_distinct_numbers(hogia):
    numbers: list[str] = []

    def create():
        session = requests.Session()
        for _ in range(10):
            response = session.post(
                f"{hogia.base}/{ORG}/contacts",
                params={"api-version": API_VERSION},
                headers={"Authorization": f"Bearer {hogia.token}"},
                json={"sequenceId": str(uuid.uuid4()), "givenName": "Par"},
            )
            numbers.append(response.json()["number"])
        session.close()

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers, key=int) == [str(n) for n in range(1001, 1061)]


def test_ten_thousand_articles_load_and_feed_quickly(hogia):
    started = time.monotonic()
    assert (
        hogia.control(
            f"{ORG}/articles",
            {
                "articles": [
                    {
                        "number": f"BIG-{n:05}",
                        "name": f"Artikel {n}",
                        "vatPercent": 25,
                        "prices": {"ordinary": Decimal("99.00")},
                        "stockBalance": n % 50,
                        "sendToWebshop": True,
                    }
                    for n in range(10_000)
                ]
            },
        ).status_code
        == 201
    )
    seen = 0
    for page in range(1, 22):
        response = hogia.api(
            "GET", "articles/rowversion", params={"lastKnownRowVersion": 0, "page": page, "pageSize": 500}
        )
        seen += len(response.json())
    assert seen == 10_012
    assert hogia.article("BIG-09999")["stockBalance"] == 49
    assert time.monotonic() - started < 10


# -- the index page -------------------------------------------------------------------------------


def test_the_index_page_lists_the_companies_their_clients_and_the_controls(hogia, server):
    page = requests.get(server.url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    for shown in (
        DEMO_ORGANIZATION_ID,
        "Demo Handel AB",
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        f"{server.url}/connect/token",
        f"api-version={API_VERSION}",
        "/_sandbox/rate-limit",
        "/_sandbox/{org}/articles",
        "/_sandbox/{org}/customerinvoices/{id}/status",
    ):
        assert shown in page.text, shown
