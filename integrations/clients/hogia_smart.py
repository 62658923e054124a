"""Client for the Hogia Smart API, as fixed in ``shared/docs/hogia-smart-api.md``.

One client serves one organisation (company) of one API client id. Tokens come from
the client-credentials flow and are kept in a ``TokenCache`` shared by every client
of the same ``auth_base`` and ``client_id``; a ``rate_gate`` callable runs before
every API request so the portal can share a rate budget between shops.

Amounts come back as ``Decimal`` and are sent as exact JSON numbers.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from typing import Any, Callable, Iterator, Mapping, Protocol
from urllib.parse import quote

import requests

from integrations.clients.base import (
    DEFAULT_TIMEOUT,
    HttpClient,
    Params,
    QueryPairs,
    RetryPolicy,
    Timeout,
    int_header,
    query_pairs,
)
from integrations.errors import RemoteError, RemoteRejected, Unauthorised

DEFAULT_API_VERSION = "2025-02-13"
MAX_PAGE_SIZE = 500
# A token is renewed this long before it expires (half its lifetime if that is shorter),
# so that no call starts with a token that dies in flight.
TOKEN_MARGIN = 60.0
_TOKEN_ERRORS_MEANING_BAD_CREDENTIALS = frozenset({"invalid_client", "unauthorized_client", "invalid_grant"})


class TokenCache(Protocol):
    """Where access tokens are kept; Django's cache (``get``/``set``/``delete``) fits as it is."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any, timeout: float | None = None) -> None: ...

    def delete(self, key: str) -> Any: ...


class InMemoryTokenCache:
    """A thread-safe per-process token cache with expiry."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, tuple[Any, float | None]] = {}

    def get(self, key: str) -> Any:
        with self._lock:
            value, expires = self._values.get(key, (None, None))
            if expires is not None and expires <= self._clock():
                self._values.pop(key, None)
                return None
            return value

    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        with self._lock:
            self._values[key] = (value, None if timeout is None else self._clock() + timeout)

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)


# Shared by every client in the process that has no cache of its own, so that clients
# built per task reuse one token instead of asking for a new one each time.
PROCESS_TOKEN_CACHE = InMemoryTokenCache()


class HogiaSmartClient(HttpClient):
    """Talks to one Hogia Smart organisation.

    Every API call sends ``api-version`` and a bearer token. The token is fetched with
    ``POST {auth_base}/connect/token``, cached until ``TOKEN_MARGIN`` seconds before
    it expires, and renewed once when the API answers 401 (the call is then repeated
    once; a second 401 raises ``Unauthorised``).

    Retries: GETs, updates and creates (which carry a ``sequenceId``, so a repeat
    returns the first object) are retried on timeouts, 5xx and 429; every call is
    retried on 429, waiting at least ``Retry-After``.
    """

    system = "Hogia Smart"

    def __init__(
        self,
        *,
        api_base: str,
        organization_id: str,
        client_id: str,
        client_secret: str,
        auth_base: str | None = None,
        session: requests.Session | None = None,
        api_version: str = DEFAULT_API_VERSION,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        verify: bool | str | None = None,
        token_cache: TokenCache | None = None,
        rate_gate: Callable[[], None] | None = None,
    ):
        super().__init__(
            session=session,
            timeout=timeout,
            retry=retry,
            sleep=sleep,
            jitter=jitter,
            clock=clock,
            verify=verify,
        )
        self.api_base = api_base.rstrip("/")
        self.auth_base = (auth_base or api_base).rstrip("/")
        self.organization_id = str(organization_id)
        self.api_version = api_version
        self._client_id = client_id
        self._client_secret = client_secret
        self._token_cache: TokenCache = token_cache if token_cache is not None else PROCESS_TOKEN_CACHE
        self._rate_gate = rate_gate
        digest = hashlib.sha256(f"{self.auth_base}\n{client_id}".encode("utf-8")).hexdigest()[:32]
        self.token_cache_key = f"hogia-smart-token:{digest}"
        self._org_root = f"{self.api_base}/{quote(self.organization_id, safe='')}/"

    def __repr__(self) -> str:
        return f"<HogiaSmartClient {self.api_base} org={self.organization_id}>"

    # Token ------------------------------------------------------------------------------

    def _access_token(self) -> str:
        cached = self._token_cache.get(self.token_cache_key)
        if isinstance(cached, Mapping) and cached.get("renew_at", 0) > self._clock():
            return str(cached["access_token"])
        return self._fetch_token()

    def _fetch_token(self) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        try:
            # Asking for a token changes nothing on the server, so it is safe to repeat.
            answer = self._request(
                "POST", f"{self.auth_base}/connect/token", data=form, idempotent=True, authenticate=False
            ).data
        except RemoteRejected as exc:
            error = exc.body.get("error") if isinstance(exc.body, dict) else None
            if exc.status == 400 and error in _TOKEN_ERRORS_MEANING_BAD_CREDENTIALS:
                raise Unauthorised(
                    exc.message, system=self.system, status=exc.status, code=str(error), body=exc.body
                ) from None
            raise
        if not isinstance(answer, Mapping) or not answer.get("access_token"):
            raise RemoteError("The token endpoint answered without an access_token", system=self.system)
        expires_in = float(answer.get("expires_in") or 3600)
        token = str(answer["access_token"])
        lifetime = expires_in - min(TOKEN_MARGIN, expires_in / 2)
        now = self._clock()
        self._token_cache.set(
            self.token_cache_key,
            {"access_token": token, "expires_at": now + expires_in, "renew_at": now + lifetime},
            lifetime,
        )
        return token

    def _authorise(self, method: str, url: str, query: QueryPairs, headers: dict[str, str]) -> QueryPairs:
        token = self._access_token()
        if self._rate_gate is not None:
            self._rate_gate()
        headers["Authorization"] = f"Bearer {token}"
        return query

    def _renew_credentials(self) -> bool:
        self._token_cache.delete(self.token_cache_key)
        self._fetch_token()
        return True

    # Plumbing ---------------------------------------------------------------------------

    def _error_details(self, status: int, body: Any) -> tuple[str, str, Any]:
        if isinstance(body, list):
            messages, codes = [], []
            for entry in body:
                if isinstance(entry, Mapping):
                    messages.append(str(entry.get("message") or ""))
                    if entry.get("errorCode") is not None:
                        codes.append(str(entry["errorCode"]))
                else:
                    messages.append(str(entry))
            return ",".join(codes), "; ".join(m for m in messages if m), body
        if isinstance(body, Mapping):
            if isinstance(body.get("errors"), Mapping):
                fields = "; ".join(
                    f"{name}: {' '.join(str(m) for m in (msgs if isinstance(msgs, list) else [msgs]))}"
                    for name, msgs in body["errors"].items()
                )
                title = str(body.get("title") or "Validation failed")
                return "validation", f"{title} {fields}".strip(), body["errors"]
            if "error" in body:
                # OAuth token endpoint: {"error": "invalid_client", "error_description": "…"}
                return (str(body["error"]), str(body.get("error_description") or body["error"]), body)
            message = str(body.get("detail") or body.get("title") or "")
            return "", message, body
        return super()._error_details(status, body)

    def _url(self, resource: str) -> str:
        return self._org_root + resource.lstrip("/")

    def _params(self, params: Params = None) -> QueryPairs:
        return query_pairs(params) + [("api-version", self.api_version)]

    def _get(self, resource: str, params: Params = None) -> Any:
        return self._request("GET", self._url(resource), params=self._params(params)).data

    def _send_json(self, method: str, resource: str, body: Any) -> Any:
        # Creates carry a sequenceId and updates set absolute values: both are safe to repeat.
        return self._request(
            method, self._url(resource), params=self._params(), json=body, idempotent=True
        ).data

    def _paginate(
        self, resource: str, params: Params = None, *, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[dict]:
        """Yield every item of a list, following ``X-Pagination-Pagecount``.

        ``page_size`` (1–500) is checked at once, before the first request.
        """
        _check_page_size(page_size)
        return self._pages(resource, query_pairs(params), page_size)

    def _pages(self, resource: str, base: QueryPairs, page_size: int) -> Iterator[dict]:
        return self._page_through(
            self._url(resource),
            page_size=page_size,
            page_count_header="X-Pagination-Pagecount",
            what=resource,
            params_for=lambda page: self._params(base + [("page", page), ("pageSize", page_size)]),
        )

    def _changed_since(self, resource: str, row_version: int, page_size: int) -> Iterator[dict]:
        _check_page_size(page_size)
        return self._row_version_feed(resource, int(row_version), page_size)

    def _row_version_feed(self, resource: str, cursor: int, page_size: int) -> Iterator[dict]:
        # Each request asks for page 1 after the highest rowVersion seen so far instead of
        # for page N: an object changed again while we read moves to the end of the feed
        # and would shift page N, skipping an object that the next run would never see.
        while True:
            response = self._request(
                "GET",
                self._url(f"{resource}/rowversion"),
                params=self._params([("lastKnownRowVersion", cursor), ("page", 1), ("pageSize", page_size)]),
            )
            items = _as_list(response.data, f"{resource}/rowversion", self.system)
            yield from items
            page_count = int_header(response.headers, "X-Pagination-Pagecount")
            if (
                not items
                or (page_count is not None and page_count <= 1)
                or (page_count is None and len(items) < page_size)
            ):
                return
            try:
                highest = max(int(item["rowVersion"]) for item in items)
            except (KeyError, TypeError, ValueError):
                raise RemoteError(
                    f"{resource}/rowversion returned an object without rowVersion", system=self.system
                ) from None
            if highest <= cursor:
                raise RemoteError(f"{resource}/rowversion did not advance past {cursor}", system=self.system)
            cursor = highest

    # Organisation -----------------------------------------------------------------------

    def organization(self) -> dict:
        """``{id, name, organizationNumber, modules: {bookkeeping, invoicing, pointOfSale}}``."""
        return self._get("organization")

    def result_units(self) -> list[dict]:
        """The cost centres (dimension One): ``[{id, number, name, isActive}]``."""
        return list(self._paginate("dimensions", [("dimensionType", "One")]))

    def vat_codes(self) -> list[dict]:
        """``[{id, vatCode, vatPercent, description}]``."""
        return list(self._paginate("vatcodes"))

    # Contacts ---------------------------------------------------------------------------

    def contacts_find(
        self, *, number: str | None = None, email: str | None = None, identification_number: str | None = None
    ) -> list[dict]:
        """Contacts matching every filter given (each an exact match). At least one is required."""
        params = [
            (key, value)
            for key, value in (
                ("number", number),
                ("email", email),
                ("identificationNumber", identification_number),
            )
            if value
        ]
        if not params:
            raise ValueError("give number, email or identification_number")
        return list(self._paginate("contacts", params))

    def contact_get(self, contact_id: str) -> dict:
        return self._get(f"contacts/{_segment(contact_id)}")

    def contact_create(self, data: Mapping[str, Any], sequence_id: str | uuid.UUID) -> dict:
        """Create a contact. ``sequence_id`` must be stored before the call and reused on every
        attempt: a repeat with the same id returns the contact created the first time."""
        return self._send_json("POST", "contacts", {"sequenceId": str(sequence_id), **data})

    def contact_update(self, contact_id: str, data: Mapping[str, Any]) -> dict:
        return self._send_json("POST", f"contacts/{_segment(contact_id)}", dict(data))

    # Articles ---------------------------------------------------------------------------

    def articles_iter(self, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict]:
        return self._paginate("articles", page_size=page_size)

    def article_get(self, article_id: str) -> dict:
        return self._get(f"articles/{_segment(article_id)}")

    def article_by_number(self, number: str) -> dict | None:
        """The article with this number (the shop's SKU), or None when there is none."""
        found = list(self._paginate("articles", [("number", number)]))
        return found[0] if found else None

    def article_create(self, data: Mapping[str, Any], sequence_id: str | uuid.UUID) -> dict:
        """Create an article; ``sequence_id`` as for ``contact_create``. 409 if the number exists."""
        return self._send_json("POST", "articles", {"sequenceId": str(sequence_id), **data})

    def article_update(self, article_id: str, data: Mapping[str, Any]) -> dict:
        """``PATCH`` the fields given."""
        return self._send_json("PATCH", f"articles/{_segment(article_id)}", dict(data))

    def articles_changed_since(self, row_version: int, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict]:
        """Articles changed after ``row_version``, oldest change first.

        Changes appear after a lag, so keep the watermark a little behind the highest
        ``rowVersion`` seen.
        """
        return self._changed_since("articles", row_version, page_size)

    # Invoices ---------------------------------------------------------------------------

    def invoice_create(
        self, invoice: Mapping[str, Any], lines: list[Mapping[str, Any]], sequence_id: str | uuid.UUID
    ) -> dict:
        """Create a customer invoice; answers ``{id, invoiceNumber, …}``.

        Retried on timeouts, 5xx and 429 with the same ``sequence_id``, which Hogia
        Smart deduplicates (HTTP 200 with the first invoice). Store the id before the
        call so that a retry by a later task also reuses it.
        """
        body = {
            "sequenceId": str(sequence_id),
            "customerInvoice": dict(invoice),
            "invoiceLines": [dict(line) for line in lines],
        }
        return self._send_json("POST", "customerinvoices", body)

    def invoice_get(self, invoice_id: str) -> dict:
        return self._get(f"customerinvoices/{_segment(invoice_id)}")

    def invoices_find(self, *, customer_order_number: str) -> list[dict]:
        """Invoices carrying this ``customerOrderNumber`` (the shop's order number)."""
        return list(self._paginate("customerinvoices", [("customerOrderNumber", customer_order_number)]))

    def invoices_changed_since(self, row_version: int, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict]:
        """Invoices changed after ``row_version`` (status, payment, delivery), oldest first."""
        return self._changed_since("customerinvoices", row_version, page_size)


def _check_page_size(page_size: int) -> None:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")


def _segment(value: Any) -> str:
    return quote(str(value), safe="")


def _as_list(data: Any, resource: str, system: str) -> list:
    if not isinstance(data, list):
        raise RemoteError(
            f"Expected a list from {resource}, got {type(data).__name__}", system=system, body=data
        )
    return data
