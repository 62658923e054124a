"""The Hogia Smart sandbox: a local HTTP stand-in for Hogia Smart's REST API.

It serves exactly the contract in ``shared/docs/hogia-smart-api.md``: the
client-credentials token endpoint and the API on the same server, organisations
reached by GUID, contacts, articles and customer invoices with ``rowVersion``
change feeds, paging headers, ProblemDetails and ``errorCode`` arrays, a sliding
window rate limit per API client, and a configurable change lag before writes show in reads.

Controls under ``/_sandbox/`` (never part of the real API) let tests, benchmarks
and the demo create organisations and stock, act as the accountant (invoice
status and delivery), sell from the till, and tune lag, rate limit and token
lifetime. Fault injection and request stats come from ``SandboxApp``.

Pure standard library: see ``http.py`` for why.
"""

from __future__ import annotations

import copy
import heapq
import math
import re
import secrets
import threading
import time
import uuid
from bisect import bisect_left, bisect_right
from collections import deque
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import islice
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

from . import demo
from .http import SandboxApp, SandboxRequest, SandboxResponse, empty_response, html_table, json_response

API_VERSION = "2025-02-13"
TIMEZONE = ZoneInfo("Europe/Stockholm")

DEFAULT_RATE_LIMIT_REQUESTS = 25
DEFAULT_RATE_LIMIT_SECONDS = 5.0
DEFAULT_TOKEN_LIFETIME = 3600
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
FIRST_CUSTOMER_NUMBER = 1001
FIRST_INVOICE_NUMBER = 1

ERROR_NUMBER_EXISTS = 1001009
ERROR_UNKNOWN_CUSTOMER = 1002001
ERROR_UNKNOWN_ARTICLE = 1002002
ERROR_MISSING_VAT_CODE = 1002003
ERROR_UNKNOWN_RESULT_UNIT = 1002004
ERROR_UNKNOWN_CREDITED_INVOICE = 1002005
ERROR_CREDIT_OF_CREDIT = 1002006
ERROR_NO_POINT_OF_SALE = 1003001

INVOICE_STATUSES = ("Draft", "Delivered", "Invoiced", "Paid", "Cancelled")

# (vatCode, vatPercent, description): the Swedish rates.
VAT_CODES = (
    ("MP1", 25, "Utgående moms 25 %"),
    ("MP2", 12, "Utgående moms 12 %"),
    ("MP3", 6, "Utgående moms 6 %"),
    ("MF", 0, "Momsfri försäljning"),
)

FREIGHT_ARTICLE_NUMBER = "fraktavg"
FEE_ARTICLE_NUMBER = "expavg"
DISCOUNT_ARTICLE_NUMBER = "rabatt"

DEMO_ORGANIZATION_ID = demo.HOGIA_ORGANIZATION_ID
DEMO_ORGANIZATION_NAME = demo.HOGIA_ORGANIZATION_NAME
DEMO_ORGANIZATION_NUMBER = demo.HOGIA_ORGANIZATION_NUMBER
DEMO_MODULES = {"bookkeeping": True, "invoicing": True, "pointOfSale": True}
DEMO_RESULT_UNITS = ({"number": "1", "name": "Butik 1"}, {"number": "2", "name": "Butik 2"})
DEMO_CLIENT_ID = demo.HOGIA_CLIENT_ID
DEMO_CLIENT_SECRET = demo.HOGIA_CLIENT_SECRET
# Prices are excluding VAT, as in Hogia Smart's article register.
DEMO_ARTICLES = (
    {
        "number": FREIGHT_ARTICLE_NUMBER,
        "name": "Frakt",
        "vatPercent": 25,
        "prices": {"ordinary": Decimal("0.00")},
        "isStockArticle": False,
        "sendToWebshop": False,
    },
    {
        "number": FEE_ARTICLE_NUMBER,
        "name": "Expeditionsavgift",
        "vatPercent": 25,
        "prices": {"ordinary": Decimal("0.00")},
        "isStockArticle": False,
        "sendToWebshop": False,
    },
    {
        "number": DISCOUNT_ARTICLE_NUMBER,
        "name": "Rabatt",
        "vatPercent": 25,
        "prices": {"ordinary": Decimal("0.00")},
        "isStockArticle": False,
        "sendToWebshop": False,
    },
    {
        "number": "SE-KAFFE-500",
        "name": "Kaffe mellanrost 500 g",
        "vatPercent": 12,
        "prices": {"ordinary": Decimal("79.00")},
        "stockBalance": Decimal("120"),
        "sendToWebshop": True,
    },
    {
        "number": "SE-BOK-001",
        "name": "Kokbok Svensk husmanskost",
        "vatPercent": 6,
        "prices": {"ordinary": Decimal("279.00")},
        "stockBalance": Decimal("15"),
        "sendToWebshop": True,
    },
    {
        "number": "SE-MUGG-35",
        "name": "Mugg 35 cl",
        "vatPercent": 25,
        "prices": {
            "ordinary": Decimal("99.20"),
            "campaign": Decimal("79.20"),
            "campaignFrom": "2026-11-20",
            "campaignTo": "2026-11-30",
        },
        "stockBalance": Decimal("48"),
        "sendToWebshop": True,
    },
    {
        "number": "SE-PRESENT-500",
        "name": "Presentkort 500 kr",
        "vatPercent": 0,
        "prices": {"ordinary": Decimal("500.00")},
        "stockBalance": Decimal("1000"),
        "sendToWebshop": True,
    },
    {
        "number": "SE-BRYGG-01",
        "name": "Kaffebryggare",
        "vatPercent": 25,
        "prices": {"ordinary": Decimal("639.20")},
        "stockBalance": Decimal("6"),
        "sendToWebshop": False,
    },
    {
        "number": "SE-TE-100",
        "name": "Te Earl Grey 100 g",
        "vatPercent": 12,
        "prices": {"ordinary": Decimal("49.00")},
        "stockBalance": Decimal("60"),
        "sendToWebshop": True,
    },
    {
        "number": "SE-TS-S",
        "name": "T-shirt logga S",
        "vatPercent": 25,
        "prices": {"ordinary": Decimal("159.20")},
        "stockBalance": Decimal("10"),
        "sendToWebshop": True,
    },
    {
        "number": "SE-TS-M",
        "name": "T-shirt logga M",
        "vatPercent": 25,
        "prices": {"ordinary": Decimal("159.20")},
        "stockBalance": Decimal("25"),
        "sendToWebshop": True,
    },
    {
        "number": "SE-TS-L",
        "name": "T-shirt logga L",
        "vatPercent": 25,
        "prices": {"ordinary": Decimal("159.20")},
        "stockBalance": Decimal("8"),
        "sendToWebshop": True,
    },
)

_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_ORG = rf"/(?P<org>{_GUID})"
_ID = rf"(?P<id>{_GUID})"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CENT = Decimal("0.01")
_KRONA = Decimal("1")
_HUNDRED = Decimal(100)
_PROBLEM_TYPE_400 = "https://tools.ietf.org/html/rfc9110#section-15.5.1"
_PROBLEM_TYPE_404 = "https://tools.ietf.org/html/rfc9110#section-15.5.5"
_PROBLEM_CONTENT_TYPE = "application/problem+json; charset=UTF-8"


def round_half_up(value: Decimal, exponent: Decimal = _CENT) -> Decimal:
    """Half away from zero, as Hogia Smart rounds (``ROUND_HALF_UP`` in ``decimal``)."""
    return value.quantize(exponent, rounding=ROUND_HALF_UP)


def invoice_totals(lines: list[dict], *, prices_include_vat: bool, use_rounding: bool) -> dict:
    """Amounts of an invoice, exactly as the contract's "How totals are computed".

    ``lines`` hold Decimal ``quantity``, ``unitPrice``, ``discountPercent`` and
    ``vatPercent``; a line with ``quantity`` None is a text line. Returns the
    per-line amounts (same order; None for text lines), ``vatDistributions`` and
    the invoice totals.
    """
    line_amounts: list[dict | None] = []
    net_by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        if line.get("quantity") is None:
            line_amounts.append(None)
            continue
        rate = Decimal(line["vatPercent"])
        factor = 1 - Decimal(line.get("discountPercent") or 0) / _HUNDRED
        amount = round_half_up(Decimal(line["quantity"]) * Decimal(line["unitPrice"]) * factor)
        if prices_include_vat:
            gross = amount
            net = round_half_up(gross / (1 + rate / _HUNDRED))
            vat = gross - net
        else:
            net = amount
            vat = round_half_up(net * rate / _HUNDRED)
            gross = net + vat
        line_amounts.append({"netAmount": net, "vatAmount": vat, "grossAmount": gross})
        net_by_rate[rate] = net_by_rate.get(rate, Decimal("0.00")) + net
    distributions = []
    for rate in sorted(net_by_rate, reverse=True):
        net = net_by_rate[rate]
        distributions.append(
            {
                "percent": _plain_number(rate),
                "netAmount": net,
                "vatAmount": round_half_up(net * rate / _HUNDRED),
            }
        )
    net_total = sum((d["netAmount"] for d in distributions), Decimal("0.00"))
    vat_total = sum((d["vatAmount"] for d in distributions), Decimal("0.00"))
    rounding = Decimal("0.00")
    if use_rounding:
        rounding = round_half_up(net_total + vat_total, _KRONA) - (net_total + vat_total)
    return {
        "lines": line_amounts,
        "vatDistributions": distributions,
        "netAmount": net_total,
        "vatAmount": vat_total,
        "roundingAmount": rounding,
        "grossAmount": net_total + vat_total + rounding,
    }


def _plain_number(value: Decimal) -> int | Decimal:
    """Whole percentages answer as integers (25, not 25.00)."""
    return int(value) if value == value.to_integral_value() else value.normalize()


def _now_local() -> str:
    return datetime.now(TIMEZONE).strftime("%Y-%m-%dT%H:%M:%S")


def _today_local() -> date:
    return datetime.now(TIMEZONE).date()


def _new_id() -> str:
    return str(uuid.uuid4())


# -- responses ---------------------------------------------------------------------------------


def _problem(errors: dict[str, list[str]]) -> SandboxResponse:
    response = json_response(
        {
            "type": _PROBLEM_TYPE_400,
            "title": "One or more validation errors occurred.",
            "status": 400,
            "errors": errors,
        },
        400,
    )
    response.content_type = _PROBLEM_CONTENT_TYPE
    return response


def _simple_problem(status: int, title: str) -> SandboxResponse:
    body = {"title": title, "status": status}
    if status == 404:
        body = {"type": _PROBLEM_TYPE_404, **body}
    response = json_response(body, status)
    response.content_type = _PROBLEM_CONTENT_TYPE
    return response


def _not_found() -> SandboxResponse:
    return _simple_problem(404, "Not Found")


def _business_error(status: int, code: int, message: str) -> SandboxResponse:
    return json_response([{"errorCode": code, "message": message}], status)


def _number_exists(number: str) -> SandboxResponse:
    return _business_error(409, ERROR_NUMBER_EXISTS, f"The number '{number}' already exists.")


def _paged(items: list, total: int, page: int, page_size: int) -> SandboxResponse:
    return json_response(
        items,
        200,
        [
            ("X-Pagination-Currentpage", str(page)),
            ("X-Pagination-Pagecount", str(math.ceil(total / page_size))),
            ("X-Pagination-Totalcount", str(total)),
        ],
    )


# -- validation --------------------------------------------------------------------------------


class _Invalid(Exception):
    """Carries a finished response out of nested validation and business checks."""

    def __init__(self, response: SandboxResponse):
        super().__init__(response.status)
        self.response = response


class _Errors:
    """Collects ProblemDetails errors, field by field.

    ``numeric_strings`` lets amounts arrive as strings ("10.00"): only for the
    ``/_sandbox/`` controls, which are test aids; the API itself takes JSON numbers.
    """

    def __init__(self, *, numeric_strings: bool = False):
        self.errors: dict[str, list[str]] = {}
        self.numeric_strings = numeric_strings

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise _Invalid(_problem(self.errors))

    def number(
        self,
        data: dict,
        key: str,
        field: str,
        *,
        places: int,
        required: bool = False,
        minimum: Decimal | None = None,
        maximum: Decimal | None = None,
    ) -> Decimal | None:
        """A JSON number with at most ``places`` decimals, as a Decimal (never a float)."""
        value = data.get(key)
        if value is None:
            if required:
                self.add(field, f"The {key} field is required.")
            return None
        if self.numeric_strings and isinstance(value, str):
            try:
                value = Decimal(value)
            except InvalidOperation:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            self.add(field, f"The {key} field must be a number.")
            return None
        value = Decimal(value)
        if not value.is_finite():
            self.add(field, f"The {key} field must be a number.")
            return None
        if _decimal_places(value) > places:
            self.add(field, f"The {key} field may have at most {places} decimals.")
            return None
        if minimum is not None and value < minimum:
            self.add(field, f"The {key} field must be at least {minimum}.")
        if maximum is not None and value > maximum:
            self.add(field, f"The {key} field must be at most {maximum}.")
        return value

    def text(
        self, data: dict, key: str, field: str, *, required: bool = False, max_length: int = 250
    ) -> str | None:
        value = data.get(key)
        if value is None or value == "":
            if required:
                self.add(field, f"The {key} field is required.")
            return None if value is None else value
        if not isinstance(value, str):
            self.add(field, f"The {key} field must be a string.")
            return None
        if len(value) > max_length:
            self.add(field, f"The {key} field may be at most {max_length} characters.")
        return value

    def boolean(self, data: dict, key: str, field: str, default: bool | None = None) -> bool | None:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(field, f"The {key} field must be true or false.")
            return default
        return value

    def day(self, data: dict, key: str, field: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not _DATE.match(value):
            self.add(field, f"The {key} field must be a date YYYY-MM-DD.")
            return None
        try:
            date.fromisoformat(value)
        except ValueError:
            self.add(field, f"The {key} field must be a valid date.")
            return None
        return value

    def guid(self, data: dict, key: str, field: str, *, required: bool = False) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.add(field, f"The {key} field is required.")
            return None
        if not isinstance(value, str) or not re.fullmatch(_GUID, value):
            self.add(field, f"The {key} field must be a GUID.")
            return None
        return value.lower()


def _decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _json_body(request: SandboxRequest):
    try:
        return request.json(decimals=True)
    except (ValueError, UnicodeDecodeError):
        raise _Invalid(_problem({"$": ["The request body is not valid JSON."]})) from None


def _json_object(request: SandboxRequest) -> dict:
    body = _json_body(request)
    if not isinstance(body, dict):
        raise _Invalid(_problem({"$": ["The request body must be a JSON object."]}))
    return body


def _paging(request: SandboxRequest) -> tuple[int, int]:
    errors = _Errors()
    page = _int_arg(request, "page", 1, errors)
    page_size = _int_arg(request, "pageSize", DEFAULT_PAGE_SIZE, errors)
    if page is not None and page < 1:
        errors.add("page", "The page must be 1 or more.")
    if page_size is not None and not 1 <= page_size <= MAX_PAGE_SIZE:
        errors.add("pageSize", f"The pageSize must be between 1 and {MAX_PAGE_SIZE}.")
    errors.raise_if_any()
    return page, page_size


def _int_arg(request: SandboxRequest, name: str, default: int, errors: _Errors) -> int | None:
    value = request.arg(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        errors.add(name, f"The value '{value}' is not valid for {name}.")
        return None


# -- storage -----------------------------------------------------------------------------------


class _Entity:
    """One object and the versions of it that reads may still need (the change lag)."""

    __slots__ = ("id", "created_rv", "history")

    def __init__(self, entity_id: str, created_rv: int, history: list[tuple[int, dict]]):
        self.id = entity_id
        self.created_rv = created_rv
        self.history = history  # [(rowVersion, snapshot)], oldest first; snapshots are never mutated

    @property
    def latest(self) -> dict:
        return self.history[-1][1]

    def at(self, horizon: int) -> dict | None:
        for row_version, snapshot in reversed(self.history):
            if row_version <= horizon:
                return snapshot
        return None


class _Collection:
    """Objects of one resource in one organisation, indexed for the API's reads.

    ``feed_rvs``/``feed_ids`` list every object once at its latest rowVersion,
    sorted, so a rowversion feed is a bisect and a slice. Objects whose latest
    change is still hidden by the lag form the short tail after the horizon;
    only that tail is looked at object by object.
    """

    def __init__(self, indexed_fields: Iterable[str]):
        self.entities: dict[str, _Entity] = {}
        self.created_ids: list[str] = []
        self.created_rvs: list[int] = []
        self.feed_rvs: list[int] = []
        self.feed_ids: list[str] = []
        self.indexes: dict[str, dict[str, set[str]]] = {f: {} for f in indexed_fields}

    def get_latest(self, entity_id: str) -> dict | None:
        entity = self.entities.get(entity_id)
        return entity.latest if entity else None

    def find_latest(self, field: str, value) -> dict | None:
        """The current object with this indexed value, lag ignored (uniqueness checks, writes)."""
        ids = self.indexes[field].get(value)
        if not ids:
            return None
        return self.entities[next(iter(ids))].latest

    def put(self, snapshot: dict, horizon: int) -> None:
        entity_id = snapshot["id"]
        row_version = snapshot["rowVersion"]
        entity = self.entities.get(entity_id)
        if entity is None:
            entity = _Entity(entity_id, row_version, [(row_version, snapshot)])
            self.entities[entity_id] = entity
            self.created_ids.append(entity_id)
            self.created_rvs.append(row_version)
        else:
            old = entity.latest
            position = bisect_left(self.feed_rvs, old["rowVersion"])
            del self.feed_rvs[position]
            del self.feed_ids[position]
            self._unindex(old)
            entity.history.append((row_version, snapshot))
            self._prune(entity, horizon)
        self.feed_rvs.append(row_version)
        self.feed_ids.append(entity_id)
        self._index(snapshot)

    def _prune(self, entity: _Entity, horizon: int) -> None:
        # Versions older than the newest visible one can never be read again.
        keep_from = 0
        for position, (row_version, _snapshot) in enumerate(entity.history):
            if row_version <= horizon:
                keep_from = position
        if keep_from:
            del entity.history[:keep_from]

    def _index(self, snapshot: dict) -> None:
        for field, index in self.indexes.items():
            value = snapshot.get(field)
            if value is not None:
                index.setdefault(value, set()).add(snapshot["id"])

    def _unindex(self, snapshot: dict) -> None:
        for field, index in self.indexes.items():
            value = snapshot.get(field)
            ids = index.get(value)
            if ids is not None:
                ids.discard(snapshot["id"])
                if not ids:
                    del index[value]

    def load(self, entities: list[_Entity]) -> None:
        for entity in sorted(entities, key=lambda e: e.created_rv):
            self.entities[entity.id] = entity
            self.created_ids.append(entity.id)
            self.created_rvs.append(entity.created_rv)
            self._index(entity.latest)
        pairs = sorted((e.latest["rowVersion"], e.id) for e in entities)
        self.feed_rvs = [rv for rv, _ in pairs]
        self.feed_ids = [entity_id for _, entity_id in pairs]

    # -- reads at a horizon (the newest rowVersion that reads may see) --
    def visible(self, entity_id: str, horizon: int) -> dict | None:
        entity = self.entities.get(entity_id)
        return entity.at(horizon) if entity else None

    def page_all(self, horizon: int, page: int, page_size: int) -> tuple[int, list[dict]]:
        # Creation order is rowVersion order, so the visible objects are a prefix.
        total = bisect_right(self.created_rvs, horizon)
        start = (page - 1) * page_size
        ids = self.created_ids[start : min(start + page_size, total)]
        return total, [self.entities[i].at(horizon) for i in ids]

    def filtered(self, horizon: int, filters: dict[str, str]) -> list[dict]:
        candidates: set[str] | None = None
        for field, value in filters.items():
            ids = self.indexes[field].get(value, set())
            candidates = set(ids) if candidates is None else candidates & ids
        candidates = set(candidates or ())
        candidates.update(self.feed_ids[bisect_right(self.feed_rvs, horizon) :])
        found = []
        for entity_id in candidates:
            entity = self.entities[entity_id]
            snapshot = entity.at(horizon)
            if snapshot is not None and all(snapshot.get(f) == v for f, v in filters.items()):
                found.append((entity.created_rv, snapshot))
        found.sort(key=lambda pair: pair[0])
        return [snapshot for _, snapshot in found]

    def changed_since(self, after: int, horizon: int, page: int, page_size: int) -> tuple[int, list[dict]]:
        low = bisect_right(self.feed_rvs, after)
        high = max(low, bisect_right(self.feed_rvs, horizon))
        tail = []
        for entity_id in self.feed_ids[high:]:
            snapshot = self.entities[entity_id].at(horizon)
            if snapshot is not None and snapshot["rowVersion"] > after:
                tail.append((snapshot["rowVersion"], snapshot))
        total = high - low + len(tail)
        start = (page - 1) * page_size
        if not tail:
            ids = self.feed_ids[low + start : min(low + start + page_size, high)]
            return total, [self.entities[i].latest for i in ids]
        tail.sort(key=lambda pair: pair[0])
        settled = ((self.feed_rvs[i], self.entities[self.feed_ids[i]].latest) for i in range(low, high))
        merged = heapq.merge(settled, tail, key=lambda pair: pair[0])
        return total, [snapshot for _, snapshot in islice(merged, start, start + page_size)]


class _Organization:
    """One Hogia Smart company: its registers, its rowVersion counter, its lag clock."""

    def __init__(
        self,
        *,
        org_id: str,
        name: str,
        organization_number: str,
        modules: dict,
        result_units: list[dict],
        vat_codes: list[dict],
    ):
        self.id = org_id
        self.name = name
        self.organization_number = organization_number
        self.modules = modules
        self.result_units = result_units
        self.vat_codes = vat_codes
        self.row_version = 0
        self.visible_floor = 0
        # (rowVersion, wall-clock time of the change) not yet known to be visible.
        self.pending: deque[tuple[int, float]] = deque()
        self.next_customer_number = FIRST_CUSTOMER_NUMBER
        self.next_invoice_number = FIRST_INVOICE_NUMBER
        self.sequences: dict[str, dict[str, str]] = {"contacts": {}, "articles": {}, "customerinvoices": {}}
        self.contacts = _Collection(("number", "email", "identificationNumber"))
        self.articles = _Collection(("number",))
        self.invoices = _Collection(("customerOrderNumber",))

    def describe(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "organizationNumber": self.organization_number,
            "modules": dict(self.modules),
        }

    def next_row_version(self) -> int:
        self.row_version += 1
        last = self.pending[-1][1] if self.pending else 0.0
        # Wall-clock (not monotonic) because it survives a restart; never let it run backwards.
        self.pending.append((self.row_version, max(last, time.time())))
        return self.row_version

    def horizon(self, lag: float) -> int:
        """The newest rowVersion that reads see now. Once visible, a change stays visible."""
        cutoff = time.time() - lag
        while self.pending and (lag <= 0 or self.pending[0][1] <= cutoff):
            self.visible_floor = self.pending.popleft()[0]
        return self.visible_floor

    def vat_code_for(self, percent: Decimal) -> dict | None:
        for code in self.vat_codes:
            if Decimal(code["vatPercent"]) == percent:
                return code
        return None


def _collection_of(org: _Organization, resource: str) -> _Collection:
    return {"contacts": org.contacts, "articles": org.articles, "customerinvoices": org.invoices}[resource]


# -- the sandbox -------------------------------------------------------------------------------


class HogiaSmartSandbox(SandboxApp):
    """Hogia Smart on loopback: token endpoint and API on one server.

    ``rate_limit_requests``/``rate_limit_seconds`` set the sliding window per
    API client (0 requests: no limit), ``token_lifetime`` the seconds a token lives,
    ``lag_seconds`` the delay before a change shows in reads; ``demo`` seeds the
    demo organisation at start and after every reset.
    """

    name = "hogia"

    def __init__(
        self,
        *,
        rate_limit_requests: int = DEFAULT_RATE_LIMIT_REQUESTS,
        rate_limit_seconds: float = DEFAULT_RATE_LIMIT_SECONDS,
        token_lifetime: float = DEFAULT_TOKEN_LIFETIME,
        lag_seconds: float = 0.0,
        demo: bool = False,
    ):
        super().__init__()
        self._defaults = {
            "rate_limit_requests": rate_limit_requests,
            "rate_limit_seconds": rate_limit_seconds,
            "token_lifetime": token_lifetime,
            "lag_seconds": lag_seconds,
        }
        self._demo_on_reset = demo
        self._rate_lock = threading.Lock()
        self._register_routes()
        self.reset()

    # -- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the state just after construction: no data, no tokens, default settings."""
        with self.lock:
            self.rate_limit_requests = int(self._defaults["rate_limit_requests"])
            self.rate_limit_seconds = float(self._defaults["rate_limit_seconds"])
            self.token_lifetime = float(self._defaults["token_lifetime"])
            self.lag_seconds = float(self._defaults["lag_seconds"])
            self._organizations: dict[str, _Organization] = {}
            self._clients: dict[str, dict] = {}  # clientId -> {"secret", "organizations": set}
            self._tokens: dict[str, tuple[str, float]] = {}  # token -> (clientId, expires at, epoch)
            with self._rate_lock:
                self._windows: dict[str, deque[float]] = {}  # clientId -> its calls' arrival times
            self.faults.clear()
            if self._demo_on_reset:
                self.seed_demo()
            self.changed()

    def state_dump(self) -> dict:
        with self.lock:
            return {
                "clients": {
                    cid: {"secret": c["secret"], "organizations": sorted(c["organizations"])}
                    for cid, c in self._clients.items()
                },
                "tokens": {
                    token: {"clientId": cid, "expiresAt": expires}
                    for token, (cid, expires) in self._tokens.items()
                },
                "organizations": [self._dump_organization(org) for org in self._organizations.values()],
            }

    @staticmethod
    def _dump_organization(org: _Organization) -> dict:
        def entities(collection: _Collection) -> list:
            return [
                {"createdRowVersion": e.created_rv, "history": [[rv, s] for rv, s in e.history]}
                for e in collection.entities.values()
            ]

        return {
            "id": org.id,
            "name": org.name,
            "organizationNumber": org.organization_number,
            "modules": org.modules,
            "resultUnits": org.result_units,
            "vatCodes": org.vat_codes,
            "rowVersion": org.row_version,
            "visibleFloor": org.visible_floor,
            "pending": [[rv, t] for rv, t in org.pending],
            "nextCustomerNumber": org.next_customer_number,
            "nextInvoiceNumber": org.next_invoice_number,
            "sequences": org.sequences,
            "contacts": entities(org.contacts),
            "articles": entities(org.articles),
            "customerinvoices": entities(org.invoices),
        }

    def state_load(self, data: dict) -> None:
        with self.lock:
            self._clients = {
                cid: {"secret": c["secret"], "organizations": set(c["organizations"])}
                for cid, c in (data.get("clients") or {}).items()
            }
            self._tokens = {
                token: (t["clientId"], float(t["expiresAt"]))
                for token, t in (data.get("tokens") or {}).items()
            }
            self._organizations = {}
            for raw in data.get("organizations") or []:
                org = _Organization(
                    org_id=raw["id"],
                    name=raw["name"],
                    organization_number=raw["organizationNumber"],
                    modules=raw["modules"],
                    result_units=raw["resultUnits"],
                    vat_codes=raw["vatCodes"],
                )
                org.row_version = int(raw["rowVersion"])
                org.visible_floor = int(raw["visibleFloor"])
                org.pending = deque((int(rv), float(t)) for rv, t in raw["pending"])
                org.next_customer_number = int(raw["nextCustomerNumber"])
                org.next_invoice_number = int(raw["nextInvoiceNumber"])
                org.sequences = {k: dict(v) for k, v in raw["sequences"].items()}
                for resource in ("contacts", "articles", "customerinvoices"):
                    _collection_of(org, resource).load(
                        [
                            _Entity(
                                e["history"][-1][1]["id"],
                                int(e["createdRowVersion"]),
                                [(int(rv), s) for rv, s in e["history"]],
                            )
                            for e in raw[resource]
                        ]
                    )
                self._organizations[org.id] = org
            self.changed()

    # -- set-up ------------------------------------------------------------------------------
    def create_organization(
        self,
        *,
        name: str,
        organization_number: str,
        org_id: str | None = None,
        modules: dict | None = None,
        result_units: Iterable[dict] = (),
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> dict:
        """Create a company and grant a client access to it; answers the org and the credentials."""
        with self.lock:
            org_id = (org_id or _new_id()).lower()
            if org_id in self._organizations:
                raise _Invalid(json_response({"error": f"organisation {org_id} exists"}, 409))
            client_id = client_id or f"client-{secrets.token_hex(6)}"
            existing = self._clients.get(client_id)
            if existing is not None and client_secret is not None and existing["secret"] != client_secret:
                raise _Invalid(
                    json_response({"error": f"client {client_id} exists with another secret"}, 409)
                )
            org = _Organization(
                org_id=org_id,
                name=name,
                organization_number=organization_number,
                modules={"bookkeeping": True, "invoicing": True, "pointOfSale": False, **(modules or {})},
                result_units=[
                    {
                        "id": unit.get("id") or _new_id(),
                        "number": str(unit["number"]),
                        "name": unit["name"],
                        "isActive": unit.get("isActive", True),
                    }
                    for unit in result_units
                ],
                vat_codes=[
                    {"id": _new_id(), "vatCode": code, "vatPercent": percent, "description": text}
                    for code, percent, text in VAT_CODES
                ],
            )
            self._organizations[org_id] = org
            if existing is None:
                existing = {"secret": client_secret or secrets.token_urlsafe(24), "organizations": set()}
                self._clients[client_id] = existing
            existing["organizations"].add(org_id)
            self.changed()
            return {
                **org.describe(),
                "resultUnits": org.result_units,
                "clientId": client_id,
                "clientSecret": existing["secret"],
            }

    def grant_client(self, *, client_id: str, client_secret: str, organizations: Iterable[str]) -> None:
        with self.lock:
            client = self._clients.setdefault(client_id, {"secret": client_secret, "organizations": set()})
            client["secret"] = client_secret
            client["organizations"].update(o.lower() for o in organizations)
            self.changed()

    def seed_demo(self) -> None:
        """The demo company, its client and its articles; does nothing if it already exists."""
        with self.lock:
            if DEMO_ORGANIZATION_ID in self._organizations:
                self.grant_client(
                    client_id=DEMO_CLIENT_ID,
                    client_secret=DEMO_CLIENT_SECRET,
                    organizations=[DEMO_ORGANIZATION_ID],
                )
                return
            self.create_organization(
                org_id=DEMO_ORGANIZATION_ID,
                name=DEMO_ORGANIZATION_NAME,
                organization_number=DEMO_ORGANIZATION_NUMBER,
                modules=dict(DEMO_MODULES),
                result_units=DEMO_RESULT_UNITS,
                client_id=DEMO_CLIENT_ID,
                client_secret=DEMO_CLIENT_SECRET,
            )
            self.add_articles(DEMO_ORGANIZATION_ID, [copy.deepcopy(a) for a in DEMO_ARTICLES])

    def add_articles(self, org_id: str, specs: list[dict]) -> list[dict]:
        """Create articles with stock directly, all or nothing (benchmarks load thousands)."""
        with self.lock:
            org = self._organizations.get(org_id.lower())
            if org is None:
                raise _Invalid(_not_found())
            errors = _Errors(numeric_strings=True)
            cleaned = []
            seen: set[str] = set()
            for position, spec in enumerate(specs):
                if not isinstance(spec, dict):
                    errors.add(f"[{position}]", "An article must be a JSON object.")
                    continue
                fields = self._article_fields(org, spec, errors, prefix=f"[{position}].", create=True)
                cleaned.append(fields)
                number = fields.get("number")
                if number is not None and (number in seen or org.articles.find_latest("number", number)):
                    raise _Invalid(_number_exists(number))
                seen.add(number)
            errors.raise_if_any()
            created = [self._store_new_article(org, fields) for fields in cleaned]
            self.changed()
            return created

    # -- the index page ----------------------------------------------------------------------
    index_title = "Hogia Smart sandbox"

    def index_html(self, base: str) -> str:
        with self.lock:
            organisations = [
                [
                    org.id,
                    org.name,
                    org.organization_number,
                    ", ".join(name for name, has in org.modules.items() if has),
                    f"{base}/{org.id}/",
                    len(org.articles.entities),
                    len(org.contacts.entities),
                    len(org.invoices.entities),
                ]
                for org in self._organizations.values()
            ]
            clients = [
                [client_id, client["secret"], ", ".join(sorted(client["organizations"]))]
                for client_id, client in self._clients.items()
            ]
        return (
            "<p>A stand-in for Hogia Smart's API: a client-credentials token from "
            f"<code>POST {base}/connect/token</code>, then calls to <code>{base}/&lt;organisation "
            f"id&gt;/…</code> with <code>Authorization: Bearer &lt;token&gt;</code> and "
            f"<code>api-version={API_VERSION}</code>. The clients are the sandbox's, valid nowhere "
            "else.</p><h2>Organisations</h2>"
            + html_table(
                [
                    "id",
                    "name",
                    "organisation number",
                    "modules",
                    "API base",
                    "articles",
                    "contacts",
                    "invoices",
                ],
                organisations,
            )
            + "<h2>API clients</h2>"
            + html_table(["client id", "client secret", "organisations"], clients)
        )

    # -- routes ------------------------------------------------------------------------------
    def _register_routes(self) -> None:
        route = self.route
        route("POST", r"/connect/token", self._token)
        api = self._api
        route("GET", _ORG + r"/organization", api(self._organization))
        route("GET", _ORG + r"/dimensions", api(self._dimensions))
        route("GET", _ORG + r"/vatcodes", api(self._vat_codes))
        route("GET", _ORG + r"/contacts", api(self._contacts_list))
        route("POST", _ORG + r"/contacts", api(self._contact_create))
        route("GET", _ORG + r"/contacts/rowversion", api(self._feed("contacts")))
        route("GET", _ORG + r"/contacts/" + _ID, api(self._get("contacts")))
        route("POST", _ORG + r"/contacts/" + _ID, api(self._contact_update))
        route("GET", _ORG + r"/articles", api(self._articles_list))
        route("POST", _ORG + r"/articles", api(self._article_create))
        route("GET", _ORG + r"/articles/rowversion", api(self._feed("articles")))
        route("GET", _ORG + r"/articles/" + _ID, api(self._get("articles")))
        route("PATCH", _ORG + r"/articles/" + _ID, api(self._article_patch))
        route("GET", _ORG + r"/customerinvoices", api(self._invoices_list))
        route("POST", _ORG + r"/customerinvoices", api(self._invoice_create))
        route("GET", _ORG + r"/customerinvoices/rowversion", api(self._feed("customerinvoices")))
        route("GET", _ORG + r"/customerinvoices/" + _ID, api(self._get("customerinvoices")))

        control = self._control
        route("POST", r"/_sandbox/reset", control(self._control_reset))
        route("POST", r"/_sandbox/seed", control(self._control_seed))
        route("POST", r"/_sandbox/organizations", control(self._control_organization))
        route("POST", r"/_sandbox/lag", control(self._control_lag))
        route("POST", r"/_sandbox/rate-limit", control(self._control_rate_limit))
        route("POST", r"/_sandbox/token-lifetime", control(self._control_token_lifetime))
        route("DELETE", r"/_sandbox/tokens", control(self._control_revoke_tokens))
        route("GET", r"/_sandbox/settings", control(self._control_settings))
        route("POST", r"/_sandbox" + _ORG + r"/articles", control(self._control_articles))
        route(
            "POST",
            r"/_sandbox" + _ORG + r"/customerinvoices/" + _ID + r"/status",
            control(self._control_invoice_status),
        )
        route("POST", r"/_sandbox" + _ORG + r"/till-sale", control(self._control_till_sale))

    def not_found(self, request: SandboxRequest, *, method_mismatch: bool) -> SandboxResponse:
        if method_mismatch:
            return _simple_problem(405, "Method Not Allowed")
        return _not_found()

    @staticmethod
    def _control(handler: Callable[[SandboxRequest], SandboxResponse]) -> Callable:
        def wrapped(request: SandboxRequest) -> SandboxResponse:
            try:
                return handler(request)
            except _Invalid as invalid:
                return invalid.response

        return wrapped

    def _api(self, handler: Callable[[SandboxRequest, _Organization], SandboxResponse]) -> Callable:
        def wrapped(request: SandboxRequest) -> SandboxResponse:
            client_id = self._authenticate(request)
            if client_id is None:
                return empty_response(401, [("WWW-Authenticate", 'Bearer error="invalid_token"')])
            limited = self._rate_limited(client_id)
            if limited is not None:
                return limited
            version = request.arg("api-version")
            if not version:
                return _problem({"api-version": ["The api-version query parameter is required."]})
            if version != API_VERSION:
                return _problem(
                    {"api-version": [f"The api-version '{version}' is not supported; use {API_VERSION}."]}
                )
            with self.lock:
                org = self._organizations.get(request.params["org"].lower())
                client = self._clients.get(client_id)
                if org is None:
                    return _not_found()
                if client is None or org.id not in client["organizations"]:
                    return _simple_problem(403, "Forbidden")
            try:
                return handler(request, org)
            except _Invalid as invalid:
                return invalid.response

        return wrapped

    # -- auth and rate limit -----------------------------------------------------------------
    def _token(self, request: SandboxRequest) -> SandboxResponse:
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        with self.lock:
            client = self._clients.get(form.get("client_id", ""))
            if client is None or not secrets.compare_digest(
                client["secret"].encode("utf-8"), form.get("client_secret", "").encode("utf-8")
            ):
                return json_response({"error": "invalid_client"}, 400)
            now = time.time()
            expired = [t for t, (_client, expires) in self._tokens.items() if expires <= now]
            for token in expired:
                del self._tokens[token]
            token = secrets.token_urlsafe(32)
            self._tokens[token] = (form["client_id"], now + self.token_lifetime)
            lifetime = self.token_lifetime
            self.changed()
        return json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": int(lifetime)},
            headers=[("Cache-Control", "no-store")],
        )

    def _authenticate(self, request: SandboxRequest) -> str | None:
        header = request.headers.get("Authorization") or ""
        if not header.startswith("Bearer "):
            return None
        with self.lock:
            entry = self._tokens.get(header[7:].strip())
        if entry is None or entry[1] <= time.time():
            return None
        return entry[0]

    def _rate_limited(self, client_id: str) -> SandboxResponse | None:
        # Counted per API client, as Hogia Smart counts: every token of one client id, and
        # every company it reaches, share the window (asking for a new token buys nothing).
        with self._rate_lock:
            limit, window = self.rate_limit_requests, self.rate_limit_seconds
            if limit <= 0:
                return None
            now = time.monotonic()
            calls = self._windows.setdefault(client_id, deque())
            while calls and calls[0] <= now - window:
                calls.popleft()
            if len(calls) >= limit:
                # A slot frees when the oldest call in the window leaves it.
                wait = max(1, math.ceil(calls[0] + window - now))
                return json_response(
                    {"title": "Too Many Requests", "status": 429}, 429, [("Retry-After", str(wait))]
                )
            calls.append(now)
            return None

    # -- organisation, result units, VAT codes -------------------------------------------------
    def _organization(self, request: SandboxRequest, org: _Organization) -> SandboxResponse:
        return json_response(org.describe())

    def _dimensions(self, request: SandboxRequest, org: _Organization) -> SandboxResponse:
        page, page_size = _paging(request)
        dimension_type = request.arg("dimensionType")
        units = org.result_units if dimension_type in (None, "", "One") else []
        start = (page - 1) * page_size
        return _paged(units[start : start + page_size], len(units), page, page_size)

    def _vat_codes(self, request: SandboxRequest, org: _Organization) -> SandboxResponse:
        page, page_size = _paging(request)
        start = (page - 1) * page_size
        return _paged(org.vat_codes[start : start + page_size], len(org.vat_codes), page, page_size)

    # -- generic reads -----------------------------------------------------------------------
    def _get(self, resource: str) -> Callable:
        def handler(request: SandboxRequest, org: _Organization) -> SandboxResponse:
            with self.lock:
                snapshot = _collection_of(org, resource).visible(
                    request.params["id"].lower(), org.horizon(self.lag_seconds)
                )
            return json_response(snapshot) if snapshot is not None else _not_found()

        return handler

    def _feed(self, resource: str) -> Callable:
        def handler(request: SandboxRequest, org: _Organization) -> SandboxResponse:
            page, page_size = _paging(request)
            errors = _Errors()
            after = _int_arg(request, "lastKnownRowVersion", 0, errors)
            errors.raise_if_any()
            with self.lock:
                total, items = _collection_of(org, resource).changed_since(
                    after, org.horizon(self.lag_seconds), page, page_size
                )
            return _paged(items, total, page, page_size)

        return handler

    def _list(
        self, request: SandboxRequest, org: _Organization, resource: str, filter_names: tuple[str, ...]
    ) -> SandboxResponse:
        page, page_size = _paging(request)
        filters = {name: request.arg(name) for name in filter_names if request.arg(name) not in (None, "")}
        with self.lock:
            collection = _collection_of(org, resource)
            horizon = org.horizon(self.lag_seconds)
            if filters:
                matches = collection.filtered(horizon, filters)
                total = len(matches)
                start = (page - 1) * page_size
                items = matches[start : start + page_size]
            else:
                total, items = collection.page_all(horizon, page, page_size)
        return _paged(items, total, page, page_size)

    # -- contacts ----------------------------------------------------------------------------
    def _contacts_list(self, request: SandboxRequest, org: _Organization) -> SandboxResponse:
        return self._list(request, org, "contacts", ("number", "email", "identificationNumber"))

    def _contact_fields(self, data: dict, errors: _Errors, *, create: bool, current: dict | None) -> dict:
        fields: dict = {}
        if "number" in data:
            number = errors.text(data, "number", "number", max_length=20)
            if number is not None and number != "":
                fields["number"] = number
        for key in (
            "companyName",
            "givenName",
            "surName",
            "identificationNumber",
            "vatNumber",
            "email",
            "phone",
        ):
            if key in data:
                fields[key] = errors.text(data, key, key)
        if "isOrganization" in data or create:
            fields["isOrganization"] = errors.boolean(data, "isOrganization", "isOrganization", False)
        if "countryCode" in data or create:
            fields["countryCode"] = data.get("countryCode") or "SE"
            if not isinstance(fields["countryCode"], str) or len(fields["countryCode"]) != 2:
                errors.add("countryCode", "The countryCode must be a two-letter ISO code.")
        email = fields.get("email")
        if email and ("@" not in email or " " in email):
            errors.add("email", "The email field is not a valid e-mail address.")
        if "addresses" in data or create:
            fields["addresses"] = self._addresses(data.get("addresses") or [], errors)
        if "customer" in data or create:
            fields["customer"] = self._customer_terms(
                data.get("customer") or {}, errors, (current or {}).get("customer")
            )
        merged = {**(current or {}), **fields}
        if merged.get("isOrganization"):
            if not merged.get("companyName"):
                errors.add("companyName", "The companyName field is required for an organisation.")
        elif not (merged.get("givenName") or merged.get("surName") or merged.get("companyName")):
            errors.add("givenName", "A person needs a givenName or a surName.")
        return fields

    @staticmethod
    def _addresses(raw, errors: _Errors) -> list[dict]:
        if not isinstance(raw, list):
            errors.add("addresses", "The addresses field must be a list.")
            return []
        addresses = []
        for position, address in enumerate(raw):
            prefix = f"addresses[{position}]."
            if not isinstance(address, dict):
                errors.add(f"addresses[{position}]", "An address must be a JSON object.")
                continue
            if address.get("addressType") not in ("Billing", "Shipping"):
                errors.add(prefix + "addressType", "The addressType must be Billing or Shipping.")
            addresses.append(
                {
                    "addressType": address.get("addressType"),
                    "street": errors.text(address, "street", prefix + "street"),
                    "streetExtraLine": errors.text(address, "streetExtraLine", prefix + "streetExtraLine"),
                    "zipCode": errors.text(address, "zipCode", prefix + "zipCode", max_length=20),
                    "city": errors.text(address, "city", prefix + "city"),
                    "countryCode": address.get("countryCode") or "SE",
                }
            )
        return addresses

    @staticmethod
    def _customer_terms(raw, errors: _Errors, current: dict | None) -> dict:
        terms = dict(current or {"isActive": True, "paymentTerms": 30, "currencyCode": "SEK"})
        if not isinstance(raw, dict):
            errors.add("customer", "The customer field must be a JSON object.")
            return terms
        if "isActive" in raw:
            terms["isActive"] = errors.boolean(raw, "isActive", "customer.isActive", True)
        if "paymentTerms" in raw:
            days = errors.number(
                raw,
                "paymentTerms",
                "customer.paymentTerms",
                places=0,
                minimum=Decimal(0),
                maximum=Decimal(365),
            )
            if days is not None:
                terms["paymentTerms"] = int(days)
        if "currencyCode" in raw:
            code = raw.get("currencyCode")
            if not isinstance(code, str) or len(code) != 3:
                errors.add("customer.currencyCode", "The currencyCode must be a three-letter ISO code.")
            else:
                terms["currencyCode"] = code.upper()
        return terms

    def _contact_create(self, request: SandboxRequest, org: _Organization) -> SandboxResponse:
        data = _json_object(request)
        errors = _Errors()
        sequence_id = errors.guid(data, "sequenceId", "sequenceId", required=True)
        with self.lock:
            repeated = self._repeated(org, "contacts", sequence_id)
            if repeated is not None:
                return repeated
            fields = self._contact_fields(data, errors, create=True, current=None)
            errors.raise_if_any()
            number = fields.pop("number", None)
            if number is not None and org.contacts.find_latest("number", number):
                return _number_exists(number)
            if number is None:
                number = self._next_customer_number(org)
            now = _now_local()
            snapshot = {
                "id": _new_id(),
                "number": number,
                "companyName": None,
                "givenName": None,
                "surName": None,
                "identificationNumber": None,
                "vatNumber": None,
                "email": None,
                "phone": None,
                **fields,
                "createdDate": now,
                "updatedDate": now,
                "rowVersion": org.next_row_version(),
            }
            org.contacts.put(snapshot, org.horizon(self.lag_seconds))
            org.sequences["contacts"][sequence_id] = snapshot["id"]
            self.changed()
        return json_response(snapshot, 201)

    @staticmethod
    def _next_customer_number(org: _Organization) -> str:
        while org.contacts.find_latest("number", str(org.next_customer_number)):
            org.next_customer_number += 1
        number = str(org.next_customer_number)
        org.next_customer_number += 1
        return number

    def _contact_update(self, request: SandboxRequest, org: _Organization) -> SandboxResponse:
        data = _json_object(request)
        errors = _Errors()
        with self.lock:
            current = org.contacts.get_latest(request.params["id"].lower())
            if current is None:
                return _not_found()
            fields = self._contact_fields(data, errors, create=False, current=current)
            errors.raise_if_any()
            number = fields.get("number")
            if number is not None and number != current["number"]:
                other = org.contacts.find_latest("number", number)
                if other is not None:
                    return _number_exists(number)
            snapshot = {
                **copy.deepcopy(current),
                **fields,
                "updatedDate": _now_local(),
                "rowVersion": org.next_row_version(),
            }
            org.contacts.put(snapshot, org.horizon(self.lag_seconds))
            self.changed()
        return json_response(snapshot)

    def _repeated(self, org: _Organization, resource: str, sequence_id: str | None) -> SandboxResponse | None:
        """A create already made with this sequenceId answers the same object, 200, creating nothing."""
        if sequence_id is None:
            return None
        existing_id = org.sequences[resource].get(sequence_id)
        if existing_id is None:
            return None
        return json_response(_collection_of(org, resource).get_latest(existing_id), 200)

    # -- articles ----------------------------------------------------------------------------
    def _articles_list(self, request: SandboxRequest, org: _Organization) -> SandboxResponse:
        return self._list(request, org, "articles", ("number",))

    def _article_fields(
        self, org: _Organization, data: dict, errors: _Errors, *, prefix: str = "", create: bool
    ) -> dict:
        fields: dict = {}
        if "number" in data or create:
            fields["number"] = errors.text(data, "number", prefix + "number", required=True, max_length=40)
        if "name" in data or create:
            fields["name"] = errors.text(data, "name", prefix + "name", required=True)
        if "unit" in data or create:
            fields["unit"] = errors.text(data, "unit", prefix + "unit", max_length=10) or "st"
        if "vatPercent" in data or create:
            percent = errors.number(data, "vatPercent", prefix + "vatPercent", places=2, required=True)
            if percent is not None:
                code = org.vat_code_for(percent)
                if code is None:
                    raise _Invalid(
                        _business_error(422, ERROR_MISSING_VAT_CODE, f"There is no VAT code for {percent} %.")
                    )
                fields["vatPercent"] = code["vatPercent"]
        if "prices" in data or create:
            raw = data.get("prices") or {}
            if not isinstance(raw, dict):
                errors.add(prefix + "prices", "The prices field must be a JSON object.")
                raw = {}
            prices = {}
            for key in ("ordinary", "campaign"):
                if key in raw or create:
                    prices[key] = errors.number(
                        raw, key, f"{prefix}prices.{key}", places=4, minimum=Decimal(0)
                    )
            for key in ("campaignFrom", "campaignTo"):
                if key in raw or create:
                    prices[key] = errors.day(raw, key, f"{prefix}prices.{key}")
            if create and prices["ordinary"] is None:
                prices["ordinary"] = Decimal("0.00")
            fields["prices"] = prices
        if "isStockArticle" in data or create:
            fields["isStockArticle"] = errors.boolean(data, "isStockArticle", prefix + "isStockArticle", True)
        if "stockBalance" in data or create:
            balance = errors.number(data, "stockBalance", prefix + "stockBalance", places=3)
            fields["stockBalance"] = balance if balance is not None else Decimal(0)
        for key, default in (("sendToWebshop", False), ("isActive", True)):
            if key in data or create:
                fields[key] = errors.boolean(data, key, prefix + key, default)
        return fields

    def _store_new_article(self, org: _Organization, fields: dict) -> dict:
        prices = {
            "ordinary": None,
            "campaign": None,
            "campaignFrom": None,
            "campaignTo": None,
            **fields["prices"],
        }
        snapshot = {
            "id": _new_id(),
            **fields,
            "prices": prices,
            "updatedDate": _now_local(),
            "rowVersion": org.next_row_version(),
        }
        org.articles.put(snapshot, org.horizon(self.lag_seconds))
        return snapshot

    def _article_create(self, request: SandboxRequest, org: _Organization) -> SandboxResponse:
        data = _json_object(request)
        errors = _Errors()
        sequence_id = errors.guid(data, "sequenceId", "sequenceId", required=True)
        with self.lock:
            repeated = self._repeated(org, "articles", sequence_id)
            if repeated is not None:
                return repeated
            fields = self._article_fields(org, data, errors, create=True)
            errors.raise_if_any()
            if org.articles.find_latest("number", fields["number"]):
                return _number_exists(fields["number"])
            snapshot = self._store_new_article(org, fields)
            org.sequences["articles"][sequence_id] = snapshot["id"]
            self.changed()
        return json_response(snapshot, 201)

    def _article_patch(self, request: SandboxRequest, org: _Organization) -> SandboxResponse:
        body = _json_body(request)
        if isinstance(body, list):
            body = _json_patch_to_merge(body)
        if not isinstance(body, dict):
            return _problem({"$": ["The request body must be a JSON object or a JSON Patch document."]})
        errors = _Errors()
        with self.lock:
            current = org.articles.get_latest(request.params["id"].lower())
            if current is None:
                return _not_found()
            fields = self._article_fields(org, body, errors, create=False)
            errors.raise_if_any()
            number = fields.get("number")
            if number not in (None, current["number"]) and org.articles.find_latest("number", number):
                return _number_exists(number)
            snapshot = copy.deepcopy(current)
            prices = fields.pop("prices", None)
            snapshot.update(fields)
            if prices:
                snapshot["prices"].update(prices)
            snapshot["updatedDate"] = _now_local()
            snapshot["rowVersion"] = org.next_row_version()
            org.articles.put(snapshot, org.horizon(self.lag_seconds))
            self.changed()
        return json_response(snapshot)

    def _move_stock(self, org: _Organization, quantities: dict[str, Decimal]) -> list[dict]:
        """Lower each stock article's balance by its quantity (a negative quantity raises it)."""
        changed = []
        for article_id, quantity in quantities.items():
            current = org.articles.get_latest(article_id)
            if not current["isStockArticle"] or quantity == 0:
                continue
            snapshot = {
                **current,
                "stockBalance": current["stockBalance"] - quantity,
                "updatedDate": _now_local(),
                "rowVersion": org.next_row_version(),
            }
            org.articles.put(snapshot, org.horizon(self.lag_seconds))
            changed.append(snapshot)
        return changed

    # -- customer invoices -------------------------------------------------------------------
    def _invoices_list(self, request: SandboxRequest, org: _Organization) -> SandboxResponse:
        return self._list(request, org, "customerinvoices", ("customerOrderNumber",))

    def _invoice_create(self, request: SandboxRequest, org: _Organization) -> SandboxResponse:
        data = _json_object(request)
        errors = _Errors()
        sequence_id = errors.guid(data, "sequenceId", "sequenceId", required=True)
        with self.lock:
            repeated = self._repeated(org, "customerinvoices", sequence_id)
            if repeated is not None:
                return repeated
            head, lines = self._invoice_fields(data, errors)
            errors.raise_if_any()
            snapshot, stock = self._invoice_business_rules(org, head, lines)
            snapshot["rowVersion"] = org.next_row_version()
            org.invoices.put(snapshot, org.horizon(self.lag_seconds))
            org.sequences["customerinvoices"][sequence_id] = snapshot["id"]
            org.next_invoice_number += 1
            self._move_stock(org, stock)
            self.changed()
        return json_response(snapshot, 201)

    @staticmethod
    def _invoice_fields(data: dict, errors: _Errors) -> tuple[dict, list[dict]]:
        head = data.get("customerInvoice")
        if not isinstance(head, dict):
            errors.add("customerInvoice", "The customerInvoice field is required.")
            head = {}
        p = "customerInvoice."
        cleaned = {
            "customerNumber": errors.text(
                head, "customerNumber", p + "customerNumber", required=True, max_length=20
            ),
            "invoiceDate": errors.day(head, "invoiceDate", p + "invoiceDate"),
            "dueDate": errors.day(head, "dueDate", p + "dueDate"),
            "pricesIncludeVat": errors.boolean(head, "pricesIncludeVat", p + "pricesIncludeVat", False),
            "useRounding": errors.boolean(head, "useRounding", p + "useRounding", False),
            "yourReference": errors.text(head, "yourReference", p + "yourReference"),
            "ourReference": errors.text(head, "ourReference", p + "ourReference"),
            "customerOrderNumber": errors.text(
                head, "customerOrderNumber", p + "customerOrderNumber", max_length=50
            ),
            "creditedInvoiceId": errors.guid(head, "creditedInvoiceId", p + "creditedInvoiceId"),
        }
        currency = head.get("currency") or {"code": "SEK"}
        if (
            not isinstance(currency, dict)
            or not isinstance(currency.get("code"), str)
            or len(currency["code"]) != 3
        ):
            errors.add(p + "currency.code", "The currency code must be a three-letter ISO code.")
            currency = {"code": "SEK"}
        cleaned["currency"] = {"code": currency["code"].upper()}
        dimensions = head.get("dimensions") or []
        if not isinstance(dimensions, list) or not all(
            isinstance(d, dict) and d.get("type") == "One" and isinstance(d.get("number"), str)
            for d in dimensions
        ):
            errors.add(p + "dimensions", 'Dimensions must be [{"type": "One", "number": "…"}].')
            dimensions = []
        cleaned["dimensions"] = [{"type": "One", "number": d["number"]} for d in dimensions]
        if cleaned["invoiceDate"] and cleaned["dueDate"] and cleaned["dueDate"] < cleaned["invoiceDate"]:
            errors.add(p + "dueDate", "The dueDate may not be before the invoiceDate.")

        raw_lines = data.get("invoiceLines")
        if not isinstance(raw_lines, list) or not raw_lines:
            errors.add("invoiceLines", "An invoice needs at least one line.")
            raw_lines = []
        lines = []
        for position, raw in enumerate(raw_lines):
            lp = f"invoiceLines[{position}]."
            if not isinstance(raw, dict):
                errors.add(f"invoiceLines[{position}]", "A line must be a JSON object.")
                continue
            line = {
                "articleNumber": errors.text(raw, "articleNumber", lp + "articleNumber", max_length=40),
                "description": errors.text(raw, "description", lp + "description", max_length=500),
                "quantity": errors.number(raw, "quantity", lp + "quantity", places=3),
                "unitPrice": errors.number(raw, "unitPrice", lp + "unitPrice", places=4),
                "vatPercent": errors.number(raw, "vatPercent", lp + "vatPercent", places=2),
                "discountPercent": errors.number(
                    raw,
                    "discountPercent",
                    lp + "discountPercent",
                    places=2,
                    minimum=Decimal(0),
                    maximum=_HUNDRED,
                ),
                "unitType": errors.text(raw, "unitType", lp + "unitType", max_length=10),
            }
            is_text_line = (
                not line["articleNumber"] and line["unitPrice"] is None and line["quantity"] is None
            )
            if is_text_line:
                if not line["description"]:
                    errors.add(lp + "description", "A text line needs a description.")
            else:
                for key in ("quantity", "unitPrice"):
                    if line[key] is None and lp + key not in errors.errors:
                        errors.add(lp + key, f"The {key} field is required.")
                if (
                    not line["articleNumber"]
                    and line["vatPercent"] is None
                    and lp + "vatPercent" not in errors.errors
                ):
                    errors.add(
                        lp + "vatPercent", "The vatPercent field is required on a line without article."
                    )
                if cleaned["creditedInvoiceId"] and line["quantity"] is not None and line["quantity"] > 0:
                    errors.add(lp + "quantity", "A credit invoice has negative quantities.")
            line["isTextLine"] = is_text_line
            lines.append(line)
        return cleaned, lines

    def _invoice_business_rules(
        self, org: _Organization, head: dict, lines: list[dict]
    ) -> tuple[dict, dict[str, Decimal]]:
        customer = org.contacts.find_latest("number", head["customerNumber"])
        if customer is None:
            raise _Invalid(
                _business_error(
                    422,
                    ERROR_UNKNOWN_CUSTOMER,
                    f"There is no customer with number '{head['customerNumber']}'.",
                )
            )
        unit_numbers = {unit["number"] for unit in org.result_units}
        for dimension in head["dimensions"]:
            if dimension["number"] not in unit_numbers:
                raise _Invalid(
                    _business_error(
                        422, ERROR_UNKNOWN_RESULT_UNIT, f"There is no result unit '{dimension['number']}'."
                    )
                )
        references = []
        if head["creditedInvoiceId"]:
            credited = org.invoices.get_latest(head["creditedInvoiceId"])
            if credited is None:
                raise _Invalid(
                    _business_error(
                        422,
                        ERROR_UNKNOWN_CREDITED_INVOICE,
                        f"There is no invoice {head['creditedInvoiceId']} to credit.",
                    )
                )
            if credited["creditedInvoiceId"]:
                raise _Invalid(
                    _business_error(
                        422, ERROR_CREDIT_OF_CREDIT, "A credit invoice cannot itself be credited."
                    )
                )
            references.append({"referencedCustomerInvoiceId": credited["id"], "type": "Credit"})

        stock: dict[str, Decimal] = {}
        out_lines = []
        for line in lines:
            article = None
            if line["articleNumber"]:
                article = org.articles.find_latest("number", line["articleNumber"])
                if article is None:
                    raise _Invalid(
                        _business_error(
                            422, ERROR_UNKNOWN_ARTICLE, f"There is no article '{line['articleNumber']}'."
                        )
                    )
            if line["isTextLine"]:
                out_lines.append(
                    {
                        "articleNumber": None,
                        "articleId": None,
                        "description": line["description"],
                        "quantity": None,
                        "unitPrice": None,
                        "vatPercent": None,
                        "discountPercent": None,
                        "unitType": None,
                        "netAmount": Decimal("0.00"),
                        "vatAmount": Decimal("0.00"),
                        "grossAmount": Decimal("0.00"),
                    }
                )
                continue
            percent = line["vatPercent"] if line["vatPercent"] is not None else Decimal(article["vatPercent"])
            code = org.vat_code_for(percent)
            if code is None:
                raise _Invalid(
                    _business_error(422, ERROR_MISSING_VAT_CODE, f"There is no VAT code for {percent} %.")
                )
            out_lines.append(
                {
                    "articleNumber": line["articleNumber"],
                    "articleId": article["id"] if article else None,
                    "description": line["description"]
                    if line["description"] is not None
                    else (article["name"] if article else None),
                    "quantity": line["quantity"],
                    "unitPrice": line["unitPrice"],
                    "vatPercent": code["vatPercent"],
                    "discountPercent": line["discountPercent"] or Decimal(0),
                    "unitType": line["unitType"] or (article["unit"] if article else "st"),
                }
            )
            if article is not None:
                stock[article["id"]] = stock.get(article["id"], Decimal(0)) + line["quantity"]

        totals = invoice_totals(
            [line for line in out_lines if line["quantity"] is not None],
            prices_include_vat=head["pricesIncludeVat"],
            use_rounding=head["useRounding"],
        )
        amounts = iter(totals["lines"])
        for line in out_lines:
            if line["quantity"] is not None:
                line.update(next(amounts))

        invoice_date = head["invoiceDate"] or _today_local().isoformat()
        due_date = (
            head["dueDate"]
            or (
                date.fromisoformat(invoice_date) + timedelta(days=customer["customer"]["paymentTerms"])
            ).isoformat()
        )
        now = _now_local()
        customer_name = customer.get("companyName") or " ".join(
            part for part in (customer.get("givenName"), customer.get("surName")) if part
        )
        snapshot = {
            "id": _new_id(),
            "invoiceNumber": org.next_invoice_number,
            "customerId": customer["id"],
            "customerNumber": customer["number"],
            "customerName": customer_name,
            "invoiceDate": invoice_date,
            "dueDate": due_date,
            "currency": head["currency"],
            "pricesIncludeVat": head["pricesIncludeVat"],
            "useRounding": head["useRounding"],
            "yourReference": head["yourReference"],
            "ourReference": head["ourReference"],
            "customerOrderNumber": head["customerOrderNumber"],
            "dimensions": head["dimensions"],
            "creditedInvoiceId": head["creditedInvoiceId"],
            "customerInvoiceReferences": references,
            "status": "Draft",
            "isBilled": False,
            "isCustomerPaid": False,
            "isCanceled": False,
            "netAmount": totals["netAmount"],
            "vatAmount": totals["vatAmount"],
            "roundingAmount": totals["roundingAmount"],
            "grossAmount": totals["grossAmount"],
            "vatDistributions": totals["vatDistributions"],
            "delivery": {"carrier": None, "trackingNumber": None, "trackingUrl": None},
            "invoiceLines": out_lines,
            "createdDate": now,
            "updatedDate": now,
        }
        return snapshot, stock

    # -- controls ----------------------------------------------------------------------------
    def _control_reset(self, request: SandboxRequest) -> SandboxResponse:
        data = _json_body(request) or {}
        self.reset()
        if isinstance(data, dict) and data.get("demo"):
            self.seed_demo()
        return json_response({"reset": True})

    def _control_seed(self, request: SandboxRequest) -> SandboxResponse:
        data = _json_body(request) or {}
        if not isinstance(data, dict):
            return json_response({"error": "the body must be a JSON object"}, 400)
        created = []
        with self.lock:
            if data.get("reset"):
                self.reset()
            if data.get("demo"):
                self.seed_demo()
                created.append(
                    {
                        **self._organizations[DEMO_ORGANIZATION_ID].describe(),
                        "clientId": DEMO_CLIENT_ID,
                        "clientSecret": DEMO_CLIENT_SECRET,
                    }
                )
            for spec in data.get("organizations") or []:
                created.append(self._seed_organization(spec))
            for client in data.get("clients") or []:
                self.grant_client(
                    client_id=client["clientId"],
                    client_secret=client["clientSecret"],
                    organizations=client.get("organizations") or [],
                )
        return json_response({"organizations": created}, 201)

    def _seed_organization(self, spec: dict) -> dict:
        created = self.create_organization(
            org_id=spec.get("id"),
            name=spec.get("name") or "Sandbox AB",
            organization_number=spec.get("organizationNumber") or "556000-0000",
            modules=spec.get("modules"),
            result_units=spec.get("resultUnits") or (),
            client_id=spec.get("clientId"),
            client_secret=spec.get("clientSecret"),
        )
        for client in spec.get("clients") or []:
            self.grant_client(
                client_id=client["clientId"],
                client_secret=client["clientSecret"],
                organizations=[created["id"]],
            )
        if spec.get("articles"):
            self.add_articles(created["id"], spec["articles"])
        return created

    def _control_organization(self, request: SandboxRequest) -> SandboxResponse:
        data = _json_object(request)
        return json_response(self._seed_organization(data), 201)

    def _control_articles(self, request: SandboxRequest) -> SandboxResponse:
        data = _json_body(request)
        specs = data.get("articles") if isinstance(data, dict) and "articles" in data else data
        if isinstance(specs, dict):
            specs = [specs]
        if not isinstance(specs, list):
            return _problem({"$": ['Send an article, a list of articles or {"articles": [...]}.']})
        created = self.add_articles(request.params["org"], specs)
        return json_response(created, 201)

    def _control_invoice_status(self, request: SandboxRequest) -> SandboxResponse:
        data = _json_object(request)
        status = data.get("status")
        if status not in INVOICE_STATUSES:
            return _problem({"status": [f"The status must be one of {', '.join(INVOICE_STATUSES)}."]})
        delivery = data.get("delivery")
        if delivery is not None and not isinstance(delivery, dict):
            return _problem({"delivery": ["The delivery must be a JSON object."]})
        with self.lock:
            org = self._organizations.get(request.params["org"].lower())
            current = org.invoices.get_latest(request.params["id"].lower()) if org else None
            if current is None:
                return _not_found()
            if current["status"] == "Cancelled" and status != "Cancelled":
                return json_response({"error": "a cancelled invoice cannot change status"}, 409)
            snapshot = copy.deepcopy(current)
            snapshot["status"] = status
            snapshot["isCanceled"] = status == "Cancelled"
            if status != "Cancelled":
                snapshot["isBilled"] = status in ("Invoiced", "Paid")
                snapshot["isCustomerPaid"] = status == "Paid"
            if delivery:
                snapshot["delivery"].update(
                    {
                        k: delivery.get(k, snapshot["delivery"].get(k))
                        for k in ("carrier", "trackingNumber", "trackingUrl")
                    }
                )
            snapshot["updatedDate"] = _now_local()
            snapshot["rowVersion"] = org.next_row_version()
            org.invoices.put(snapshot, org.horizon(self.lag_seconds))
            if status == "Cancelled" and current["status"] != "Cancelled":
                # Cancelling (makulera) reverses the invoice's stock movement.
                returned: dict[str, Decimal] = {}
                for line in snapshot["invoiceLines"]:
                    if line.get("articleId") and line["quantity"] is not None:
                        article_id = line["articleId"]
                        returned[article_id] = returned.get(article_id, Decimal(0)) - line["quantity"]
                self._move_stock(org, returned)
            self.changed()
        return json_response(snapshot)

    def _control_till_sale(self, request: SandboxRequest) -> SandboxResponse:
        data = _json_object(request)
        lines = data.get("lines")
        errors = _Errors(numeric_strings=True)
        if not isinstance(lines, list) or not lines:
            errors.add("lines", "A till sale needs at least one line.")
            lines = []
        for position, line in enumerate(lines):
            if not isinstance(line, dict):
                errors.add(f"lines[{position}]", "A line must be a JSON object.")
                continue
            errors.text(line, "articleNumber", f"lines[{position}].articleNumber", required=True)
            errors.number(line, "quantity", f"lines[{position}].quantity", places=3, required=True)
        errors.raise_if_any()
        with self.lock:
            org = self._organizations.get(request.params["org"].lower())
            if org is None:
                return _not_found()
            if not org.modules.get("pointOfSale"):
                return _business_error(
                    409, ERROR_NO_POINT_OF_SALE, "The organisation has no point-of-sale module."
                )
            sold: dict[str, Decimal] = {}
            for line in lines:
                article = org.articles.find_latest("number", line["articleNumber"])
                if article is None:
                    return _business_error(
                        422, ERROR_UNKNOWN_ARTICLE, f"There is no article '{line['articleNumber']}'."
                    )
                sold[article["id"]] = sold.get(article["id"], Decimal(0)) + Decimal(line["quantity"])
            changed = self._move_stock(org, sold)
            self.changed()
        return json_response({"articles": changed})

    def _control_lag(self, request: SandboxRequest) -> SandboxResponse:
        seconds = _setting(_json_object(request), "seconds", minimum=0)
        with self.lock:
            self.lag_seconds = seconds
        return json_response({"seconds": seconds})

    def _control_rate_limit(self, request: SandboxRequest) -> SandboxResponse:
        data = _json_object(request)
        requests = int(_setting(data, "requests", minimum=0))
        seconds = _setting(data, "seconds", minimum=0.001) if "seconds" in data else self.rate_limit_seconds
        with self._rate_lock:
            self.rate_limit_requests = requests
            self.rate_limit_seconds = seconds
            self._windows.clear()
        return json_response({"requests": requests, "seconds": seconds})

    def _control_token_lifetime(self, request: SandboxRequest) -> SandboxResponse:
        seconds = _setting(_json_object(request), "seconds", minimum=0)
        with self.lock:
            self.token_lifetime = seconds
        return json_response({"seconds": seconds})

    def _control_revoke_tokens(self, request: SandboxRequest) -> SandboxResponse:
        with self.lock:
            revoked = len(self._tokens)
            self._tokens.clear()
            self.changed()
        return json_response({"revoked": revoked})

    def _control_settings(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(
            {
                "lagSeconds": self.lag_seconds,
                "tokenLifetime": self.token_lifetime,
                "rateLimit": {"requests": self.rate_limit_requests, "seconds": self.rate_limit_seconds},
            }
        )


def _setting(data: dict, key: str, *, minimum: float) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)) or value < minimum:
        raise _Invalid(_problem({key: [f"The {key} field must be a number of at least {minimum}."]}))
    # Settings are timings, not money: a float is the natural type here.
    return float(value)


def _json_patch_to_merge(operations: list) -> dict | None:
    """Turn ``replace``/``add`` JSON Patch operations into the merge object PATCH applies."""
    merged: dict = {}
    for operation in operations:
        if (
            not isinstance(operation, dict)
            or operation.get("op") not in ("replace", "add")
            or not isinstance(operation.get("path"), str)
        ):
            return None
        parts = [part for part in operation["path"].split("/") if part]
        if not parts:
            return None
        target = merged
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                return None
        target[parts[-1]] = operation.get("value")
    return merged


__all__ = [
    "API_VERSION",
    "DEMO_ARTICLES",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_MODULES",
    "DEMO_ORGANIZATION_ID",
    "DEMO_ORGANIZATION_NAME",
    "DEMO_ORGANIZATION_NUMBER",
    "DEMO_RESULT_UNITS",
    "DISCOUNT_ARTICLE_NUMBER",
    "FEE_ARTICLE_NUMBER",
    "FREIGHT_ARTICLE_NUMBER",
    "HogiaSmartSandbox",
    "VAT_CODES",
    "invoice_totals",
    "round_half_up",
]
