"""What the WooCommerce and Hogia Smart clients share: one ``_request``.

``HttpClient._request`` is the only place that touches the network. It applies an
explicit ``(connect, read)`` timeout, turns every failure into one of the typed
errors of ``integrations.errors``, retries only where a repeat cannot do harm, parses
JSON with ``Decimal`` for non-integer numbers, logs each call at DEBUG without
secrets and counts the calls made (``requests_made``).

Subclasses plug in through three hooks: ``_authorise`` (sign or add a header, once
per attempt), ``_renew_credentials`` (on a 401, once per call) and
``_error_details`` (read the remote's error body).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence
from urllib.parse import quote

import requests
from requests.structures import CaseInsensitiveDict

from integrations.errors import (
    NotFound,
    RateLimited,
    RemoteError,
    RemoteRejected,
    RemoteUnavailable,
    Unauthorised,
)

logger = logging.getLogger("integrations.clients")

Timeout = tuple[float, float]
QueryPairs = list[tuple[str, str]]
Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None

DEFAULT_TIMEOUT: Timeout = (5.0, 30.0)

# Query keys whose values are credentials or signatures; their values never reach a log line.
SECRET_QUERY_KEYS = frozenset(
    {
        "consumer_key",
        "consumer_secret",
        "oauth_consumer_key",
        "oauth_signature",
        "oauth_nonce",
        "client_secret",
        "access_token",
        "token",
        "password",
    }
)
# A buyer's e-mail or personal identity number (a contact search): logs carry no personal data.
PERSONAL_QUERY_KEYS = frozenset({"email", "identificationnumber"})
_REDACTED_QUERY_KEYS = SECRET_QUERY_KEYS | PERSONAL_QUERY_KEYS
_SECRET_IN_TEXT = re.compile(
    r"((?:%s)=)[^&\s'\")]+" % "|".join(sorted(_REDACTED_QUERY_KEYS, key=len, reverse=True)),
    re.IGNORECASE,
)

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a client retries a call that is safe to repeat.

    ``max_attempts`` counts the first try. ``max_total_wait`` caps the sum of the
    waits of one call: a wait that would exceed it (for instance a long
    ``Retry-After``) is not taken and the error goes to the caller instead, who can
    reschedule the work. ``default_retry_after`` is used for a 429 without a
    usable ``Retry-After``.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total_wait: float = 60.0
    default_retry_after: float = 5.0

    def backoff(self, attempt: int, jitter: float) -> float:
        """Exponential back-off with full jitter for the wait after ``attempt`` (1-based)."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return cap * jitter


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass
class ApiResponse:
    """A successful answer: the HTTP status, the headers and the parsed JSON (``None`` if empty)."""

    status: int
    headers: CaseInsensitiveDict = field(default_factory=CaseInsensitiveDict)
    data: Any = None


def json_loads(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as ``Decimal``, so money never passes through float."""
    return json.loads(text, parse_float=Decimal)


def json_dumps(value: Any, *, decimal_as_string: bool = False) -> str:
    """Serialise to JSON, writing ``Decimal`` exactly: as a JSON number, or as a string if asked.

    UUIDs and dates (not datetimes, whose zone each system reads differently) become text.

    The standard encoder would go through float (or refuse), so each Decimal is
    replaced by a unique placeholder string that is swapped for its exact text
    after encoding.
    """
    marker = f"decimal-{uuid.uuid4().hex}-"
    numbers: list[str] = []

    def replace(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            if not obj.is_finite():
                raise ValueError(f"{obj} cannot be sent as a JSON number")
            if decimal_as_string:
                return format(obj, "f")
            numbers.append(format(obj, "f"))
            return f"{marker}{len(numbers) - 1}"
        if isinstance(obj, uuid.UUID):
            return str(obj)
        if type(obj) is date:
            return obj.isoformat()
        if isinstance(obj, Mapping):
            return {key: replace(val) for key, val in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [replace(val) for val in obj]
        return obj

    text = json.dumps(replace(value), ensure_ascii=False, separators=(",", ":"))
    for index, number in enumerate(numbers):
        text = text.replace(f'"{marker}{index}"', number, 1)
    return text


def rfc3986_quote(value: str) -> str:
    """Percent-encode everything except RFC 3986 unreserved characters (PHP's ``rawurlencode``)."""
    return quote(value, safe="-._~")


def param_text(value: Any) -> str:
    """The text a query parameter value is sent as (booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def query_pairs(params: Params) -> QueryPairs:
    """Flatten a mapping or a list of pairs into ordered ``(key, text)`` pairs.

    ``None`` values are left out. A list or tuple value repeats the key, which is how
    array parameters such as ``status[]`` are sent.
    """
    if not params:
        return []
    items: Iterable[tuple[str, Any]] = params.items() if isinstance(params, Mapping) else params
    pairs: QueryPairs = []
    for key, value in items:
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            pairs.extend((key, param_text(item)) for item in value)
        else:
            pairs.append((key, param_text(value)))
    return pairs


def encode_query(pairs: QueryPairs) -> str:
    return "&".join(f"{rfc3986_quote(key)}={rfc3986_quote(value)}" for key, value in pairs)


def redact_query(pairs: QueryPairs) -> str:
    """The query string for a log line, with credential and personal values replaced by ``***``."""
    return "&".join(
        f"{key}={'***' if key.lower() in _REDACTED_QUERY_KEYS else value}" for key, value in pairs
    )


def redact_text(text: str) -> str:
    """Remove credential values from free text such as a requests exception message."""
    return _SECRET_IN_TEXT.sub(r"\1***", text)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110: delay-seconds or HTTP-date).

    Returns ``None`` when the header is absent or unreadable; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are always GMT even when the zone is spelled oddly.
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


class HttpClient:
    """Base of the clients of the remote systems. Not used directly.

    Constructor arguments every client accepts:

    - ``session``: an injected ``requests.Session`` (one is created if omitted). It is
      never modified, so several clients can share one.
    - ``timeout``: ``(connect, read)`` seconds, or one number for both.
    - ``retry``: a ``RetryPolicy``; ``NO_RETRY`` turns retries off.
    - ``sleep``, ``jitter``, ``clock``: injectable ``time.sleep``, ``random.random``
      and ``time.time``, so that tests neither wait nor depend on chance or the clock.
    - ``verify``: passed to requests only when given, so that ``REQUESTS_CA_BUNDLE``
      keeps working through the session's ``trust_env``.

    ``requests_made`` counts every HTTP request sent, retries and token calls included.
    """

    system = ""

    def __init__(
        self,
        *,
        session: requests.Session | None = None,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        verify: bool | str | None = None,
    ):
        self.session = session if session is not None else requests.Session()
        if isinstance(timeout, (int, float)):
            timeout = (float(timeout), float(timeout))
        self.timeout: Timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock
        self._verify = verify
        self.requests_made = 0

    # Hooks for the subclasses ---------------------------------------------------------

    def _authorise(self, method: str, url: str, query: QueryPairs, headers: dict[str, str]) -> QueryPairs:
        """Add credentials for one attempt; may add headers in place; returns the query to send."""
        return query

    def _renew_credentials(self) -> bool:
        """Called once per call after a 401; return True if new credentials make a repeat worthwhile."""
        return False

    def _error_details(self, status: int, body: Any) -> tuple[str, str, Any]:
        """``(code, message, errors)`` read from an error body; subclasses know their system's shape."""
        if isinstance(body, str):
            return "", body.strip()[:300], None
        return "", "", body

    def _encode_body(self, value: Any) -> str:
        return json_dumps(value)

    # Paging ------------------------------------------------------------------------------

    def _page_through(
        self,
        url: str,
        *,
        params_for: Callable[[int], Params],
        page_size: int,
        page_count_header: str,
        what: str,
    ) -> Iterator[Any]:
        """Yield the items of page 1, 2, … until the page-count header says the last one.

        Without the header, a short (or empty) page is the only sign of the end.
        """
        page = 1
        while True:
            response = self._request("GET", url, params=params_for(page))
            items = response.data
            if not isinstance(items, list):
                raise RemoteError(
                    f"Expected a list from {what}, got {type(items).__name__}",
                    system=self.system,
                    status=response.status,
                    body=items,
                )
            yield from items
            page_count = int_header(response.headers, page_count_header)
            if page_count is None:
                if len(items) < page_size:
                    return
            elif page >= page_count:
                return
            if not items:
                return
            page += 1

    # The one request --------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Params = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        authenticate: bool = True,
    ) -> ApiResponse:
        """Send one call, retrying where safe, and return the parsed answer or raise a typed error.

        ``idempotent`` defaults to True for GET/HEAD/OPTIONS and False otherwise. A call
        that is not idempotent is repeated only after a 429 (the server did not act);
        an idempotent one also after a timeout, a dropped connection, a 5xx or an
        unreadable answer. ``json`` is a JSON body, ``data`` a form body.
        ``authenticate=False`` skips the ``_authorise`` hook (token endpoints).
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in _IDEMPOTENT_METHODS
        query = query_pairs(params)
        base_headers = {"Accept": "application/json"}
        body: bytes | Mapping[str, str] | None = None
        if json is not None:
            body = self._encode_body(json).encode("utf-8")
            base_headers["Content-Type"] = "application/json; charset=utf-8"
        elif data is not None:
            body = data
        if headers:
            base_headers.update(headers)

        attempt = 0
        waited = 0.0
        renewed = False
        while True:
            attempt += 1
            call_headers = dict(base_headers)
            # Outside the try: a failure to get credentials (a token call, which has its
            # own retries) or a refusal by a rate gate goes to the caller as it is.
            sent_query = self._authorise(method, url, list(query), call_headers) if authenticate else query
            try:
                return self._send(method, url, sent_query, body, call_headers, attempt)
            except Unauthorised as exc:
                if authenticate and exc.status == 401 and not renewed and self._renew_credentials():
                    renewed = True
                    attempt -= 1
                    continue
                raise
            except RemoteUnavailable as exc:
                rate_limited = exc.status == 429
                if not (rate_limited or idempotent) or attempt >= self.retry.max_attempts:
                    raise
                wait = self.retry.backoff(attempt, self._jitter())
                if isinstance(exc, RateLimited):
                    wait = max(wait, exc.retry_after)
                if waited + wait > self.retry.max_total_wait:
                    raise
                logger.info(
                    "%s %s %s: %s; retry %d in %.2f s",
                    self.system,
                    method,
                    self._log_url(url, None),
                    exc,
                    attempt,
                    wait,
                )
                self._sleep(wait)
                waited += wait

    def _send(
        self, method: str, url: str, sent_query: QueryPairs, body: Any, headers: dict[str, str], attempt: int
    ) -> ApiResponse:
        full_url = f"{url}?{encode_query(sent_query)}" if sent_query else url
        log_url = self._log_url(url, sent_query)
        kwargs: dict[str, Any] = {
            "headers": headers,
            "data": body,
            "timeout": self.timeout,
            # A redirected POST silently becomes a GET in requests; better to fail loudly.
            "allow_redirects": method in _IDEMPOTENT_METHODS,
        }
        if self._verify is not None:
            kwargs["verify"] = self._verify

        self.requests_made += 1
        started = time.monotonic()
        try:
            response = self.session.request(method, full_url, **kwargs)
        except requests.exceptions.SSLError as exc:
            logger.debug("%s %s %s -> TLS error (attempt %d)", self.system, method, log_url, attempt)
            raise RemoteError(
                f"TLS failure talking to {log_url}: {redact_text(str(exc))[:300]}", system=self.system
            ) from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.TooManyRedirects,
        ) as exc:
            raise RemoteError(
                f"{type(exc).__name__} for {method} {log_url}; check the URL", system=self.system
            ) from None
        except (
            requests.exceptions.Timeout,
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
            requests.exceptions.RequestException,
        ) as exc:
            elapsed = (time.monotonic() - started) * 1000
            logger.debug(
                "%s %s %s -> %s after %.0f ms (attempt %d)",
                self.system,
                method,
                log_url,
                type(exc).__name__,
                elapsed,
                attempt,
            )
            # The message of a requests exception repeats the URL, query string included.
            raise RemoteUnavailable(
                f"{type(exc).__name__} on {method} {log_url}: {redact_text(str(exc))[:300]}",
                system=self.system,
            ) from None
        elapsed = (time.monotonic() - started) * 1000
        logger.debug(
            "%s %s %s -> %s in %.0f ms (attempt %d)",
            self.system,
            method,
            log_url,
            response.status_code,
            elapsed,
            attempt,
        )
        return self._read(method, log_url, response)

    def _read(self, method: str, log_url: str, response: requests.Response) -> ApiResponse:
        status = response.status_code
        content = response.content or b""
        if 200 <= status < 300:
            if not content.strip():
                # WordPress answers a PHP fatal error with an empty 200; a GET always has a body.
                if status == 204 or method != "GET":
                    return ApiResponse(status, response.headers, None)
                raise RemoteUnavailable(
                    f"Empty answer to {method} {log_url}", system=self.system, status=status
                )
            try:
                return ApiResponse(status, response.headers, json_loads(content.decode("utf-8-sig")))
            except (ValueError, UnicodeDecodeError):
                raise RemoteUnavailable(
                    f"Unreadable JSON in the answer to {method} {log_url}",
                    system=self.system,
                    status=status,
                    body=_text_excerpt(content),
                ) from None
        raise self._error(method, log_url, response)

    def _error(self, method: str, log_url: str, response: requests.Response) -> RemoteError:
        status = response.status_code
        body = _parse_error_body(response.content or b"")
        code, message, errors = self._error_details(status, body)
        default = f"{response.reason or 'HTTP error'} on {method} {log_url}"
        if not message:
            message = default
        elif isinstance(body, str):
            # A text body (a proxy's HTML page) says little without the call it answered.
            message = f"{default}: {message}"
        common = {"system": self.system, "status": status, "code": code, "body": body}
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self._clock())
        if status == 429:
            if retry_after is None:
                retry_after = self.retry.default_retry_after
            return RateLimited(message, retry_after=retry_after, **common)
        if status >= 500 or status == 408:
            if status == 503 and retry_after is not None:
                return RateLimited(message, retry_after=retry_after, **common)
            return RemoteUnavailable(message, **common)
        if status in (401, 403):
            return Unauthorised(message, **common)
        if status == 404:
            return NotFound(message, errors=errors, **common)
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            return RemoteRejected(
                f"{method} {log_url} was redirected to {location}; check the URL", errors=errors, **common
            )
        return RemoteRejected(message, errors=errors, **common)

    def _log_url(self, url: str, query: QueryPairs | None) -> str:
        """The URL for logs and error messages: OAuth parameters left out, credentials masked."""
        shown = [(k, v) for k, v in query or [] if not k.startswith("oauth_")]
        return f"{url}?{redact_query(shown)}" if shown else url


def _parse_error_body(content: bytes) -> Any:
    if not content.strip():
        return None
    try:
        return json_loads(content.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return _text_excerpt(content)


def _text_excerpt(content: bytes, limit: int = 500) -> str:
    return content[:limit].decode("utf-8", errors="replace")


def int_header(headers: Mapping[str, str], name: str) -> int | None:
    """An integer response header such as ``X-WP-TotalPages``; None when absent or not a number."""
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def utc_naive_iso(moment: datetime) -> str:
    """An aware datetime as ``YYYY-MM-DDTHH:MM:SS`` in UTC without an offset."""
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        raise ValueError("datetimes sent to a remote system must be timezone-aware")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
