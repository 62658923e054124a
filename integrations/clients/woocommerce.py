"""Client for one WooCommerce shop's REST API (``/wp-json/wc/v3``).

Facts this relies on are in ``shared/docs/woocommerce-api.md``. The client returns
WooCommerce's JSON as it comes (money stays a string; a JSON number such as
``line_items[].price`` becomes ``Decimal``) and raises the typed errors of
``integrations.errors`` with WooCommerce's ``code`` and ``message``.
"""

from __future__ import annotations

import base64
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import urlsplit

import requests

from integrations.clients.base import (
    DEFAULT_TIMEOUT,
    HttpClient,
    Params,
    QueryPairs,
    RetryPolicy,
    Timeout,
    json_dumps,
    query_pairs,
    utc_naive_iso,
)
from integrations.clients.oauth1 import SIGNATURE_METHODS, oauth1_sign
from integrations.errors import RemoteError

MAX_PER_PAGE = 100
MAX_BATCH_ITEMS = 100
# Fifty SKUs keep the URL short and, with per_page=100, every match fits one page.
SKU_CHUNK = 50


@dataclass(frozen=True)
class BatchItemError:
    """One item of a batch that WooCommerce refused.

    ``kind`` is ``create``, ``update`` or ``delete``; ``index`` is the item's position
    in the list the caller passed for that kind; ``id`` is the remote id (0 for a
    create). ``data`` is WooCommerce's ``error.data`` (e.g. ``resource_id`` of the
    product that already owns a duplicated SKU).
    """

    kind: str
    index: int
    id: int
    code: str
    message: str
    status: int | None = None
    data: Any = None


@dataclass
class BatchResult:
    """What a batch write did, item by item. Batches are not atomic: check ``errors``.

    ``created``, ``updated`` and ``deleted`` map the caller's index in the list
    passed for that kind to the object WooCommerce returned.
    """

    created: dict[int, dict] = field(default_factory=dict)
    updated: dict[int, dict] = field(default_factory=dict)
    deleted: dict[int, dict] = field(default_factory=dict)
    errors: list[BatchItemError] = field(default_factory=list)
    requests: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


class WooCommerceClient(HttpClient):
    """Talks to one WooCommerce shop.

    ``base_url`` is the shop's home URL (``https://shop.example/butik2/``); the API root
    is ``{base_url}wp-json/wc/v3/``. Over HTTPS the key and secret go as HTTP Basic
    with TLS verified; over plain HTTP every request is signed with OAuth 1.0a in
    the query string (WooCommerce ignores Basic auth without TLS). ``base_url`` must
    match the shop's ``home_url`` exactly (scheme, ``www``, path), or OAuth
    signatures fail.

    Only GETs are retried after a timeout or 5xx; writes are retried only after a
    429. Decimals in request bodies are sent as strings, which is how WooCommerce
    takes money.
    """

    system = "WooCommerce"

    def __init__(
        self,
        *,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        session: requests.Session | None = None,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        verify: bool | str | None = None,
        signature_method: str = "HMAC-SHA256",
        batch_size: int = MAX_BATCH_ITEMS,
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
        if not base_url.endswith("/"):
            base_url += "/"
        scheme = urlsplit(base_url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        if signature_method not in SIGNATURE_METHODS:
            raise ValueError(f"signature_method must be one of {sorted(SIGNATURE_METHODS)}")
        if not 1 <= batch_size <= MAX_BATCH_ITEMS:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_ITEMS}")
        self.base_url = base_url
        self.api_root = f"{base_url}wp-json/wc/v3/"
        self.uses_oauth = scheme == "http"
        self.signature_method = signature_method
        self.batch_size = batch_size
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        # Some servers (Apache with CGI/FastCGI) drop the Authorization header: WooCommerce
        # then sees an anonymous caller. It also takes the keys in the query string over HTTPS.
        self.keys_in_query = False

    def __repr__(self) -> str:
        return f"<WooCommerceClient {self.base_url}>"

    # Plumbing ---------------------------------------------------------------------------

    def _authorise(self, method: str, url: str, query: QueryPairs, headers: dict[str, str]) -> QueryPairs:
        if self.uses_oauth:
            return oauth1_sign(
                method=method,
                url=url,
                params=query,
                consumer_key=self._consumer_key,
                consumer_secret=self._consumer_secret,
                signature_method=self.signature_method,
            )
        if self.keys_in_query:
            return query + [("consumer_key", self._consumer_key), ("consumer_secret", self._consumer_secret)]
        pair = f"{self._consumer_key}:{self._consumer_secret}".encode("utf-8")
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return query

    def _renew_credentials(self) -> bool:
        """A 401 over HTTPS may mean the server dropped the Basic header: try the query string once."""
        if self.uses_oauth or self.keys_in_query:
            return False
        self.keys_in_query = True
        return True

    def _error_details(self, status: int, body: Any) -> tuple[str, str, Any]:
        if isinstance(body, dict) and ("code" in body or "message" in body):
            message = str(body.get("message") or "")
            data = body.get("data")
            params = data.get("params") if isinstance(data, dict) else None
            if isinstance(params, dict) and params:
                # rest_invalid_param says which parameter only in data.params.
                message = f"{message} ({'; '.join(str(v) for v in params.values())})"
            return str(body.get("code") or ""), message, body
        return super()._error_details(status, body)

    def _encode_body(self, value: Any) -> str:
        return json_dumps(value, decimal_as_string=True)

    def _url(self, path: str) -> str:
        return self.api_root + path.lstrip("/")

    def _get(self, path: str, params: Params = None) -> Any:
        return self._request("GET", self._url(path), params=params).data

    def _paginate(self, path: str, params: Params = None, *, per_page: int = MAX_PER_PAGE) -> Iterator[dict]:
        """Yield every item of a collection, page by page, following ``X-WP-TotalPages``.

        ``per_page`` is checked at once, before the first request. The Link header is
        not used: WooCommerce's controllers never send first/last.
        """
        _check_per_page(per_page)
        base = [(k, v) for k, v in query_pairs(params) if k not in ("page", "per_page")]
        return self._pages(path, base, per_page)

    def _pages(self, path: str, base: QueryPairs, per_page: int) -> Iterator[dict]:
        return self._page_through(
            self._url(path),
            page_size=per_page,
            page_count_header="X-WP-TotalPages",
            what=path,
            params_for=lambda page: base + [("per_page", str(per_page)), ("page", str(page))],
        )

    # Store ------------------------------------------------------------------------------

    def store_info(self) -> dict[str, str]:
        """``{"version", "currency", "home_url"}`` from ``system_status``; a working call proves the keys."""
        status = self._get("system_status") or {}
        environment = status.get("environment") or {}
        settings = status.get("settings") or {}
        return {
            "version": str(environment.get("version") or ""),
            "currency": str(settings.get("currency") or ""),
            "home_url": str(environment.get("home_url") or ""),
        }

    def order_statuses(self) -> list[tuple[str, str]]:
        """Every order status the shop has, custom ones included, as ``(slug, name)``."""
        totals = self._get("reports/orders/totals") or []
        return [(str(row["slug"]), str(row.get("name") or row["slug"])) for row in totals]

    # Orders -----------------------------------------------------------------------------

    def orders_iter(
        self,
        *,
        modified_after: datetime | None = None,
        statuses: Sequence[str] | None = None,
        orderby: str = "modified",
        order: str = "asc",
        per_page: int = MAX_PER_PAGE,
        **filters: Any,
    ) -> Iterator[dict]:
        """Yield orders, oldest change first by default.

        ``modified_after`` (aware datetime) is exclusive and compared in UTC. Stores
        older than WooCommerce 5.8 ignore it silently: check ``store_info()["version"]``.
        ``statuses`` defaults to WooCommerce's ``any`` (which leaves out ``trash``).
        Other keyword arguments are sent as filters; list values as ``key[]``.
        """
        params: list[tuple[str, Any]] = [("orderby", orderby), ("order", order)]
        if modified_after is not None:
            # Sent without an offset: WordPress would convert a zoned value to the site's zone.
            params += [("modified_after", utc_naive_iso(modified_after)), ("dates_are_gmt", True)]
        if statuses:
            if isinstance(statuses, str):
                statuses = [statuses]
            params.append(("status[]", list(statuses)))
        params += _filter_pairs(filters, gmt_sent=modified_after is not None)
        return self._paginate("orders", params, per_page=per_page)

    def order_get(self, order_id: int) -> dict:
        return self._get(f"orders/{int(order_id)}")

    def order_update(self, order_id: int, data: dict) -> dict:
        """``PUT /orders/{id}``. Not retried after a timeout: items without ``id`` would be added twice.

        ``{"status": "completed"}`` makes WooCommerce send its own customer e-mails.
        """
        return self._request("PUT", self._url(f"orders/{int(order_id)}"), json=data).data

    def order_note_create(self, order_id: int, note: str, customer_note: bool = False) -> dict:
        """Add a note. With ``customer_note=True`` WooCommerce e-mails it to the customer."""
        return self._request(
            "POST",
            self._url(f"orders/{int(order_id)}/notes"),
            json={"note": note, "customer_note": customer_note},
        ).data

    def order_notes(self, order_id: int, *, kind: str = "any") -> list[dict]:
        """The order's notes, newest first, all in one list (the notes controller does not page);
        ``kind`` is ``any``, ``customer`` or ``internal``."""
        return list(self._get(f"orders/{int(order_id)}/notes", {"type": kind}) or [])

    # Outside wc/v3: the REST index and the shipment tracking plugins ----------------------

    def _wp_json(self, route: str) -> str:
        return f"{self.base_url}wp-json/{route.lstrip('/')}"

    def rest_index(self) -> dict:
        """``GET /wp-json/``: WordPress's index, whose ``namespaces`` say which plugins answer REST calls."""
        return self._request("GET", self._wp_json(""), params={"_fields": "namespaces,routes"}).data or {}

    def shipment_trackings(self, order_id: int, *, namespace: str) -> list[dict]:
        """The order's tracking items under a Shipment Tracking namespace (``wc-shipment-tracking/v3``
        for the WooCommerce extension, ``wc-ast/v3`` for Advanced Shipment Tracking)."""
        return list(
            self._request("GET", self._wp_json(f"{namespace}/orders/{int(order_id)}/shipment-trackings")).data
            or []
        )

    def shipment_tracking_create(self, order_id: int, data: dict, *, namespace: str) -> dict:
        return self._request(
            "POST", self._wp_json(f"{namespace}/orders/{int(order_id)}/shipment-trackings"), json=data
        ).data

    def fulfillments(self, order_id: int) -> list[dict]:
        """WooCommerce's own order fulfillments (a feature shops switch on; absent otherwise)."""
        return list(self._get(f"orders/{int(order_id)}/fulfillments") or [])

    def fulfillment_create(self, order_id: int, data: dict) -> dict:
        return self._request("POST", self._url(f"orders/{int(order_id)}/fulfillments"), json=data).data

    def order_refunds(self, order_id: int) -> list[dict]:
        """The order's refund objects (positive ``amount``, negative lines and taxes)."""
        return list(self._paginate(f"orders/{int(order_id)}/refunds"))

    # Products ---------------------------------------------------------------------------

    def products_iter(
        self, *, modified_after: datetime | None = None, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[dict]:
        """Yield products (parents, not variations); filters as in the API (``status``, ``type``, …)."""
        params: list[tuple[str, Any]] = []
        if modified_after is not None:
            params += [("modified_after", utc_naive_iso(modified_after)), ("dates_are_gmt", True)]
        params += _filter_pairs(filters, gmt_sent=modified_after is not None)
        return self._paginate("products", params, per_page=per_page)

    def variations_iter(
        self, product_id: int, *, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[dict]:
        """Yield the variations of a variable product (where its prices and stock live)."""
        return self._paginate(
            f"products/{int(product_id)}/variations", _filter_pairs(filters), per_page=per_page
        )

    def product_get(self, product_id: int) -> dict:
        """A product, or a variation by its own id (WooCommerce serves both on ``/products/{id}``)."""
        return self._get(f"products/{int(product_id)}")

    def products_by_sku(self, skus: Sequence[str]) -> list[dict]:
        """Products and variations whose SKU is one of ``skus`` (exact match), in chunks.

        WooCommerce splits the ``sku`` filter on commas, so a SKU containing a comma
        cannot be looked up and is refused here. Variations come back with their
        ``parent_id``.
        """
        wanted: list[str] = []
        for sku in skus:
            sku = sku.strip()
            if "," in sku:
                raise ValueError(f"SKU {sku!r} contains a comma; WooCommerce cannot filter on it")
            if sku and sku not in wanted:
                wanted.append(sku)
        found: dict[int, dict] = {}
        for start in range(0, len(wanted), SKU_CHUNK):
            chunk = wanted[start : start + SKU_CHUNK]
            for product in self._paginate("products", [("sku", ",".join(chunk))]):
                found.setdefault(product["id"], product)
        return list(found.values())

    def products_batch(
        self, *, create: Sequence[dict] = (), update: Sequence[dict] = (), delete: Sequence[int] = ()
    ) -> BatchResult:
        """Create, update and delete products in requests of at most ``batch_size`` items.

        Never retried after a timeout or 5xx: part of a batch may have been applied,
        so re-read before trying again. Deletes are permanent (``force``).
        """
        return self._batch("products/batch", create, update, delete)

    def variations_batch(
        self,
        product_id: int,
        *,
        create: Sequence[dict] = (),
        update: Sequence[dict] = (),
        delete: Sequence[int] = (),
    ) -> BatchResult:
        """As ``products_batch``, for the variations of one variable product."""
        return self._batch(f"products/{int(product_id)}/variations/batch", create, update, delete)

    def _batch(
        self, path: str, create: Sequence[dict], update: Sequence[dict], delete: Sequence[int]
    ) -> BatchResult:
        for position, item in enumerate(update):
            if not item.get("id"):
                raise ValueError(f"update[{position}] has no id")
        for position, item_id in enumerate(delete):
            # WooCommerce skips id 0 silently, which would shift the answers against the items.
            if not int(item_id):
                raise ValueError(f"delete[{position}] is 0")
        queue = (
            [("create", i, item) for i, item in enumerate(create)]
            + [("update", i, item) for i, item in enumerate(update)]
            + [("delete", i, int(item)) for i, item in enumerate(delete)]
        )
        result = BatchResult()
        for start in range(0, len(queue), self.batch_size):
            chunk = queue[start : start + self.batch_size]
            body: dict[str, list] = {}
            for kind, _, item in chunk:
                body.setdefault(kind, []).append(item)
            answer = self._request("POST", self._url(path), json=body).data or {}
            result.requests += 1
            for kind in ("create", "update", "delete"):
                sent = [(index, item) for k, index, item in chunk if k == kind]
                returned = answer.get(kind) or []
                if len(returned) != len(sent):
                    raise RemoteError(
                        f"Batch answer has {len(returned)} {kind} results for {len(sent)} items; "
                        "re-read before retrying",
                        system=self.system,
                        body=answer,
                    )
                target = getattr(
                    result, {"create": "created", "update": "updated", "delete": "deleted"}[kind]
                )
                for (index, _item), obj in zip(sent, returned):
                    error = obj.get("error") if isinstance(obj, dict) else None
                    if error:
                        data = error.get("data")
                        result.errors.append(
                            BatchItemError(
                                kind=kind,
                                index=index,
                                id=int(obj.get("id") or 0),
                                code=str(error.get("code") or ""),
                                message=str(error.get("message") or ""),
                                status=data.get("status") if isinstance(data, dict) else None,
                                data=data,
                            )
                        )
                    else:
                        target[index] = obj
        return result

    # Taxes ------------------------------------------------------------------------------

    def taxes(self) -> list[dict]:
        """The shop's tax rates (``GET /taxes``): class slug, rate, country, shipping."""
        return list(self._paginate("taxes"))

    # Customers --------------------------------------------------------------------------

    def customers_iter(self, *, per_page: int = MAX_PER_PAGE, **filters: Any) -> Iterator[dict]:
        """Yield registered customers (``role`` defaults to ``customer``; there is no ``modified_after``)."""
        return self._paginate("customers", _filter_pairs(filters), per_page=per_page)

    def customer_get(self, customer_id: int) -> dict:
        return self._get(f"customers/{int(customer_id)}")

    # Webhooks ---------------------------------------------------------------------------

    def webhooks_list(self) -> list[dict]:
        return list(self._paginate("webhooks"))

    def webhook_create(
        self, *, name: str, topic: str, delivery_url: str, secret: str, status: str = "active"
    ) -> dict:
        """Create a webhook; WooCommerce then pings ``delivery_url`` with an unsigned form POST."""
        body = {
            "name": name,
            "topic": topic,
            "delivery_url": delivery_url,
            "secret": secret,
            "status": status,
        }
        return self._request("POST", self._url("webhooks"), json=body).data

    def webhook_update(self, webhook_id: int, data: dict) -> dict:
        """E.g. ``{"status": "active"}`` to re-enable a webhook WooCommerce disabled after failures."""
        return self._request("PUT", self._url(f"webhooks/{int(webhook_id)}"), json=data).data


def _check_per_page(per_page: int) -> None:
    # WooCommerce rejects rather than clamps a per_page above 100.
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}, not {per_page}")


def _filter_pairs(filters: dict[str, Any], *, gmt_sent: bool = False) -> list[tuple[str, Any]]:
    """Keyword filters as query pairs: lists as ``key[]``, aware datetimes as UTC text.

    A datetime filter (``after``, ``before``, ``modified_before``…) adds
    ``dates_are_gmt=true`` so WooCommerce reads it as UTC.
    """
    for reserved in ("page", "per_page"):
        if reserved in filters:
            raise ValueError(f"{reserved} is set by the iterator")
    pairs: list[tuple[str, Any]] = []
    has_date = False
    for key, value in filters.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            value = utc_naive_iso(value)
            has_date = True
        if isinstance(value, (list, tuple, set, frozenset)):
            pairs.append((key if key.endswith("[]") else f"{key}[]", list(value)))
        else:
            pairs.append((key, value))
    if has_date and not gmt_sent and "dates_are_gmt" not in filters:
        pairs.append(("dates_are_gmt", True))
    return pairs
