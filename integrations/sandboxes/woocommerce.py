"""A stand-in for WooCommerce (REST API wc/v3) stores, served over real HTTP.

Several stores share one port, each under a path prefix the way WordPress
subdirectory installs do: the root store answers ``/wp-json/wc/v3/...``, a store
created with prefix ``/butik2`` answers ``/butik2/wp-json/wc/v3/...``.

It follows what WooCommerce 11.0.1 does, not what would be convenient; see
``shared/docs/woocommerce-api.md`` and the fixtures in ``fixtures/woocommerce-11``:
- authentication as ``class-wc-rest-authentication.php`` does it (OAuth 1.0a over
  plain HTTP, Basic or query-string keys over HTTPS only, the same error codes);
- paging, filters and batch limits of the CRUD controllers;
- order totals computed the way ``WC_Abstract_Order::calculate_totals`` does for a
  Swedish shop (net lines, per-line rounding, tax rounded half-down when prices
  include tax), coupons spread like ``WC_Discounts``;
- webhooks queued, collapsed per (webhook, resource), built at delivery time,
  signed over the exact bytes, disabled after the 7th consecutive failure.

Control routes live under ``/_sandbox/`` (server wide) and ``{prefix}/_sandbox/``
(one store); they are never part of the real API.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import math
import re
import secrets
import string
import threading
import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import quote, unquote, unquote_plus, urlencode, urlsplit
from zoneinfo import ZoneInfo

from . import demo
from .fixtures import WOOCOMMERCE_11
from .http import SandboxApp, SandboxRequest, SandboxResponse, json_response

logger = logging.getLogger(__name__)

WC_VERSION = "11.0.1"
WP_VERSION = "7.0.4"
REST_BASE = "/wp-json/wc/v3"

(DEMO_ROOT_PREFIX, _, DEMO_ROOT_CONSUMER_KEY, DEMO_ROOT_CONSUMER_SECRET, _), \
    (DEMO_BUTIK2_PREFIX, _, DEMO_BUTIK2_CONSUMER_KEY, DEMO_BUTIK2_CONSUMER_SECRET, _) = demo.WOO_STORES

WC11_FIXTURES_DIR = WOOCOMMERCE_11

STORE_TIMEZONE = ZoneInfo("Europe/Stockholm")
OAUTH_WINDOW_SECONDS = 15 * 60
BATCH_LIMIT = 100
MAX_WEBHOOK_FAILURES = 5  # woocommerce_max_webhook_delivery_failures: the 7th failure in a row disables
DELIVERY_LOG_LIMIT = 2000

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")  # wc_get_rounding_precision(): line amounts are kept to 6 decimals
ZERO = Decimal("0")

CORE_ORDER_STATUSES = [
    ("pending", "Pending payment"), ("processing", "Processing"), ("on-hold", "On hold"),
    ("completed", "Completed"), ("cancelled", "Cancelled"), ("refunded", "Refunded"),
    ("failed", "Failed"), ("checkout-draft", "Draft"),
]
PAID_STATUSES = ("processing", "completed")
STOCK_REDUCING_STATUSES = ("processing", "completed", "on-hold")
STOCK_RESTORING_STATUSES = ("cancelled", "pending")
EDITABLE_STATUSES = ("pending", "on-hold", "auto-draft", "checkout-draft")
PRODUCT_STATUSES = ("draft", "pending", "private", "publish")
PRODUCT_TYPES = ("simple", "grouped", "external", "variable")

# The Swedish store of the fixtures (GET /taxes, /taxes/classes).
SWEDISH_TAX_RATES = [
    {"id": 1, "rate": "25.0000", "name": "Moms 25%", "shipping": True, "class": "standard"},
    {"id": 2, "rate": "12.0000", "name": "Moms 12%", "shipping": False, "class": "reduced-rate"},
    {"id": 3, "rate": "6.0000", "name": "Moms 6%", "shipping": False, "class": "books"},
    {"id": 4, "rate": "0.0000", "name": "Moms 0%", "shipping": False, "class": "zero-rate"},
]
SWEDISH_TAX_CLASSES = [
    {"slug": "standard", "name": "Standard rate"}, {"slug": "books", "name": "Books"},
    {"slug": "reduced-rate", "name": "Reduced rate"}, {"slug": "zero-rate", "name": "Zero rate"},
]
GENERAL_SETTINGS = {
    "woocommerce_store_address": "Drottninggatan 10", "woocommerce_store_address_2": "",
    "woocommerce_store_city": "Stockholm", "woocommerce_default_country": "SE",
    "woocommerce_store_postcode": "111 51", "woocommerce_allowed_countries": "all",
    "woocommerce_all_except_countries": "", "woocommerce_specific_allowed_countries": "",
    "woocommerce_ship_to_countries": "", "woocommerce_specific_ship_to_countries": "",
    "woocommerce_default_customer_address": "base", "woocommerce_calc_taxes": "yes",
    "woocommerce_enable_coupons": "yes", "woocommerce_calc_discounts_sequentially": "no",
    "woocommerce_currency": "SEK", "woocommerce_currency_pos": "right_space",
    "woocommerce_price_thousand_sep": "", "woocommerce_price_decimal_sep": ",",
    "woocommerce_price_num_decimals": "2",
}
SETTING_LABELS = {
    "woocommerce_store_address": ("Address line 1", "text"), "woocommerce_store_city": ("City", "text"),
    "woocommerce_default_country": ("Country / State", "select"), "woocommerce_currency": ("Currency", "select"),
    "woocommerce_calc_taxes": ("Enable taxes", "checkbox"),
    "woocommerce_price_num_decimals": ("Number of decimals", "number"),
}

WEBHOOK_TOPIC_HOOKS = {
    "coupon.created": ["woocommerce_process_shop_coupon_meta", "woocommerce_new_coupon"],
    "coupon.updated": ["woocommerce_process_shop_coupon_meta", "woocommerce_update_coupon"],
    "coupon.deleted": ["wp_trash_post"],
    "coupon.restored": ["untrashed_post"],
    "customer.created": ["user_register", "woocommerce_created_customer", "woocommerce_new_customer"],
    "customer.updated": ["profile_update", "woocommerce_update_customer"],
    "customer.deleted": ["delete_user"],
    "customer.restored": [],
    "order.created": ["woocommerce_new_order"],
    "order.updated": ["woocommerce_update_order", "woocommerce_order_refunded", "woocommerce_delete_order_refund"],
    "order.deleted": ["wp_trash_post", "woocommerce_trash_order", "woocommerce_delete_order"],
    "order.restored": ["untrashed_post", "woocommerce_untrash_order"],
    "product.created": ["woocommerce_process_product_meta", "woocommerce_new_product",
                        "woocommerce_new_product_variation"],
    "product.updated": ["woocommerce_process_product_meta", "woocommerce_update_product",
                        "woocommerce_update_product_variation"],
    "product.deleted": ["wp_trash_post"],
    "product.restored": ["untrashed_post"],
    "product.published": ["woocommerce_product_published"],
}

PRODUCT_TEMPLATE = {
    "id": 0, "name": "", "slug": "", "permalink": "", "date_created": None, "date_created_gmt": None,
    "date_modified": None, "date_modified_gmt": None, "type": "simple", "status": "publish",
    "featured": False, "catalog_visibility": "visible", "description": "", "short_description": "",
    "sku": "", "price": "", "regular_price": "", "sale_price": "", "date_on_sale_from": None,
    "date_on_sale_from_gmt": None, "date_on_sale_to": None, "date_on_sale_to_gmt": None,
    "on_sale": False, "purchasable": False, "total_sales": 0, "virtual": False, "downloadable": False,
    "downloads": [], "download_limit": -1, "download_expiry": -1, "external_url": "", "button_text": "",
    "tax_status": "taxable", "tax_class": "", "manage_stock": False, "stock_quantity": None,
    "backorders": "no", "backorders_allowed": False, "backordered": False, "low_stock_amount": None,
    "sold_individually": False, "weight": "", "dimensions": {"length": "", "width": "", "height": ""},
    "shipping_required": True, "shipping_taxable": True, "shipping_class": "", "shipping_class_id": 0,
    "reviews_allowed": True, "average_rating": "0.00", "rating_count": 0, "upsell_ids": [],
    "cross_sell_ids": [], "parent_id": 0, "purchase_note": "", "categories": [], "brands": [], "tags": [],
    "images": [], "attributes": [], "default_attributes": [], "variations": [], "grouped_products": [],
    "menu_order": 0, "price_html": "", "related_ids": [], "meta_data": [], "stock_status": "instock",
    "has_options": False, "post_password": "", "global_unique_id": "",
}
VARIATION_TEMPLATE = {
    "id": 0, "type": "variation", "date_created": None, "date_created_gmt": None, "date_modified": None,
    "date_modified_gmt": None, "description": "", "permalink": "", "sku": "", "global_unique_id": "",
    "price": "", "regular_price": "", "sale_price": "", "date_on_sale_from": None,
    "date_on_sale_from_gmt": None, "date_on_sale_to": None, "date_on_sale_to_gmt": None, "on_sale": False,
    "status": "publish", "purchasable": False, "virtual": False, "downloadable": False, "downloads": [],
    "download_limit": -1, "download_expiry": -1, "tax_status": "taxable", "tax_class": "",
    "manage_stock": False, "stock_quantity": None, "stock_status": "instock", "backorders": "no",
    "backorders_allowed": False, "backordered": False, "low_stock_amount": None, "weight": "",
    "dimensions": {"length": "", "width": "", "height": ""}, "shipping_class": "", "shipping_class_id": 0,
    "image": None, "gallery_image_ids": [], "attributes": [], "menu_order": 0, "meta_data": [], "name": "",
    "parent_id": 0,
}
ADDRESS_KEYS = ["first_name", "last_name", "company", "address_1", "address_2", "city", "state",
                "postcode", "country"]
PRODUCT_WRITABLE = {
    "name", "slug", "type", "status", "featured", "catalog_visibility", "description", "short_description",
    "sku", "regular_price", "sale_price", "date_on_sale_from", "date_on_sale_from_gmt", "date_on_sale_to",
    "date_on_sale_to_gmt", "virtual", "downloadable", "downloads", "download_limit", "download_expiry",
    "external_url", "button_text", "tax_status", "tax_class", "manage_stock", "stock_quantity", "backorders",
    "low_stock_amount", "sold_individually", "weight", "dimensions", "shipping_class", "reviews_allowed",
    "upsell_ids", "cross_sell_ids", "parent_id", "purchase_note", "categories", "tags", "brands", "images",
    "attributes", "default_attributes", "grouped_products", "menu_order", "meta_data", "stock_status",
    "image", "global_unique_id", "post_password",
}


class WooError(Exception):
    """An error WooCommerce would answer as ``{"code","message","data":{"status"}}``."""

    def __init__(self, code: str, message: str, status: int = 400, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> dict:
        return {"code": self.code, "message": self.message, "data": {"status": self.status, **self.extra}}


# -- encoding and numbers ----------------------------------------------------------------------

def wp_json(data) -> bytes:
    """``wp_json_encode`` without flags: compact, ``\\/`` for ``/``, ``\\u00e4``-style escapes for non-ASCII."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode("ascii")


def wp_response(data, status: int = 200, headers: list[tuple[str, str]] | None = None) -> SandboxResponse:
    return SandboxResponse(status=status, body=wp_json(data), headers=list(headers or []))


def _dec(value) -> Decimal:
    if value is None or value == "":
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise WooError("rest_invalid_param", f"Invalid amount: {value}", 400)


def _money(value: Decimal) -> str:
    """``wc_format_decimal($x, 2)``: PHP round(), half away from zero."""
    result = value.quantize(CENT, rounding=ROUND_HALF_UP)
    return f"{(result + 0):.2f}" if result != 0 else "0.00"


def _micro(value: Decimal) -> Decimal:
    return value.quantize(MICRO, rounding=ROUND_HALF_UP)


def _php_str(value: Decimal) -> str:
    """How PHP prints a float amount it stored without formatting (``"50"``, ``"12.5"``)."""
    value = value.quantize(MICRO, rounding=ROUND_HALF_UP).normalize()
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


def _php_number(value: Decimal):
    """A JSON number as PHP's ``json_encode`` writes a numeric value: int when whole."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _line_price(total: str, quantity: int):
    """``line_items[].price`` is ``get_total() / get_quantity()`` in PHP: int when it divides evenly."""
    if not quantity:
        return 0
    number = _dec(total)
    if number == number.to_integral_value() and int(number) % quantity == 0:
        return int(number) // quantity
    return float(_php_str(number)) / quantity


def _truthy(value) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _rawurlencode(value: str) -> str:
    return quote(value, safe="-_.~")


_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}(?::?\d{2})?)?$", re.I)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S")


def _local_and_gmt(value: str | None, *, is_gmt: bool) -> tuple[str | None, str | None]:
    """A site-local or GMT date string from a client → (local, gmt) as WooCommerce stores both."""
    if not value:
        return None, None
    match = _RFC3339.match(value)
    if not match:
        raise WooError("rest_invalid_param", "Invalid date.", 400)
    naive = datetime(*(int(match.group(i)) for i in range(1, 7)))
    if match.group(8):
        aware = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        local = aware.astimezone(STORE_TIMEZONE)
    elif is_gmt:
        local = naive.replace(tzinfo=timezone.utc).astimezone(STORE_TIMEZONE)
    else:
        local = naive.replace(tzinfo=STORE_TIMEZONE)
    return _iso(local), _iso(local.astimezone(timezone.utc))


def _query_date(value: str) -> str:
    """What ``WP_Date_Query::build_mysql_datetime`` compares with: the wall time, converted to the
    site's zone only when the value names an offset (so ``...Z`` is moved to Stockholm time even
    for ``dates_are_gmt``: one reason clients are told to keep an overlap window)."""
    match = _RFC3339.match(value)
    if not match:
        raise WooError("rest_invalid_param", "Invalid parameter(s): date", 400)
    if match.group(8):
        aware = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        return _iso(aware.astimezone(STORE_TIMEZONE))
    return _iso(datetime(*(int(match.group(i)) for i in range(1, 7))))


def _slugify(text: str) -> str:
    text = text.lower()
    for src, dst in (("å", "a"), ("ä", "a"), ("ö", "o"), ("é", "e"), ("ü", "u")):
        text = text.replace(src, dst)
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "product"


def _invalid_param(name: str, message: str, code: str = "rest_out_of_bounds") -> WooError:
    return WooError("rest_invalid_param", f"Invalid parameter(s): {name}", 400,
                    params={name: message}, details={name: {"code": code, "message": message, "data": None}})


def _php_query(raw_query: str) -> dict:
    """``$_GET`` as PHP builds it: ``a[]=1&a[]=2`` becomes an array, a repeated plain key keeps the last."""
    result: dict = {}
    if not raw_query:
        return result
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        key = unquote_plus(key)
        value = unquote_plus(value)
        match = re.match(r"^([^\[]+)((?:\[[^\]]*\])+)$", key)
        if not match:
            result[key] = value
            continue
        base, brackets = match.group(1), re.findall(r"\[([^\]]*)\]", match.group(2))
        node = result.get(base)
        if not isinstance(node, dict):
            node = result[base] = {}
        for i, sub in enumerate(brackets):
            last = i == len(brackets) - 1
            if sub == "":
                sub = str(len([k for k in node if k.isdigit()]))
            if last:
                node[sub] = value
            else:
                child = node.get(sub)
                if not isinstance(child, dict):
                    child = node[sub] = {}
                node = child
    return result


# -- OAuth 1.0a as WC_REST_Authentication::check_oauth_signature does it ------------------------

def oauth_base_string(method: str, url: str, params: dict) -> str:
    """The string WooCommerce signs: params sorted by key (strcmp) before encoding; nested
    (PHP array) params become ``key%5Bsub%5D=value``; every pair is encoded twice."""
    pairs: list[str] = []

    def join(items, prefix: str = "") -> None:
        for key, value in items:
            encoded_key = _rawurlencode(str(key)) if not prefix else f"{prefix}%5B{key}%5D"
            if isinstance(value, dict):
                join(((k, v) for k, v in value.items()), encoded_key)
            else:
                pairs.append(_rawurlencode(f"{encoded_key}={_rawurlencode(str(value))}"))

    join(sorted(((k, v) for k, v in params.items() if k != "oauth_signature"), key=lambda kv: kv[0]))
    return f"{method.upper()}&{_rawurlencode(url)}&{'%26'.join(pairs)}"


def oauth_signature(method: str, url: str, params: dict, consumer_secret: str, algorithm: str) -> str:
    digest = hashlib.sha256 if algorithm.upper() == "HMAC-SHA256" else hashlib.sha1
    base = oauth_base_string(method, url, params)
    return base64.b64encode(hmac.new(f"{consumer_secret}&".encode(), base.encode(), digest).digest()).decode()


def _parse_oauth_header(header: str) -> dict:
    if not header.startswith("OAuth "):
        return {}
    params = {}
    for match in re.finditer(r'(oauth_[a-z_-]*)=(:?"([^"]*)"|([^,]*))', header):
        params[match.group(1)] = unquote_plus(match.group(3) if match.group(3) else (match.group(4) or ""))
    return params


# -- the store ----------------------------------------------------------------------------------

class Store:
    """One WooCommerce install: its keys, settings, catalogue, orders and webhooks."""

    def __init__(self, prefix: str = "", *, prices_include_tax: bool = True, version: str = WC_VERSION,
                 home_url: str | None = None, currency: str = "SEK", order_statuses: dict | None = None,
                 tax_rates: list | None = None):
        self.prefix = prefix
        self.keys: dict[str, dict] = {}
        self.settings = {"prices_include_tax": prices_include_tax, "version": version,
                         "home_url": home_url, "currency": currency, "currency_symbol": "kr"}
        self.tax_rates = [dict(r) for r in (tax_rates or SWEDISH_TAX_RATES)]
        self.tax_classes = [dict(c) for c in SWEDISH_TAX_CLASSES]
        self.extra_statuses: dict[str, str] = dict(order_statuses or {})
        self.products: dict[int, dict] = {}
        self.sku_index: dict[str, int] = {}
        self.orders: dict[int, dict] = {}
        self.notes: dict[int, list[dict]] = {}
        self.refunds: dict[int, dict] = {}
        self.customers: dict[int, dict] = {}
        self.webhooks: dict[int, dict] = {}
        self.coupons: dict[str, dict] = {}
        self.counters = {"post": 0, "user": 1, "webhook": 0, "item": 0, "meta": 0, "comment": 0}
        self.clock_offset = 0.0
        self.seen_home: str | None = None
        self.deliveries: list[dict] = []
        self.pending: OrderedDict[tuple[int, int], dict] = OrderedDict()
        self.rev = 0
        self._sorted_cache: dict = {}

    # -- identity and time --
    def next_id(self, counter: str) -> int:
        self.counters[counter] += 1
        return self.counters[counter]

    def bump(self, counter: str, value: int) -> None:
        if value > self.counters[counter]:
            self.counters[counter] = value

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self.clock_offset)

    def stamp(self) -> tuple[str, str]:
        now = self.now()
        return _iso(now.astimezone(STORE_TIMEZONE)), _iso(now)

    def home(self) -> str:
        return (self.settings.get("home_url") or self.seen_home or f"http://127.0.0.1{self.prefix}").rstrip("/")

    @property
    def prices_include_tax(self) -> bool:
        return bool(self.settings["prices_include_tax"])

    def order_statuses(self) -> list[tuple[str, str]]:
        return CORE_ORDER_STATUSES + [(k, v) for k, v in self.extra_statuses.items()
                                      if k not in dict(CORE_ORDER_STATUSES)]

    # -- tax --
    def rates(self, tax_class: str, country: str, *, shipping: bool = False) -> list[dict]:
        tax_class = tax_class or "standard"
        return [r for r in self.tax_rates
                if r.get("class", "standard") == tax_class and r.get("country", "SE") in ("", country)
                and (not shipping or r.get("shipping"))]

    def rate(self, rate_id: int) -> dict | None:
        return next((r for r in self.tax_rates if r["id"] == rate_id), None)

    def tax_round(self, value: Decimal) -> Decimal:
        """``wc_round_tax_total``: half-down when prices include tax (WC_TAX_ROUNDING_MODE), else half-up."""
        mode = ROUND_HALF_DOWN if self.prices_include_tax else ROUND_HALF_UP
        return value.quantize(CENT, rounding=mode)

    # -- indexes --
    def touch(self) -> None:
        self.rev += 1

    def index_sku(self, product: dict) -> None:
        sku = product.get("sku") or ""
        if sku and product.get("status") != "trash":
            self.sku_index[sku] = product["id"]

    def unindex_sku(self, product: dict) -> None:
        sku = product.get("sku") or ""
        if sku and self.sku_index.get(sku) == product["id"]:
            del self.sku_index[sku]

    def sorted_ids(self, kind: str, orderby: str, desc: bool) -> list[int]:
        """Collections sorted once per change, so that paging a large catalogue stays cheap."""
        key = (kind, orderby, desc)
        cached = self._sorted_cache.get(key)
        if cached and cached[0] == self.rev:
            return cached[1]
        if kind == "product":
            source = [p for p in self.products.values() if p.get("type") != "variation"]
        elif kind == "order":
            source = list(self.orders.values())
        else:
            source = list(self.customers.values())
        field = {"date": "date_created_gmt", "modified": "date_modified_gmt", "title": "name",
                 "slug": "slug", "name": "name", "registered_date": "date_created_gmt"}.get(orderby)
        if orderby == "price":
            keyf = lambda o: (_dec(o.get("price")), o["id"])  # noqa: E731
        elif field:
            keyf = lambda o: (o.get(field) or "", o["id"])  # noqa: E731
        else:
            keyf = lambda o: o["id"]  # noqa: E731
        ids = [o["id"] for o in sorted(source, key=keyf, reverse=desc)]
        self._sorted_cache[key] = (self.rev, ids)
        return ids

    # -- persistence --
    def dump(self) -> dict:
        return {
            "prefix": self.prefix, "keys": self.keys, "settings": self.settings, "tax_rates": self.tax_rates,
            "tax_classes": self.tax_classes, "extra_statuses": self.extra_statuses,
            "products": list(self.products.values()), "orders": list(self.orders.values()),
            "notes": {str(k): v for k, v in self.notes.items()}, "refunds": list(self.refunds.values()),
            "customers": list(self.customers.values()), "webhooks": list(self.webhooks.values()),
            "coupons": list(self.coupons.values()), "counters": self.counters, "clock_offset": self.clock_offset,
            "seen_home": self.seen_home, "deliveries": self.deliveries[-200:],
            "pending": [{"webhook_id": w, "resource_id": r, **v} for (w, r), v in self.pending.items()],
        }

    @classmethod
    def load(cls, data: dict) -> "Store":
        store = cls(data.get("prefix", ""))
        store.keys = data.get("keys", {})
        for record in store.keys.values():
            record["nonces"] = {str(k): v for k, v in record.get("nonces", {}).items()}
        store.settings.update(data.get("settings", {}))
        store.tax_rates = data.get("tax_rates", store.tax_rates)
        store.tax_classes = data.get("tax_classes", store.tax_classes)
        store.extra_statuses = data.get("extra_statuses", {})
        store.products = {p["id"]: p for p in data.get("products", [])}
        for product in store.products.values():
            store.index_sku(product)
        store.orders = {o["id"]: o for o in data.get("orders", [])}
        store.notes = {int(k): v for k, v in data.get("notes", {}).items()}
        store.refunds = {r["id"]: r for r in data.get("refunds", [])}
        store.customers = {c["id"]: c for c in data.get("customers", [])}
        store.webhooks = {w["id"]: w for w in data.get("webhooks", [])}
        store.coupons = {c["code"]: c for c in data.get("coupons", [])}
        store.counters.update(data.get("counters", {}))
        store.clock_offset = float(data.get("clock_offset", 0))
        store.seen_home = data.get("seen_home")
        store.deliveries = data.get("deliveries", [])
        for entry in data.get("pending", []):
            entry = dict(entry)
            store.pending[(int(entry.pop("webhook_id")), int(entry.pop("resource_id")))] = entry
        return store


def _public(rep: dict) -> dict:
    return {k: v for k, v in rep.items() if not k.startswith("__")}


ORDER_ITEM_LISTS = ("line_items", "tax_lines", "shipping_lines", "fee_lines", "coupon_lines")


def _public_order(order: dict) -> dict:
    """An order without the sandbox's own bookkeeping (unrounded amounts, stock flags)."""
    data = _public(order)
    for key in ORDER_ITEM_LISTS:
        if key in data:
            data[key] = [_public(item) for item in data[key]]
    return data


def _list_param(request: SandboxRequest, name: str) -> list[str]:
    """A list parameter as WordPress reads it: ``a[]=x``, ``a[0]=x`` or ``a=x,y``."""
    value = _php_query(request.raw_query).get(name)
    if value is None:
        return []
    values = list(value.values()) if isinstance(value, dict) else [value]
    out: list[str] = []
    for item in values:
        if isinstance(item, str):
            out.extend(v.strip() for v in item.split(",") if v.strip())
    return out


def _undecimal(value):
    """State files are read with ``parse_float=Decimal``; floats here are JSON numbers, not money."""
    if isinstance(value, Decimal):
        return _php_number(value)
    if isinstance(value, dict):
        return {k: _undecimal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_undecimal(v) for v in value]
    return value


class _Auth:
    def __init__(self, key: dict | None):
        self.key = key

    @property
    def anonymous(self) -> bool:
        return self.key is None


class WooCommerceSandbox(SandboxApp):
    """WooCommerce stores (one per path prefix) behind one HTTP server.

    ``delivery_delay`` is how long a queued webhook waits before the background
    thread sends it (Action Scheduler's delay); ``delivery_timeout`` bounds each
    delivery request.
    """

    name = "woocommerce"

    def __init__(self, *, delivery_delay: float = 0.2, delivery_timeout: float = 10.0,
                 fixtures_dir: str | Path | None = None):
        super().__init__()
        self.delivery_delay = float(delivery_delay)
        self.delivery_timeout = float(delivery_timeout)
        self.fixtures_dir = Path(fixtures_dir) if fixtures_dir else WC11_FIXTURES_DIR
        self.stores: dict[str, Store] = {}
        self._wakeup = threading.Condition(self.lock)
        self._worker: threading.Thread | None = None
        self._register_routes()

    # -- routing ---------------------------------------------------------------------------------
    def _register_routes(self) -> None:
        p = r"(?P<prefix>(?:/[A-Za-z0-9._~-]+)*?)"
        api = p + re.escape(REST_BASE)
        control = p + "/_sandbox"
        n = r"(?P<id>\d+)"
        routes = [
            ("GET", "/products", self._products_list, "list"),
            ("POST", "/products", self._product_create, "create"),
            ("POST", "/products/batch", self._products_batch, "batch"),
            ("GET", f"/products/{n}", self._product_get, "view"),
            ("PUT", f"/products/{n}", self._product_update, "edit"),
            ("DELETE", f"/products/{n}", self._product_delete, "delete"),
            ("GET", r"/products/(?P<pid>\d+)/variations", self._variations_list, "list"),
            ("POST", r"/products/(?P<pid>\d+)/variations", self._variation_create, "create"),
            ("POST", r"/products/(?P<pid>\d+)/variations/batch", self._variations_batch, "batch"),
            ("GET", rf"/products/(?P<pid>\d+)/variations/{n}", self._variation_get, "view"),
            ("PUT", rf"/products/(?P<pid>\d+)/variations/{n}", self._variation_update, "edit"),
            ("DELETE", rf"/products/(?P<pid>\d+)/variations/{n}", self._variation_delete, "delete"),
            ("GET", "/orders", self._orders_list, "list"),
            ("POST", "/orders", self._order_create, "create"),
            ("POST", "/orders/batch", self._orders_batch, "batch"),
            ("OPTIONS", "/orders", self._orders_schema, "options"),
            ("GET", f"/orders/{n}", self._order_get, "view"),
            ("PUT", f"/orders/{n}", self._order_update, "edit"),
            ("DELETE", f"/orders/{n}", self._order_delete, "delete"),
            ("GET", rf"/orders/(?P<oid>\d+)/notes", self._notes_list, "list"),
            ("POST", rf"/orders/(?P<oid>\d+)/notes", self._note_create, "create"),
            ("GET", rf"/orders/(?P<oid>\d+)/notes/{n}", self._note_get, "view"),
            ("DELETE", rf"/orders/(?P<oid>\d+)/notes/{n}", self._note_delete, "delete"),
            ("GET", rf"/orders/(?P<oid>\d+)/refunds", self._refunds_list, "list"),
            ("POST", rf"/orders/(?P<oid>\d+)/refunds", self._refund_create, "create"),
            ("GET", rf"/orders/(?P<oid>\d+)/refunds/{n}", self._refund_get, "view"),
            ("DELETE", rf"/orders/(?P<oid>\d+)/refunds/{n}", self._refund_delete, "delete"),
            ("GET", "/refunds", self._refunds_all, "list"),
            ("GET", "/customers", self._customers_list, "list"),
            ("POST", "/customers", self._customer_create, "create"),
            ("POST", "/customers/batch", self._customers_batch, "batch"),
            ("GET", f"/customers/{n}", self._customer_get, "view"),
            ("PUT", f"/customers/{n}", self._customer_update, "edit"),
            ("DELETE", f"/customers/{n}", self._customer_delete, "delete"),
            ("GET", "/webhooks", self._webhooks_list, "list"),
            ("POST", "/webhooks", self._webhook_create, "create"),
            ("POST", "/webhooks/batch", self._webhooks_batch, "batch"),
            ("GET", f"/webhooks/{n}", self._webhook_get, "view"),
            ("PUT", f"/webhooks/{n}", self._webhook_update, "edit"),
            ("DELETE", f"/webhooks/{n}", self._webhook_delete, "delete"),
            ("GET", "/coupons", self._coupons_list, "list"),
            ("GET", "/system_status", self._system_status, "list"),
            ("GET", "/settings/general", self._settings_general, "list"),
            ("GET", "/taxes", self._taxes_list, "list"),
            ("GET", "/taxes/classes", self._tax_classes_list, "list"),
            ("GET", "/reports/orders/totals", self._report_order_totals, "list"),
        ]
        for method, suffix, handler, kind in routes:
            self.route(method, api + suffix + "/?", self._api(handler, kind))
        self.route("POST", r"/_sandbox/reset", self._ctl_reset)
        self.route("POST", r"/_sandbox/stores", self._ctl_store_create)
        self.route("GET", r"/_sandbox/stores", self._ctl_stores_list)
        self.route("POST", r"/_sandbox/seed", self._ctl_seed)
        self.route("POST", r"/_sandbox/webhooks/config", self._ctl_webhook_config)
        for method, suffix, handler in [
            ("POST", "/products", self._ctl_import_products),
            ("POST", "/orders", self._ctl_import_orders),
            ("POST", "/customers", self._ctl_import_customers),
            ("POST", "/coupons", self._ctl_import_coupons),
            ("POST", "/keys", self._ctl_add_key),
            ("POST", "/order-statuses", self._ctl_order_statuses),
            ("POST", "/webhooks/flush", self._ctl_flush),
            ("GET", "/deliveries", self._ctl_deliveries),
            ("POST", "/clock", self._ctl_clock),
            ("GET", "/clock", self._ctl_clock),
            ("POST", "/settings", self._ctl_settings),
        ]:
            self.route(method, control + suffix, self._control(handler))

    def not_found(self, request: SandboxRequest, *, method_mismatch: bool) -> SandboxResponse:
        if REST_BASE in request.path or request.path.rstrip("/").endswith("/wp-json"):
            return wp_response({"code": "rest_no_route",
                                "message": "No route was found matching the URL and request method.",
                                "data": {"status": 404}}, 404)
        return json_response({"error": "not found", "path": request.path}, 404)

    def _store_for(self, request: SandboxRequest) -> Store:
        store = self.stores.get(request.params.get("prefix", ""))
        if store is None:
            raise WooError("rest_no_route", "No route was found matching the URL and request method.", 404)
        return store

    def _api(self, handler, kind: str):
        def wrapped(request: SandboxRequest) -> SandboxResponse:
            after: list = []
            try:
                with self.lock:
                    store = self._store_for(request)
                    if not store.settings.get("home_url"):
                        store.seen_home = f"{request.scheme}://{request.host}{store.prefix}"
                    auth = self._authenticate(store, request)
                    if kind != "options" and auth.anonymous:
                        raise self._cannot(kind, request)
                    response = handler(store, request, after)
            except WooError as error:
                return wp_response(error.body(), error.status)
            for action in after:
                action()
            return response
        return wrapped

    @staticmethod
    def _cannot(kind: str, request: SandboxRequest) -> WooError:
        """The controllers' permission checks for a request with no authenticated user."""
        codes = {
            "list": ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
            "view": ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."),
            "create": ("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources."),
            "edit": ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."),
            "delete": ("woocommerce_rest_cannot_delete", "Sorry, you are not allowed to delete this resource."),
            "batch": ("woocommerce_rest_cannot_batch", "Sorry, you are not allowed to batch manipulate this resource."),
        }
        code, message = codes[kind]
        return WooError(code, message, 401)

    # -- authentication ------------------------------------------------------------------------------
    def _authenticate(self, store: Store, request: SandboxRequest) -> _Auth:
        error: WooError | None = None
        if request.scheme == "https":
            key, error = self._basic_auth(store, request)
            if key is not None:
                self._check_key_permissions(key, request.method)
                return _Auth(key)
        key, oauth_error = self._oauth(store, request)
        if oauth_error is not None:
            error = oauth_error
        if error is not None:
            raise error
        if key is not None:
            self._check_key_permissions(key, request.method)
        return _Auth(key)

    @staticmethod
    def _basic_auth(store: Store, request: SandboxRequest) -> tuple[dict | None, WooError | None]:
        consumer_key = consumer_secret = ""
        if request.arg("consumer_key") and request.arg("consumer_secret"):
            consumer_key, consumer_secret = request.arg("consumer_key"), request.arg("consumer_secret")
        header = request.headers.get("Authorization") or ""
        if not consumer_key and header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            consumer_key, _, consumer_secret = decoded.partition(":")
        if not consumer_key or not consumer_secret:
            return None, None
        record = store.keys.get(consumer_key)
        if record is None:
            # An unknown key sets no error: the request goes on as anonymous.
            return None, None
        if not hmac.compare_digest(record["consumer_secret"], consumer_secret):
            return None, WooError("woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401)
        return record, None

    def _oauth(self, store: Store, request: SandboxRequest) -> tuple[dict | None, WooError | None]:
        params = _php_query(request.raw_query)
        content_type = (request.headers.get("Content-Type") or "").lower()
        if request.body and content_type.startswith("application/x-www-form-urlencoded"):
            params.update(_php_query(request.body.decode("utf-8", "replace")))
        header = (request.headers.get("Authorization") or "").strip()
        if header:
            params.update(_parse_oauth_header(header))
        names = ["oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method"]
        missing = [n for n in names if not params.get(n)]
        if len(missing) == len(names):
            return None, None
        if missing:
            word = "parameter" if len(missing) == 1 else "parameters"
            return None, WooError("woocommerce_rest_authentication_missing_parameter",
                                  f"Missing OAuth {word} {', '.join(missing)}", 401)
        record = store.keys.get(str(params["oauth_consumer_key"]))
        if record is None:
            return None, WooError("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        method = params["oauth_signature_method"]
        home = urlsplit(store.settings["home_url"]).netloc if store.settings.get("home_url") else request.host
        url = f"{request.scheme}://{home}{request.path}"
        provided = unquote(str(params["oauth_signature"]).replace(" ", "+"))
        if method not in ("HMAC-SHA1", "HMAC-SHA256"):
            return None, WooError("woocommerce_rest_authentication_error",
                                  "Invalid signature - signature method is invalid.", 401)
        expected = oauth_signature(request.method, url, params, record["consumer_secret"], method)
        if not hmac.compare_digest(expected, provided):
            return None, WooError("woocommerce_rest_authentication_error",
                                  "Invalid signature - provided signature does not match.", 401)
        # Real time, not the store clock: clients sign with their own clock.
        now = int(time.time())
        try:
            timestamp = int(str(params["oauth_timestamp"]))
        except ValueError:
            timestamp = 0
        if timestamp < now - OAUTH_WINDOW_SECONDS or timestamp > now + OAUTH_WINDOW_SECONDS:
            return None, WooError("woocommerce_rest_authentication_error", "Invalid timestamp.", 401)
        nonces: dict = record.setdefault("nonces", {})
        nonce = str(params["oauth_nonce"])
        if nonce in nonces.values():
            return None, WooError("woocommerce_rest_authentication_error",
                                  "Invalid nonce - nonce has already been used.", 401)
        # Keyed by timestamp, as WooCommerce keeps them.
        nonces[str(timestamp)] = nonce
        for stamp in [s for s in nonces if int(s) < now - OAUTH_WINDOW_SECONDS]:
            del nonces[stamp]
        return record, None

    @staticmethod
    def _check_key_permissions(key: dict, method: str) -> None:
        permissions = key.get("permissions", "read_write")
        if method in ("GET", "HEAD") and permissions not in ("read", "read_write"):
            raise WooError("woocommerce_rest_authentication_error",
                           "The API key provided does not have read permissions.", 401)
        if method in ("POST", "PUT", "PATCH", "DELETE") and permissions not in ("write", "read_write"):
            raise WooError("woocommerce_rest_authentication_error",
                           "The API key provided does not have write permissions.", 401)

    # -- collections -------------------------------------------------------------------------------
    @staticmethod
    def _int_param(request: SandboxRequest, name: str, default: int, minimum: int, maximum: int | None) -> int:
        raw = request.arg(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _invalid_param(name, f"{name} is not of type integer.", "rest_invalid_type")
        if maximum is not None and not minimum <= value <= maximum:
            raise _invalid_param(name, f"{name} must be between {minimum} (inclusive) and {maximum} (inclusive)")
        if value < minimum:
            raise _invalid_param(name, f"{name} must be greater than or equal to {minimum}")
        return value

    def _paging(self, request: SandboxRequest) -> tuple[int, int, int | None]:
        per_page = self._int_param(request, "per_page", 10, 1, 100)
        page = self._int_param(request, "page", 1, 1, None)
        offset = self._int_param(request, "offset", 0, 0, None) if request.arg("offset") else None
        return per_page, page, offset

    @staticmethod
    def _order_dir(request: SandboxRequest, default: str = "desc") -> bool:
        order = (request.arg("order") or default).lower()
        if order not in ("asc", "desc"):
            raise _invalid_param("order", "order is not one of asc and desc.", "rest_not_in_enum")
        return order == "desc"

    def _paged_response(self, store: Store, request: SandboxRequest, ids: list[int], render,
                        collection: str, paging: tuple[int, int, int | None]) -> SandboxResponse:
        per_page, page, offset = paging
        total = len(ids)
        start = offset if offset is not None else (page - 1) * per_page
        chunk = ids[start:start + per_page]
        max_pages = math.ceil(total / per_page) if per_page else 0
        headers = [("X-WP-Total", str(total)), ("X-WP-TotalPages", str(max_pages))]
        base = f"{store.home()}{REST_BASE}/{collection}"
        query = [(k, v) for k, values in request.query.items() for v in values if k != "page"]
        links = []
        if page > 1:
            links.append(f'<{base}?{urlencode(query + [("page", min(page - 1, max(max_pages, 1)))])}>; rel="prev"')
        if max_pages > page:
            links.append(f'<{base}?{urlencode(query + [("page", page + 1)])}>; rel="next"')
        if links:
            headers.append(("Link", ", ".join(links)))
        return wp_response([render(i) for i in chunk], 200, headers)

    def _id_list(self, request: SandboxRequest, name: str) -> list[int]:
        out = []
        for value in _list_param(request, name):
            try:
                out.append(int(value))
            except ValueError:
                raise _invalid_param(name, f"{name}[0] is not of type integer.", "rest_invalid_type")
        return out

    def _date_filters(self, request: SandboxRequest, items: list[dict]) -> list[dict]:
        gmt = _truthy(request.arg("dates_are_gmt"))
        checks = []
        for param, field, greater in (("after", "date_created", True), ("before", "date_created", False),
                                      ("modified_after", "date_modified", True),
                                      ("modified_before", "date_modified", False)):
            value = request.arg(param)
            if value:
                try:
                    bound = _query_date(value)
                except WooError:
                    raise _invalid_param(param, "Invalid date.", "rest_invalid_date")
                checks.append((field + ("_gmt" if gmt else ""), bound, greater))
        if not checks:
            return items
        out = []
        for item in items:
            keep = True
            for field, bound, greater in checks:
                value = item.get(field) or ""
                if (greater and not value > bound) or (not greater and not value < bound):
                    keep = False
                    break
            if keep:
                out.append(item)
        return out

    def _select(self, store: Store, request: SandboxRequest, kind: str, source: dict, orderbys: tuple,
                prefilter=None, default_order: str = "desc", default_orderby: str = "date") -> list[int]:
        orderby = request.arg("orderby") or default_orderby
        if orderby not in orderbys:
            raise _invalid_param("orderby", f"orderby is not one of {', '.join(orderbys)}.", "rest_not_in_enum")
        desc = self._order_dir(request, default_order)
        include = self._id_list(request, "include")
        exclude = set(self._id_list(request, "exclude"))
        if orderby == "include" and include:
            ids = [i for i in include if i in source]
        elif prefilter is not None:
            ids = [i for i in store.sorted_ids(kind, orderby, desc) if i in prefilter] \
                if len(prefilter) * 8 > len(source) else \
                [o["id"] for o in self._sort([source[i] for i in prefilter if i in source], orderby, desc)]
        else:
            ids = store.sorted_ids(kind, orderby, desc)
        if include and orderby != "include":
            wanted = set(include)
            ids = [i for i in ids if i in wanted]
        if exclude:
            ids = [i for i in ids if i not in exclude]
        return ids

    @staticmethod
    def _sort(items: list[dict], orderby: str, desc: bool) -> list[dict]:
        field = {"date": "date_created_gmt", "modified": "date_modified_gmt", "title": "name",
                 "slug": "slug", "name": "name", "registered_date": "date_created_gmt"}.get(orderby)
        if orderby == "menu_order":
            return sorted(items, key=lambda o: (o.get("menu_order") or 0, o["id"]), reverse=desc)
        if orderby == "price":
            return sorted(items, key=lambda o: (_dec(o.get("price")), o["id"]), reverse=desc)
        if field:
            return sorted(items, key=lambda o: (o.get(field) or "", o["id"]), reverse=desc)
        return sorted(items, key=lambda o: o["id"], reverse=desc)

    def _links(self, store: Store, path: str, collection: str, up: str | None = None,
               allow: tuple = ("GET", "POST", "PUT", "PATCH", "DELETE"), extra: dict | None = None) -> dict:
        base = store.home() + REST_BASE
        links = {"self": [{"href": base + path, "targetHints": {"allow": list(allow)}}],
                 "collection": [{"href": base + collection}]}
        if extra:
            links.update(extra)
        if up:
            links["up"] = [{"href": base + up}]
        return links

    def _batch(self, store: Store, request: SandboxRequest, create, update, delete) -> SandboxResponse:
        body = self._body(request)
        creates = body.get("create") or []
        updates = body.get("update") or []
        deletes = body.get("delete") or []
        if len(creates) + len(updates) + len(deletes) > BATCH_LIMIT:
            raise WooError("woocommerce_rest_request_entity_too_large",
                           f"Unable to accept more than {BATCH_LIMIT} items for this request.", 413)
        result: dict = {}
        if creates:
            result["create"] = []
            for item in creates:
                try:
                    result["create"].append(create(item))
                except WooError as error:
                    result["create"].append({"id": 0, "error": {"code": error.code, "message": error.message,
                                                                "data": {"status": error.status, **error.extra}}})
        if updates:
            result["update"] = []
            for item in updates:
                item_id = int(item.get("id") or 0) if isinstance(item, dict) else 0
                try:
                    result["update"].append(update(item_id, item))
                except WooError as error:
                    result["update"].append({"id": item_id, "error": {
                        "code": error.code, "message": error.message, "data": {"status": error.status, **error.extra}}})
        if deletes:
            result["delete"] = []
            for item in deletes:
                item_id = int(item.get("id") if isinstance(item, dict) else item or 0)
                if not item_id:
                    continue
                try:
                    result["delete"].append(delete(item_id))
                except WooError as error:
                    result["delete"].append({"id": item_id, "error": {
                        "code": error.code, "message": error.message, "data": {"status": error.status, **error.extra}}})
        return wp_response(result)

    @staticmethod
    def _body(request: SandboxRequest) -> dict:
        if not request.body:
            return {}
        content_type = (request.headers.get("Content-Type") or "").lower()
        if content_type.startswith("application/x-www-form-urlencoded"):
            return {k: v for k, v in _php_query(request.body.decode("utf-8")).items() if not k.startswith("oauth_")}
        try:
            data = json.loads(request.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise WooError("rest_invalid_json", "Invalid JSON body passed.", 400)
        if not isinstance(data, dict):
            raise WooError("rest_invalid_json", "Invalid JSON body passed.", 400)
        return data

    # -- products ----------------------------------------------------------------------------------
    def _product_out(self, store: Store, product: dict) -> dict:
        data = _public(product)
        if product.get("type") == "variation":
            parent = product.get("parent_id") or 0
            data["_links"] = self._links(store, f"/products/{parent}/variations/{product['id']}",
                                         f"/products/{parent}/variations", up=f"/products/{parent}")
        else:
            data["_links"] = self._links(store, f"/products/{product['id']}", "/products")
        return data

    def _variation_as_product(self, store: Store, variation: dict) -> dict:
        """``GET /products/{variation_id}``: the products controller's view of a variation."""
        parent = store.products.get(variation.get("parent_id") or 0)
        data = dict(PRODUCT_TEMPLATE)
        for key, value in _public(variation).items():
            if key in data or key == "image":
                data[key] = value
        data.pop("image", None)
        data["type"] = "variation"
        if parent:
            options = ", ".join(str(a.get("option", "")) for a in variation.get("attributes", []))
            data["name"] = f"{parent.get('name', '')} - {options}" if options else parent.get("name", "")
            data["slug"] = parent.get("slug", "")
        data["variations"] = []
        data["_links"] = self._links(store, f"/products/{variation['id']}", "/products",
                                     up=f"/products/{variation.get('parent_id') or 0}")
        return data

    def _product_by_id(self, store: Store, product_id: int, *, code: str = "woocommerce_rest_product_invalid_id",
                       status: int = 404) -> dict:
        product = store.products.get(product_id)
        if product is None or product.get("type") == "variation":
            raise WooError(code, "Invalid ID.", status)
        return product

    def _products_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        prefilter = None
        skus = _list_param(request, "sku")
        if skus:
            # With sku WooCommerce queries products and variations alike.
            prefilter = {store.sku_index[s] for s in skus if s in store.sku_index}
        orderbys = ("date", "id", "include", "title", "slug", "modified", "price", "popularity", "rating",
                    "menu_order")
        ids = self._select(store, request, "product", store.products, orderbys, prefilter)
        if skus:
            missing = [i for i in prefilter if i not in ids and store.products[i].get("type") == "variation"]
            ids = ids + sorted(missing, reverse=self._order_dir(request))
        filtered = self._filter_products(store, request, ids)
        return self._paged_response(store, request, filtered,
                                    lambda i: self._product_out(store, store.products[i]), "products", paging)

    def _filter_products(self, store: Store, request: SandboxRequest, ids: list[int]) -> list[int]:
        status = request.arg("status") or "any"
        if status not in ("any", "future", "trash") + PRODUCT_STATUSES:
            raise _invalid_param("status", "status is not one of any, future, trash, draft, pending, private, "
                                           "and publish.", "rest_not_in_enum")
        ptype = request.arg("type")
        if ptype and ptype not in PRODUCT_TYPES:
            raise _invalid_param("type", "type is not one of simple, grouped, external, and variable.",
                                 "rest_not_in_enum")
        search = (request.arg("search") or "").lower()
        stock_status = request.arg("stock_status")
        parent = self._id_list(request, "parent")
        category = request.arg("category")
        on_sale = request.arg("on_sale")
        featured = request.arg("featured")
        min_price, max_price = request.arg("min_price"), request.arg("max_price")
        simple = (status == "any" and not ptype and not search and not stock_status and not parent
                  and not category and on_sale is None and featured is None and not min_price and not max_price)
        items = [store.products[i] for i in ids]
        if simple:
            items = [p for p in items if p.get("status") != "trash"]
        else:
            out = []
            for p in items:
                pstatus = p.get("status")
                if (status == "any" and pstatus == "trash") or (status != "any" and pstatus != status):
                    continue
                if ptype and p.get("type") != ptype:
                    continue
                if search and search not in (p.get("name") or "").lower():
                    continue
                if stock_status and p.get("stock_status") != stock_status:
                    continue
                if parent and p.get("parent_id") not in parent:
                    continue
                if category and not any(str(c.get("id")) == category for c in p.get("categories", [])):
                    continue
                if on_sale is not None and bool(p.get("on_sale")) != _truthy(on_sale):
                    continue
                if featured is not None and bool(p.get("featured")) != _truthy(featured):
                    continue
                if min_price and _dec(p.get("price")) < _dec(min_price):
                    continue
                if max_price and _dec(p.get("price")) > _dec(max_price):
                    continue
                out.append(p)
            items = out
        return [p["id"] for p in self._date_filters(request, items)]

    def _product_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        product = store.products.get(int(request.params["id"]))
        if product is None:
            raise WooError("woocommerce_rest_product_invalid_id", "Invalid ID.", 404)
        if product.get("type") == "variation":
            return wp_response(self._variation_as_product(store, product))
        return wp_response(self._product_out(store, product))

    def _check_sku(self, store: Store, sku: str, own_id: int) -> None:
        if not sku:
            return
        owner = store.sku_index.get(sku)
        if owner is not None and owner != own_id:
            suggestion, n = sku, 1
            while suggestion in store.sku_index:
                suggestion = f"{sku}-{n}"
                n += 1
            raise WooError("product_invalid_sku", "Invalid or duplicated SKU.", 400,
                           resource_id=owner, unique_sku=suggestion)

    def _apply_product_fields(self, store: Store, product: dict, data: dict) -> None:
        for key, value in data.items():
            if key not in PRODUCT_WRITABLE:
                continue
            if key in ("regular_price", "sale_price"):
                value = "" if value in (None, "") else _php_str(_dec(value)) if not isinstance(value, str) else value
            if key in ("date_on_sale_from", "date_on_sale_to"):
                local, gmt = _local_and_gmt(value, is_gmt=False)
                product[key], product[key + "_gmt"] = local, gmt
                continue
            if key in ("date_on_sale_from_gmt", "date_on_sale_to_gmt"):
                local, gmt = _local_and_gmt(value, is_gmt=True)
                product[key[:-4]], product[key] = local, gmt
                continue
            if key == "stock_quantity" and value is not None:
                value = int(_dec(value))
            if key == "meta_data":
                value = self._merge_meta(store, product.get("meta_data", []), value or [])
            if key == "parent_id" and product.get("type") == "variation":
                continue
            product[key] = value
        if product.get("type") == "variation" and data.get("tax_class") == "parent":
            parent = store.products.get(product.get("parent_id") or 0)
            product["tax_class"] = parent.get("tax_class", "") if parent else ""

    def _merge_meta(self, store: Store, existing: list, posted: list) -> list:
        result = [dict(m) for m in existing]
        for meta in posted:
            if not isinstance(meta, dict) or "key" not in meta:
                continue
            target = next((m for m in result if (meta.get("id") and m.get("id") == meta["id"])
                           or m.get("key") == meta["key"]), None)
            if target is not None:
                target["value"] = meta.get("value")
            else:
                result.append({"id": store.next_id("meta"), "key": meta["key"], "value": meta.get("value")})
        return result

    def _derive_product(self, store: Store, product: dict) -> None:
        """The read-only fields WooCommerce derives on save: price, on_sale, stock status."""
        now_gmt = _iso(store.now())
        if product.get("type") == "variable":
            children = [store.products[v] for v in product.get("variations", []) if v in store.products]
            prices = [_dec(c.get("price")) for c in children if c.get("price") not in ("", None)]
            product["price"] = _money(min(prices)) if prices else ""
            product["on_sale"] = any(c.get("on_sale") for c in children)
            product["purchasable"] = bool(prices)
            product["has_options"] = True
            if not product.get("manage_stock"):
                statuses = {c.get("stock_status") for c in children}
                product["stock_status"] = ("instock" if "instock" in statuses else
                                           "onbackorder" if "onbackorder" in statuses else
                                           "outofstock" if statuses else product.get("stock_status", "instock"))
        else:
            regular, sale = product.get("regular_price") or "", product.get("sale_price") or ""
            starts, ends = product.get("date_on_sale_from_gmt"), product.get("date_on_sale_to_gmt")
            on_sale = (sale != "" and (regular == "" or _dec(sale) < _dec(regular))
                       and (not starts or starts <= now_gmt) and (not ends or ends >= now_gmt))
            product["on_sale"] = on_sale
            product["price"] = sale if on_sale else regular
            product["purchasable"] = product.get("price", "") != "" and product.get("status") != "trash"
        if product.get("manage_stock") is True:
            quantity = product.get("stock_quantity")
            if quantity is None:
                quantity = product["stock_quantity"] = 0
            backorders = product.get("backorders", "no")
            if quantity > 0:
                product["stock_status"] = "instock"
            else:
                product["stock_status"] = "onbackorder" if backorders in ("yes", "notify") else "outofstock"
        elif product.get("manage_stock") is False:
            product["stock_quantity"] = None
        allowed = product.get("backorders", "no") in ("yes", "notify")
        product["backorders_allowed"] = allowed
        product["backordered"] = bool(product.get("manage_stock") is True and allowed
                                      and (product.get("stock_quantity") or 0) < 0)

    def _product_create_item(self, store: Store, data: dict, *, parent: dict | None = None) -> dict:
        if not isinstance(data, dict):
            raise WooError("rest_invalid_param", "Invalid parameter(s): item", 400)
        if parent is None and data.get("type", "simple") not in PRODUCT_TYPES:
            raise _invalid_param("type", "type is not one of simple, grouped, external, and variable.",
                                 "rest_not_in_enum")
        self._check_sku(store, data.get("sku") or "", 0)
        product_id = store.next_id("post")
        local, gmt = store.stamp()
        if parent is None:
            product = json.loads(json.dumps(PRODUCT_TEMPLATE))
        else:
            product = json.loads(json.dumps(VARIATION_TEMPLATE))
            product["parent_id"] = parent["id"]
            product["tax_class"] = parent.get("tax_class", "")
        product.update({"id": product_id, "date_created": local, "date_created_gmt": gmt,
                        "date_modified": local, "date_modified_gmt": gmt})
        self._apply_product_fields(store, product, data)
        if parent is None:
            product["name"] = data.get("name") or "Product"
            product["slug"] = data.get("slug") or _slugify(product["name"])
            product["permalink"] = f"{store.home()}/product/{product['slug']}/"
        else:
            options = [str(a.get("option", "")) for a in product.get("attributes", [])]
            product["name"] = ", ".join(options)
            query = "&".join(f"attribute_{a.get('slug') or 'pa_' + _slugify(str(a.get('name', '')))}="
                             f"{_slugify(str(a.get('option', '')))}" for a in product.get("attributes", []))
            product["permalink"] = parent.get("permalink", "") + (f"?{query}" if query else "")
        self._derive_product(store, product)
        store.products[product_id] = product
        store.index_sku(product)
        if parent is not None:
            parent.setdefault("variations", []).append(product_id)
            self._derive_product(store, parent)
            self._touch_product(store, parent)
            self._fire(store, "product.created", product_id)
        else:
            self._fire(store, "product.created", product_id)
        store.touch()
        self.changed()
        return product

    def _touch_product(self, store: Store, product: dict) -> None:
        product["date_modified"], product["date_modified_gmt"] = store.stamp()
        store.touch()

    def _product_update_item(self, store: Store, product: dict, data: dict) -> dict:
        if "sku" in data:
            self._check_sku(store, data.get("sku") or "", product["id"])
        if product.get("type") != "variation" and "type" in data and data["type"] not in PRODUCT_TYPES:
            raise _invalid_param("type", "type is not one of simple, grouped, external, and variable.",
                                 "rest_not_in_enum")
        store.unindex_sku(product)
        self._apply_product_fields(store, product, data)
        store.index_sku(product)
        self._derive_product(store, product)
        self._touch_product(store, product)
        self._fire(store, "product.updated", product["id"])
        parent = store.products.get(product.get("parent_id") or 0) if product.get("type") == "variation" else None
        if parent is not None:
            self._derive_product(store, parent)
        self.changed()
        return product

    def _product_delete_item(self, store: Store, product: dict, force: bool) -> dict:
        out = self._product_out(store, product)
        if not force:
            if product.get("status") == "trash":
                raise WooError("woocommerce_rest_already_trashed", "The product has already been deleted.", 410)
            store.unindex_sku(product)
            product["status"] = "trash"
            self._touch_product(store, product)
            out = self._product_out(store, product)
        else:
            store.unindex_sku(product)
            del store.products[product["id"]]
            for child in product.get("variations", []):
                variation = store.products.pop(child, None)
                if variation:
                    store.unindex_sku(variation)
        self._fire(store, "product.deleted", product["id"])
        store.touch()
        self.changed()
        return out

    def _product_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        product = self._product_create_item(store, self._body(request))
        location = f"{store.home()}{REST_BASE}/products/{product['id']}"
        return wp_response(self._product_out(store, product), 201, [("Location", location)])

    def _product_update(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        product = self._product_by_id(store, int(request.params["id"]), status=400)
        return wp_response(self._product_out(store, self._product_update_item(store, product, self._body(request))))

    def _product_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        product = self._product_by_id(store, int(request.params["id"]))
        return wp_response(self._product_delete_item(store, product, _truthy(request.arg("force"))))

    def _products_batch(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        def update(item_id, item):
            product = self._product_by_id(store, item_id, status=400)
            return self._product_out(store, self._product_update_item(store, product, item))

        def delete(item_id):
            return self._product_delete_item(store, self._product_by_id(store, item_id), True)

        return self._batch(store, request, lambda d: self._product_out(store, self._product_create_item(store, d)),
                           update, delete)

    # -- variations --
    def _parent(self, store: Store, request: SandboxRequest) -> dict:
        parent = store.products.get(int(request.params["pid"]))
        if parent is None or parent.get("type") == "variation":
            raise WooError("woocommerce_rest_product_invalid_id", "Invalid ID.", 404)
        return parent

    def _variation(self, store: Store, parent: dict, variation_id: int, status: int = 404) -> dict:
        variation = store.products.get(variation_id)
        if variation is None or variation.get("type") != "variation" or variation.get("parent_id") != parent["id"]:
            raise WooError("woocommerce_rest_product_variation_invalid_id", "Invalid ID.", status)
        return variation

    def _variations_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        parent = self._parent(store, request)
        children = [store.products[i] for i in parent.get("variations", []) if i in store.products]
        orderby = request.arg("orderby") or "menu_order"
        children = self._sort(children, orderby, self._order_dir(request, "asc"))
        skus = set(_list_param(request, "sku"))
        if skus:
            children = [c for c in children if c.get("sku") in skus]
        include, exclude = set(self._id_list(request, "include")), set(self._id_list(request, "exclude"))
        children = [c for c in children if (not include or c["id"] in include) and c["id"] not in exclude]
        children = self._date_filters(request, children)
        return self._paged_response(store, request, [c["id"] for c in children],
                                    lambda i: self._product_out(store, store.products[i]),
                                    f"products/{parent['id']}/variations", paging)

    def _variation_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        parent = self._parent(store, request)
        return wp_response(self._product_out(store, self._variation(store, parent, int(request.params["id"]))))

    def _variation_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        parent = self._parent(store, request)
        variation = self._product_create_item(store, self._body(request), parent=parent)
        location = f"{store.home()}{REST_BASE}/products/{parent['id']}/variations/{variation['id']}"
        return wp_response(self._product_out(store, variation), 201, [("Location", location)])

    def _variation_update(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        parent = self._parent(store, request)
        variation = self._variation(store, parent, int(request.params["id"]), 400)
        return wp_response(self._product_out(store, self._product_update_item(store, variation, self._body(request))))

    def _variation_delete_item(self, store: Store, parent: dict, variation: dict, force: bool) -> dict:
        if not force:
            raise WooError("woocommerce_rest_trash_not_supported",
                           "Variations do not support trashing. Set 'force' to true to delete.", 501)
        out = self._product_out(store, variation)
        store.unindex_sku(variation)
        del store.products[variation["id"]]
        parent["variations"] = [v for v in parent.get("variations", []) if v != variation["id"]]
        self._derive_product(store, parent)
        self._touch_product(store, parent)
        self._fire(store, "product.deleted", variation["id"])
        self.changed()
        return out

    def _variation_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        parent = self._parent(store, request)
        variation = self._variation(store, parent, int(request.params["id"]))
        return wp_response(self._variation_delete_item(store, parent, variation, _truthy(request.arg("force"))))

    def _variations_batch(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        parent = self._parent(store, request)
        return self._batch(
            store, request,
            lambda d: self._product_out(store, self._product_create_item(store, d, parent=parent)),
            lambda i, d: self._product_out(store, self._product_update_item(
                store, self._variation(store, parent, i, 400), d)),
            lambda i: self._variation_delete_item(store, parent, self._variation(store, parent, i), True))

    # -- stock --
    def _adjust_stock(self, store: Store, product_id: int, delta: int) -> None:
        product = store.products.get(product_id)
        if product is None or product.get("manage_stock") is not True:
            return
        product["stock_quantity"] = int(product.get("stock_quantity") or 0) + delta
        self._derive_product(store, product)
        self._touch_product(store, product)
        self._fire(store, "product.updated", product_id)
        parent = store.products.get(product.get("parent_id") or 0) if product.get("type") == "variation" else None
        if parent is not None:
            self._derive_product(store, parent)

    @staticmethod
    def _stock_product_id(item: dict) -> int:
        return int(item.get("variation_id") or item.get("product_id") or 0)

    def _reduce_stock(self, store: Store, order: dict) -> None:
        """``wc_maybe_reduce_stock_levels``: once per order; REST orders may oversell."""
        if order.get("__stock_reduced"):
            return
        order["__stock_reduced"] = True
        for item in order.get("line_items", []):
            product = store.products.get(self._stock_product_id(item))
            if product is None or product.get("manage_stock") is not True:
                continue
            quantity = int(item.get("quantity") or 0)
            self._adjust_stock(store, product["id"], -quantity)
            item.setdefault("meta_data", []).append(self._item_meta(store, "_reduced_stock", str(quantity)))

    def _restore_stock(self, store: Store, order: dict) -> None:
        if not order.get("__stock_reduced"):
            return
        order["__stock_reduced"] = False
        for item in order.get("line_items", []):
            meta = next((m for m in item.get("meta_data", []) if m.get("key") == "_reduced_stock"), None)
            if meta is None:
                continue
            self._adjust_stock(store, self._stock_product_id(item), int(meta.get("value") or 0))
            item["meta_data"] = [m for m in item["meta_data"] if m is not meta]

    def _item_meta(self, store: Store, key: str, value, display_key: str | None = None,
                   display_value=None) -> dict:
        return {"id": store.next_id("meta"), "key": key, "value": value,
                "display_key": display_key if display_key is not None else key,
                "display_value": display_value if display_value is not None else value}

    # -- orders --------------------------------------------------------------------------------------
    def _status_enum(self, store: Store) -> list[str]:
        return [s for s, _ in store.order_statuses()]

    def _order_out(self, store: Store, order: dict) -> dict:
        data = _public_order(order)
        templates = f"{store.home()}{REST_BASE}/orders/{order['id']}/actions/email_templates"
        extra = {"email_templates": [{"embeddable": True, "href": templates}]}
        if order.get("customer_id"):
            extra["customer"] = [{"href": f"{store.home()}{REST_BASE}/customers/{order['customer_id']}"}]
        data["_links"] = self._links(store, f"/orders/{order['id']}", "/orders", extra=extra)
        return data

    def _order_by_id(self, store: Store, order_id: int, status: int = 404) -> dict:
        order = store.orders.get(order_id)
        if order is None:
            raise WooError("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", status)
        return order

    def _orders_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        statuses = _list_param(request, "status") or ["any"]
        allowed = ["any", "trash", "auto-draft"] + self._status_enum(store)
        for i, status in enumerate(statuses):
            if status not in allowed:
                raise _invalid_param("status", f"status[{i}] is not one of {', '.join(allowed)}.", "rest_not_in_enum")
        wanted = None if "any" in statuses else set(statuses)
        ids = self._select(store, request, "order", store.orders,
                           ("date", "id", "include", "title", "slug", "modified"))
        customer = request.arg("customer")
        product = request.arg("product")
        parent = self._id_list(request, "parent")
        search = (request.arg("search") or "").lower()
        items = []
        for order_id in ids:
            order = store.orders[order_id]
            status = order.get("status")
            if (wanted is None and status in ("trash", "auto-draft")) or (wanted is not None and status not in wanted):
                continue
            if customer not in (None, "") and str(order.get("customer_id")) != customer:
                continue
            if product and not any(str(li.get("product_id")) == product for li in order.get("line_items", [])):
                continue
            if parent and order.get("parent_id") not in parent:
                continue
            if search and search not in json.dumps(order.get("billing", {}), ensure_ascii=False).lower() \
                    and search != str(order_id):
                continue
            items.append(order)
        items = self._date_filters(request, items)
        return self._paged_response(store, request, [o["id"] for o in items],
                                    lambda i: self._order_out(store, store.orders[i]), "orders", paging)

    def _order_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return wp_response(self._order_out(store, self._order_by_id(store, int(request.params["id"]))))

    def _order_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._order_create_item(store, self._body(request))
        location = f"{store.home()}{REST_BASE}/orders/{order['id']}"
        return wp_response(self._order_out(store, order), 201, [("Location", location)])

    def _order_update(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._order_by_id(store, int(request.params["id"]), 400)
        return wp_response(self._order_out(store, self._order_update_item(store, order, self._body(request))))

    def _order_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._order_by_id(store, int(request.params["id"]))
        return wp_response(self._order_delete_item(store, order, _truthy(request.arg("force"))))

    def _order_delete_item(self, store: Store, order: dict, force: bool) -> dict:
        if not force:
            if order.get("status") == "trash":
                raise WooError("woocommerce_rest_already_trashed", "The order has already been deleted.", 410)
            order["__status_before_trash"] = order.get("status")
            order["status"] = "trash"
            self._touch_order(store, order)
            out = self._order_out(store, order)
        else:
            out = self._order_out(store, order)
            del store.orders[order["id"]]
            store.notes.pop(order["id"], None)
        self._fire(store, "order.deleted", order["id"])
        store.touch()
        self.changed()
        return out

    def _orders_batch(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return self._batch(
            store, request,
            lambda d: self._order_out(store, self._order_create_item(store, d)),
            lambda i, d: self._order_out(store, self._order_update_item(store, self._order_by_id(store, i, 400), d)),
            lambda i: self._order_delete_item(store, self._order_by_id(store, i), True))

    def _touch_order(self, store: Store, order: dict) -> None:
        order["date_modified"], order["date_modified_gmt"] = store.stamp()
        store.touch()

    @staticmethod
    def _address(posted: dict | None, *, email: bool, existing: dict | None = None) -> dict:
        keys = ADDRESS_KEYS + (["email", "phone"] if email else ["phone"])
        result = {k: "" for k in keys} if existing is None else dict(existing)
        for key, value in (posted or {}).items():
            result[key] = "" if value is None else value
        return result

    def _order_create_item(self, store: Store, data: dict) -> dict:
        if not isinstance(data, dict):
            raise WooError("rest_invalid_param", "Invalid parameter(s): item", 400)
        customer_id = int(data.get("customer_id") or 0)
        if customer_id and customer_id not in store.customers:
            raise WooError("woocommerce_rest_invalid_customer_id", "Customer ID is invalid.", 400)
        status = data.get("status") or "pending"
        if status not in self._status_enum(store):
            raise _invalid_param("status", f"status is not one of {', '.join(self._status_enum(store))}.",
                                 "rest_not_in_enum")
        order_id = store.next_id("post")
        local, gmt = store.stamp()
        key = "wc_order_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(13))
        order = {
            "id": order_id, "parent_id": int(data.get("parent_id") or 0), "status": "pending",
            "currency": data.get("currency") or store.settings["currency"], "version": store.settings["version"],
            "prices_include_tax": store.prices_include_tax, "date_created": local, "date_modified": local,
            "discount_total": "0.00", "discount_tax": "0.00", "shipping_total": "0.00", "shipping_tax": "0.00",
            "cart_tax": "0.00", "total": "0.00", "total_tax": "0.00", "customer_id": customer_id,
            "order_key": key, "billing": self._address(data.get("billing"), email=True),
            "shipping": self._address(data.get("shipping"), email=False),
            "payment_method": data.get("payment_method") or "", "payment_method_title":
                data.get("payment_method_title") or "", "transaction_id": data.get("transaction_id") or "",
            "customer_ip_address": "", "customer_user_agent": "", "created_via": "rest-api",
            "customer_note": data.get("customer_note") or "", "date_completed": None, "date_paid": None,
            "cart_hash": "", "number": str(order_id), "meta_data": [], "line_items": [], "tax_lines": [],
            "shipping_lines": [], "fee_lines": [], "coupon_lines": [], "refunds": [], "payment_url": "",
            "is_editable": True, "needs_payment": False, "needs_processing": False,
            "date_created_gmt": gmt, "date_modified_gmt": gmt, "date_completed_gmt": None, "date_paid_gmt": None,
            "currency_symbol": store.settings.get("currency_symbol", "kr"),
        }
        order["meta_data"] = self._merge_meta(store, [], data.get("meta_data") or [])
        self._set_items(store, order, data, creating=True)
        self._calculate_totals(store, order)
        if data.get("coupon_lines"):
            self._apply_coupons(store, order, data["coupon_lines"])
        store.orders[order_id] = order
        self._fire(store, "order.created", order_id)
        if _truthy(data.get("set_paid")):
            self._payment_complete(store, order, data.get("transaction_id") or "")
        elif status != "pending":
            self._set_status(store, order, status)
        self._finish_order(store, order)
        self._fire(store, "order.updated", order_id)
        store.touch()
        self.changed()
        return order

    def _order_update_item(self, store: Store, order: dict, data: dict) -> dict:
        if not isinstance(data, dict):
            raise WooError("rest_invalid_param", "Invalid parameter(s): item", 400)
        if "customer_id" in data:
            customer_id = int(data.get("customer_id") or 0)
            if customer_id and customer_id not in store.customers:
                raise WooError("woocommerce_rest_invalid_customer_id", "Customer ID is invalid.", 400)
            order["customer_id"] = customer_id
        status = data.get("status")
        if status is not None and status not in self._status_enum(store) + ["trash"]:
            raise _invalid_param("status", f"status is not one of {', '.join(self._status_enum(store))}.",
                                 "rest_not_in_enum")
        for key in ("payment_method", "payment_method_title", "transaction_id", "customer_note", "currency"):
            if key in data:
                order[key] = data[key] or ""
        if "meta_data" in data:
            order["meta_data"] = self._merge_meta(store, order.get("meta_data", []), data["meta_data"] or [])
        recalculate = False
        if "billing" in data:
            order["billing"] = self._address(data["billing"], email=True, existing=order["billing"])
            recalculate = True
        if "shipping" in data:
            order["shipping"] = self._address(data["shipping"], email=False, existing=order["shipping"])
            recalculate = True
        if any(k in data for k in ("line_items", "shipping_lines", "fee_lines")):
            self._set_items(store, order, data, creating=False)
            recalculate = True
        if recalculate or "coupon_lines" in data:
            self._calculate_totals(store, order)
            if "coupon_lines" in data:
                order["coupon_lines"] = []
                if data["coupon_lines"]:
                    self._apply_coupons(store, order, data["coupon_lines"])
            elif order.get("coupon_lines"):
                self._apply_coupons(store, order, [{"code": c["code"]} for c in order["coupon_lines"]], keep=True)
        if _truthy(data.get("set_paid")) and order.get("status") in ("pending", "failed", "on-hold"):
            self._payment_complete(store, order, data.get("transaction_id") or order.get("transaction_id", ""))
        elif status is not None and status != order.get("status"):
            self._set_status(store, order, status)
        self._finish_order(store, order)
        self._touch_order(store, order)
        self._fire(store, "order.updated", order["id"])
        self.changed()
        return order

    def _finish_order(self, store: Store, order: dict) -> None:
        status = order.get("status")
        total = _dec(order.get("total"))
        order["is_editable"] = status in EDITABLE_STATUSES
        order["needs_payment"] = status in ("pending", "failed") and total > 0
        order["needs_processing"] = any(
            not (p.get("virtual") and p.get("downloadable"))
            for p in (store.products.get(self._stock_product_id(li)) for li in order.get("line_items", [])) if p)
        order["payment_url"] = (f"{store.home()}/checkout/order-pay/{order['id']}/?pay_for_order=true"
                                f"&key={order['order_key']}")

    def _payment_complete(self, store: Store, order: dict, transaction_id: str) -> None:
        if transaction_id:
            order["transaction_id"] = transaction_id
        needs_processing = any(
            not (p.get("virtual") and p.get("downloadable"))
            for p in (store.products.get(self._stock_product_id(li)) for li in order.get("line_items", [])) if p)
        if not order.get("date_paid"):
            order["date_paid"], order["date_paid_gmt"] = store.stamp()
        self._set_status(store, order, "processing" if needs_processing or not order.get("line_items") else "completed")

    def _set_status(self, store: Store, order: dict, status: str) -> None:
        old = order.get("status")
        if old == status:
            return
        order["status"] = status
        labels = dict(store.order_statuses())
        if status in PAID_STATUSES and not order.get("date_paid"):
            order["date_paid"], order["date_paid_gmt"] = store.stamp()
        if status == "completed":
            order["date_completed"], order["date_completed_gmt"] = store.stamp()
        if status in STOCK_REDUCING_STATUSES:
            self._reduce_stock(store, order)
        elif status in STOCK_RESTORING_STATUSES:
            self._restore_stock(store, order)
        self._add_note(store, order["id"], f"Order status changed from {labels.get(old, old)} to "
                                           f"{labels.get(status, status)}.", customer_note=False, author="system")

    # -- order items --
    def _product_for_line(self, store: Store, posted: dict) -> dict | None:
        variation_id = int(posted.get("variation_id") or 0)
        product_id = int(posted.get("product_id") or 0)
        if variation_id:
            product = store.products.get(variation_id)
        elif product_id:
            product = store.products.get(product_id)
        elif posted.get("sku"):
            product = store.products.get(store.sku_index.get(posted["sku"], -1))
        else:
            return None
        if product is None:
            raise WooError("woocommerce_rest_invalid_product_id", "Product ID provided is invalid.", 400)
        return product

    def _tax_country(self, order: dict) -> str:
        return (order.get("shipping") or {}).get("country") or (order.get("billing") or {}).get("country") or "SE"

    def _line_item(self, store: Store, order: dict, posted: dict, existing: dict | None) -> dict | None:
        if existing is not None and ("product_id" in posted and posted["product_id"] is None
                                     or posted.get("quantity") == 0):
            return None
        product_ref = posted if existing is None or "product_id" in posted or "variation_id" in posted \
            or "sku" in posted else {"product_id": existing["product_id"], "variation_id": existing["variation_id"]}
        product = self._product_for_line(store, product_ref)
        if product is None and existing is None:
            raise WooError("woocommerce_rest_required_product_reference", "Product ID or SKU is required.", 400)
        quantity = int(posted.get("quantity", existing["quantity"] if existing else 1) or 0)
        item = existing if existing is not None else {"id": store.next_id("item")}
        is_variation = product is not None and product.get("type") == "variation"
        parent = store.products.get(product.get("parent_id") or 0) if is_variation else None
        if product is not None:
            name = product.get("name", "")
            if parent is not None:
                options = ", ".join(str(a.get("option", "")) for a in product.get("attributes", []))
                name = f"{parent.get('name', '')} - {options}" if options else parent.get("name", "")
            item.update({
                "name": posted.get("name") or name,
                "product_id": parent["id"] if parent is not None else product["id"],
                "variation_id": product["id"] if parent is not None else 0,
                "tax_class": product.get("tax_class", ""),
                "__tax_status": product.get("tax_status", "taxable"),
            })
            if existing is None:
                meta = []
                for attribute in product.get("attributes", []) if parent is not None else []:
                    slug = attribute.get("slug") or "pa_" + _slugify(str(attribute.get("name", "")))
                    option = str(attribute.get("option", ""))
                    meta.append(self._item_meta(store, slug, _slugify(option), attribute.get("name", slug), option))
                item["meta_data"] = meta
        item["quantity"] = quantity
        if "meta_data" in posted:
            item["meta_data"] = item.get("meta_data", []) + [
                self._item_meta(store, m["key"], m.get("value")) for m in posted["meta_data"] or []
                if isinstance(m, dict) and "key" in m]
        reprice = existing is None or "quantity" in posted or product_ref is posted
        if "subtotal" in posted or "total" in posted:
            subtotal = _dec(posted.get("subtotal", posted.get("total")))
            total = _dec(posted.get("total", posted.get("subtotal")))
            item["__subtotal"], item["__total"] = _php_str(subtotal), _php_str(total)
        elif reprice and product is not None:
            net = self._price_excluding_tax(store, product, quantity)
            item["__subtotal"] = item["__total"] = _php_str(net)
        item["sku"] = product.get("sku", "") if product is not None else item.get("sku", "")
        item["global_unique_id"] = product.get("global_unique_id", "") if product is not None else ""
        item["parent_name"] = parent.get("name") if parent is not None else None
        item["image"] = {"id": "", "src": ""}
        return item

    def _price_excluding_tax(self, store: Store, product: dict, quantity: int) -> Decimal:
        """``wc_get_price_excluding_tax``: a gross shelf price loses the base-country VAT, unrounded."""
        line_price = _dec(product.get("price")) * quantity
        if store.prices_include_tax and product.get("tax_status", "taxable") == "taxable":
            rates = store.rates(product.get("tax_class", ""), "SE")
            taxes = self._inclusive_taxes(line_price, rates)
            return _micro(line_price - sum(taxes.values(), ZERO))
        return line_price

    @staticmethod
    def _inclusive_taxes(price: Decimal, rates: list[dict]) -> dict[int, Decimal]:
        total_rate = 1 + sum((_dec(r["rate"]) / 100 for r in rates), ZERO)
        base = price / total_rate
        return {r["id"]: base * _dec(r["rate"]) / 100 for r in rates}

    @staticmethod
    def _exclusive_taxes(price: Decimal, rates: list[dict]) -> dict[int, Decimal]:
        return {r["id"]: price * _dec(r["rate"]) / 100 for r in rates}

    def _set_items(self, store: Store, order: dict, data: dict, *, creating: bool) -> None:
        """Line, shipping and fee items; an item with an ``id`` updates that item."""
        if "line_items" in data:
            items = {li["id"]: li for li in order["line_items"]}
            for posted in data["line_items"] or []:
                item_id = int(posted.get("id") or 0)
                if item_id and item_id not in items:
                    raise WooError("woocommerce_rest_invalid_item_id", "Order item ID provided is not associated "
                                                                       "with order.", 400)
                existing = items.get(item_id)
                item = self._line_item(store, order, posted, existing)
                if item is None:
                    items.pop(item_id, None)
                    continue
                items[item["id"]] = item
            order["line_items"] = list(items.values())
        if "shipping_lines" in data:
            lines = {s["id"]: s for s in order["shipping_lines"]}
            for posted in data["shipping_lines"] or []:
                item_id = int(posted.get("id") or 0)
                if item_id and item_id not in lines:
                    raise WooError("woocommerce_rest_invalid_item_id", "Order item ID provided is not associated "
                                                                       "with order.", 400)
                if item_id and ("method_id" in posted and posted["method_id"] is None):
                    lines.pop(item_id)
                    continue
                line = lines.get(item_id) or {"id": store.next_id("item"), "method_title": "", "method_id": "",
                                              "instance_id": "", "__total": "0"}
                for key in ("method_title", "method_id", "instance_id"):
                    if key in posted:
                        line[key] = "" if posted[key] is None else str(posted[key])
                if "total" in posted:
                    line["__total"] = _php_str(_dec(posted["total"]))
                line["tax_status"] = "taxable"
                line["meta_data"] = self._merge_meta(store, line.get("meta_data", []), posted.get("meta_data") or [])
                lines[line["id"]] = line
            order["shipping_lines"] = list(lines.values())
        if "fee_lines" in data:
            fees = {f["id"]: f for f in order["fee_lines"]}
            for posted in data["fee_lines"] or []:
                item_id = int(posted.get("id") or 0)
                if item_id and item_id not in fees:
                    raise WooError("woocommerce_rest_invalid_item_id", "Order item ID provided is not associated "
                                                                       "with order.", 400)
                if item_id and ("name" in posted and posted["name"] is None):
                    fees.pop(item_id)
                    continue
                fee = fees.get(item_id) or {"id": store.next_id("item"), "name": "", "tax_class": "",
                                            "tax_status": "taxable", "amount": "", "__total": "0"}
                for key in ("name", "tax_class", "tax_status"):
                    if key in posted and posted[key] is not None:
                        fee[key] = posted[key]
                if "total" in posted:
                    fee["__total"] = _php_str(_dec(posted["total"]))
                fee["meta_data"] = self._merge_meta(store, fee.get("meta_data", []), posted.get("meta_data") or [])
                fees[fee["id"]] = fee
            order["fee_lines"] = list(fees.values())

    def _calculate_totals(self, store: Store, order: dict) -> None:
        """``WC_Abstract_Order::calculate_totals`` with ``tax_round_at_subtotal = no``."""
        country = self._tax_country(order)
        cart_taxes: OrderedDict[int, Decimal] = OrderedDict()
        shipping_taxes: OrderedDict[int, Decimal] = OrderedDict()
        subtotal_tax_raw = total_tax_raw = ZERO
        for item in order["line_items"]:
            taxable = item.get("__tax_status", "taxable") == "taxable"
            rates = store.rates(item.get("tax_class", ""), country) if taxable else []
            total, subtotal = _dec(item.get("__total")), _dec(item.get("__subtotal"))
            taxes = self._exclusive_taxes(total, rates)
            subtotal_taxes = self._exclusive_taxes(subtotal, rates)
            item["__taxes"] = {str(k): _php_str_full(v) for k, v in taxes.items()}
            item["__subtotal_taxes"] = {str(k): _php_str_full(v) for k, v in subtotal_taxes.items()}
            item["subtotal"] = _money(subtotal)
            item["subtotal_tax"] = _money(sum((store.tax_round(v) for v in subtotal_taxes.values()), ZERO))
            item["total"] = _money(total)
            item["total_tax"] = _money(sum((store.tax_round(v) for v in taxes.values()), ZERO))
            item["taxes"] = [{"id": k, "total": _money(v), "subtotal": _money(subtotal_taxes.get(k, ZERO))}
                             for k, v in taxes.items()]
            item["price"] = _line_price(item["__total"], item.get("quantity") or 0)
            for rate_id, value in taxes.items():
                cart_taxes[rate_id] = cart_taxes.get(rate_id, ZERO) + store.tax_round(value)
            subtotal_tax_raw += sum(subtotal_taxes.values(), ZERO)
            total_tax_raw += sum(taxes.values(), ZERO)
        fees_total = ZERO
        for fee in order["fee_lines"]:
            total = _dec(fee.get("__total"))
            rates = store.rates(fee.get("tax_class", ""), country) if fee.get("tax_status") == "taxable" else []
            taxes = self._exclusive_taxes(total, rates)
            fee["total"] = _money(total)
            fee["total_tax"] = _money(sum((store.tax_round(v) for v in taxes.values()), ZERO))
            fee["taxes"] = [{"id": k, "total": _money(v), "subtotal": ""} for k, v in taxes.items()]
            for rate_id, value in taxes.items():
                cart_taxes[rate_id] = cart_taxes.get(rate_id, ZERO) + store.tax_round(value)
            fees_total += total
        shipping_total = ZERO
        for line in order["shipping_lines"]:
            total = _dec(line.get("__total"))
            rates = store.rates("", country, shipping=True)
            taxes = self._exclusive_taxes(total, rates)
            line["total"] = _money(total)
            line["total_tax"] = _money(sum((store.tax_round(v) for v in taxes.values()), ZERO))
            line["taxes"] = [{"id": k, "total": _money(v), "subtotal": ""} for k, v in taxes.items()]
            for rate_id, value in taxes.items():
                shipping_taxes[rate_id] = shipping_taxes.get(rate_id, ZERO) + store.tax_round(value)
            shipping_total += total.quantize(CENT, rounding=ROUND_HALF_UP)
        self._update_tax_lines(store, order, cart_taxes, shipping_taxes)
        cart_subtotal = sum((_dec(li["__subtotal"]).quantize(CENT, rounding=ROUND_HALF_UP)
                             for li in order["line_items"]), ZERO)
        cart_total = sum((_dec(li["__total"]).quantize(CENT, rounding=ROUND_HALF_UP)
                          for li in order["line_items"]), ZERO)
        cart_tax = sum(cart_taxes.values(), ZERO)
        shipping_tax = sum(shipping_taxes.values(), ZERO)
        order["shipping_total"] = _money(shipping_total)
        order["shipping_tax"] = _money(shipping_tax)
        order["cart_tax"] = _money(cart_tax)
        order["total_tax"] = _money(cart_tax + shipping_tax)
        order["discount_total"] = _money(cart_subtotal - cart_total)
        order["discount_tax"] = _money(store.tax_round(subtotal_tax_raw - total_tax_raw))
        order["total"] = _money(cart_total + fees_total + shipping_total + cart_tax + shipping_tax)

    def _update_tax_lines(self, store: Store, order: dict, cart_taxes: dict, shipping_taxes: dict) -> None:
        existing = {t["rate_id"]: t for t in order.get("tax_lines", [])}
        wanted = list(dict.fromkeys(list(cart_taxes) + list(shipping_taxes)))
        lines = []
        for rate_id in [r for r in existing if r in wanted] + [r for r in wanted if r not in existing]:
            rate = store.rate(rate_id) or {"rate": "0", "name": "", "country": "SE"}
            line = existing.get(rate_id) or {"id": store.next_id("item")}
            line.update({
                "rate_code": _rate_code(rate),
                "rate_id": rate_id, "label": rate.get("name", ""), "compound": bool(rate.get("compound", False)),
                "tax_total": _money(cart_taxes.get(rate_id, ZERO)),
                "shipping_tax_total": _money(shipping_taxes.get(rate_id, ZERO)),
                "rate_percent": _php_number(_dec(rate["rate"])), "meta_data": line.get("meta_data", []),
            })
            lines.append(line)
        order["tax_lines"] = lines

    # -- coupons (WC_Discounts) --
    def _apply_coupons(self, store: Store, order: dict, posted: list, keep: bool = False) -> None:
        codes = []
        for entry in posted:
            code = str((entry or {}).get("code") or "").strip().lower()
            if not code:
                continue
            if code not in store.coupons:
                raise WooError("woocommerce_rest_invalid_coupon",
                               f'Coupon "{code}" cannot be applied because it does not exist.', 400)
            if code not in codes:
                codes.append(code)
        include = store.prices_include_tax
        items = []
        for li in order["line_items"]:
            cents = _dec(li["__subtotal"]) * 100
            if include:
                cents += _dec(li["subtotal_tax"]) * 100
            items.append({"key": li["id"], "price": cents.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
                          "quantity": int(li.get("quantity") or 0), "item": li})
        items.sort(key=lambda i: i["price"], reverse=True)
        discounts: dict[str, dict[int, Decimal]] = {}
        for code in codes:
            coupon = store.coupons[code]
            discounts[code] = {i["key"]: ZERO for i in items}
            kind = coupon.get("discount_type", "fixed_cart")
            amount = _dec(coupon.get("amount"))
            if kind == "percent":
                self._coupon_percent(items, discounts, code, amount)
            elif kind == "fixed_product":
                self._coupon_fixed_product(items, discounts, code, (amount * 100).to_integral_value())
            else:
                self._coupon_fixed_cart(items, discounts, code, (amount * 100).to_integral_value())
        country = self._tax_country(order)
        by_item: dict[int, Decimal] = {}
        for code_discounts in discounts.values():
            for key, cents in code_discounts.items():
                by_item[key] = by_item.get(key, ZERO) + cents / 100
        for li in order["line_items"]:
            amount = by_item.get(li["id"], ZERO)
            taxable = li.get("__tax_status", "taxable") == "taxable"
            if include and taxable:
                amount -= sum(self._inclusive_taxes(amount, store.rates(li.get("tax_class", ""), country)).values(),
                              ZERO)
            li["__total"] = _php_str(max(ZERO, _micro(_dec(li["__subtotal"]) - amount)))
        old = {c["code"]: c for c in order.get("coupon_lines", [])} if keep else {}
        coupon_lines = []
        for code in codes:
            coupon = store.coupons[code]
            amount = sum(discounts[code].values(), ZERO) / 100
            discount_tax = ZERO
            lines_by_id = {li["id"]: li for li in order["line_items"]}
            for key, cents in discounts[code].items():
                li = lines_by_id[key]
                if li.get("__tax_status", "taxable") != "taxable":
                    continue
                rates = store.rates(li.get("tax_class", ""), country)
                taxes = (self._inclusive_taxes if include else self._exclusive_taxes)(cents / 100, rates)
                tax = store.tax_round(sum(taxes.values(), ZERO))
                discount_tax += tax
                if include:
                    amount -= tax
            kind = coupon.get("discount_type", "fixed_cart")
            nominal = _php_number(_dec(coupon.get("amount")))
            info = wp_json([coupon.get("id", 0), code, None if kind == "fixed_cart" else kind, nominal]).decode()
            line = old.get(code) or {"id": store.next_id("item"),
                                     "meta_data": [self._item_meta(store, "coupon_info", info)]}
            line.update({"code": code, "discount": _php_str(amount), "discount_tax": _php_str(discount_tax)})
            coupon_lines.append({"id": line["id"], "code": code, "discount": line["discount"],
                                 "discount_tax": line["discount_tax"], "meta_data": line["meta_data"],
                                 "discount_type": kind, "nominal_amount": nominal,
                                 "free_shipping": bool(coupon.get("free_shipping", False))})
        self._calculate_totals(store, order)
        order["coupon_lines"] = coupon_lines

    @staticmethod
    def _discounted(item: dict, discounts: dict) -> Decimal:
        return item["price"] - sum((d.get(item["key"], ZERO) for d in discounts.values()), ZERO)

    def _coupon_percent(self, items, discounts, code, percent: Decimal) -> None:
        total_discount = ZERO
        cart_total = ZERO
        for item in items:
            if not item["quantity"]:
                continue
            price = item["price"].quantize(Decimal("1"), rounding=ROUND_HALF_UP)
            discount = (price * percent / 100).to_integral_value(rounding=ROUND_DOWN)
            discounts[code][item["key"]] += discount
            total_discount += discount
            cart_total += price
        expected = (cart_total * percent / 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
        if total_discount < expected:
            self._coupon_remainder(items, discounts, code, expected - total_discount)

    def _coupon_fixed_product(self, items, discounts, code, cents: Decimal) -> Decimal:
        total = ZERO
        for item in items:
            discount = min(self._discounted(item, discounts), cents * item["quantity"])
            discounts[code][item["key"]] += discount
            total += discount
        return total

    def _coupon_fixed_cart(self, items, discounts, code, cents: Decimal) -> Decimal:
        applicable = [i for i in items if self._discounted(i, discounts) > 0]
        count = sum(i["quantity"] for i in applicable)
        if not count or cents <= 0:
            return ZERO
        per_item = (cents / count).to_integral_value(rounding=ROUND_DOWN)
        total = ZERO
        if per_item > 0:
            total = self._coupon_fixed_product(applicable, discounts, code, per_item)
            if 0 < total < cents:
                total += self._coupon_fixed_cart(applicable, discounts, code, cents - total)
        else:
            total += self._coupon_remainder(applicable, discounts, code, cents)
        return total

    def _coupon_remainder(self, items, discounts, code, cents: Decimal) -> Decimal:
        total = ZERO
        for item in items:
            for _ in range(item["quantity"]):
                discount = min(self._discounted(item, discounts), Decimal(1))
                discounts[code][item["key"]] += discount
                total += discount
                if total >= cents:
                    return total
        return total

    # -- OPTIONS /orders --
    def _orders_schema(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        money = {"type": "string", "context": ["view", "edit"], "readonly": True}
        schema = {
            "$schema": "http://json-schema.org/draft-04/schema#", "title": "shop_order", "type": "object",
            "properties": {
                "id": {"description": "Unique identifier for the resource.", "type": "integer",
                       "context": ["view", "edit"], "readonly": True},
                "parent_id": {"description": "Parent order ID.", "type": "integer", "context": ["view", "edit"]},
                "number": {"description": "Order number.", "type": "string", "context": ["view", "edit"],
                           "readonly": True},
                "status": {"description": "Order status.", "type": "string", "default": "pending",
                           "enum": self._status_enum(store), "context": ["view", "edit"]},
                "currency": {"description": "Currency the order was created with, in ISO format.",
                             "type": "string", "default": store.settings["currency"], "context": ["view", "edit"]},
                "date_modified_gmt": {"description": "The date the order was last modified, as GMT.",
                                      "type": "date-time", "context": ["view", "edit"], "readonly": True},
                "total": {"description": "Grand total.", **money},
                "total_tax": {"description": "Sum of all taxes.", **money},
                "prices_include_tax": {"description": "True the prices included tax during checkout.",
                                       "type": "boolean", "context": ["view", "edit"], "readonly": True},
                "customer_id": {"description": "User ID who owns the order. 0 for guests.", "type": "integer",
                                "default": 0, "context": ["view", "edit"]},
                "set_paid": {"description": "Define if the order is paid. It will set the status to processing "
                                            "and reduce stock items.", "type": "boolean", "default": False,
                             "context": ["edit"]},
            },
        }
        return wp_response({"namespace": "wc/v3", "methods": ["GET", "POST"],
                            "endpoints": [{"methods": ["GET"], "args": {}}, {"methods": ["POST"], "args": {}}],
                            "schema": schema,
                            "_links": {"self": [{"href": f"{store.home()}{REST_BASE}/orders"}]}},
                           200, [("Allow", "GET, POST")])

    # -- notes ---------------------------------------------------------------------------------------
    def _note_order(self, store: Store, request: SandboxRequest) -> dict:
        order = store.orders.get(int(request.params["oid"]))
        if order is None:
            raise WooError("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
        return order

    def _note_out(self, store: Store, order_id: int, note: dict) -> dict:
        data = dict(note)
        data["_links"] = self._links(store, f"/orders/{order_id}/notes/{note['id']}", f"/orders/{order_id}/notes",
                                     up=f"/orders/{order_id}", allow=("GET", "DELETE"))
        return data

    def _add_note(self, store: Store, order_id: int, text: str, *, customer_note: bool, author: str) -> dict:
        local, gmt = store.stamp()
        note = {"id": store.next_id("comment"), "author": author, "date_created": local, "date_created_gmt": gmt,
                "note": text, "customer_note": customer_note}
        store.notes.setdefault(order_id, []).append(note)
        return note

    def _notes_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._note_order(store, request)
        kind = request.arg("type") or "any"
        if kind not in ("any", "customer", "internal"):
            raise _invalid_param("type", "type is not one of any, customer, and internal.", "rest_not_in_enum")
        notes = [n for n in reversed(store.notes.get(order["id"], []))
                 if kind == "any" or (kind == "customer") == bool(n.get("customer_note"))]
        return wp_response([self._note_out(store, order["id"], n) for n in notes])

    def _note_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._note_order(store, request)
        data = self._body(request)
        if not data.get("note"):
            raise WooError("rest_missing_callback_param", "Missing parameter(s): note", 400, params=["note"])
        author = "admin" if _truthy(data.get("added_by_user")) else "system"
        note = self._add_note(store, order["id"], str(data["note"]), customer_note=_truthy(data.get("customer_note")),
                              author=author)
        self.changed()
        location = f"{store.home()}{REST_BASE}/orders/{order['id']}/notes/{note['id']}"
        return wp_response(self._note_out(store, order["id"], note), 201, [("Location", location)])

    def _find_note(self, store: Store, order: dict, note_id: int) -> dict:
        note = next((n for n in store.notes.get(order["id"], []) if n["id"] == note_id), None)
        if note is None:
            raise WooError("woocommerce_rest_invalid_id", "Invalid resource ID.", 404)
        return note

    def _note_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._note_order(store, request)
        return wp_response(self._note_out(store, order["id"], self._find_note(store, order, int(request.params["id"]))))

    def _note_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._note_order(store, request)
        note = self._find_note(store, order, int(request.params["id"]))
        if not _truthy(request.arg("force")):
            raise WooError("woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.", 501)
        store.notes[order["id"]] = [n for n in store.notes[order["id"]] if n is not note]
        self.changed()
        return wp_response(self._note_out(store, order["id"], note))

    # -- refunds -------------------------------------------------------------------------------------
    def _refund_out(self, store: Store, refund: dict) -> dict:
        data = _public(refund)
        order_id = refund["__order_id"]
        data["_links"] = self._links(store, f"/orders/{order_id}/refunds/{refund['id']}", f"/orders/{order_id}/refunds",
                                     up=f"/orders/{order_id}", allow=("GET", "DELETE"))
        return data

    def _refunds_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        order = self._order_by_id(store, int(request.params["oid"]))
        ids = [r["id"] for r in order.get("refunds", []) if r["id"] in store.refunds]
        return self._paged_response(store, request, ids, lambda i: self._refund_out(store, store.refunds[i]),
                                    f"orders/{order['id']}/refunds", paging)

    def _refunds_all(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        ids = sorted(store.refunds, reverse=self._order_dir(request))
        return self._paged_response(store, request, ids, lambda i: self._refund_out(store, store.refunds[i]),
                                    "refunds", paging)

    def _refund_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._order_by_id(store, int(request.params["oid"]))
        refund = store.refunds.get(int(request.params["id"]))
        if refund is None or refund["__order_id"] != order["id"]:
            raise WooError("woocommerce_rest_invalid_id", "Invalid ID.", 404)
        return wp_response(self._refund_out(store, refund))

    def _refund_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._order_by_id(store, int(request.params["oid"]))
        refund = store.refunds.get(int(request.params["id"]))
        if refund is None or refund["__order_id"] != order["id"]:
            raise WooError("woocommerce_rest_invalid_id", "Invalid ID.", 404)
        if not _truthy(request.arg("force")):
            raise WooError("woocommerce_rest_trash_not_supported", "Refunds do not support trashing.", 501)
        out = self._refund_out(store, refund)
        del store.refunds[refund["id"]]
        order["refunds"] = [r for r in order["refunds"] if r["id"] != refund["id"]]
        self._touch_order(store, order)
        self._fire(store, "order.updated", order["id"])
        self.changed()
        return wp_response(out)

    def _refund_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._order_by_id(store, int(request.params["oid"]))
        data = self._body(request)
        local, gmt = store.stamp()
        all_items = {i["id"]: ("line", i) for i in order.get("line_items", [])}
        all_items.update({i["id"]: ("shipping", i) for i in order.get("shipping_lines", [])})
        all_items.update({i["id"]: ("fee", i) for i in order.get("fee_lines", [])})
        refund_lines: dict[str, list] = {"line": [], "shipping": [], "fee": []}
        tax_by_rate: OrderedDict[int, list[Decimal]] = OrderedDict()
        items_total = ZERO
        restock: list[tuple[dict, int]] = []
        for posted in data.get("line_items") or []:
            kind_item = all_items.get(int(posted.get("id") or 0))
            if kind_item is None:
                continue
            kind, original = kind_item
            quantity = int(posted.get("quantity") or 0)
            total = _dec(posted.get("refund_total"))
            taxes = OrderedDict((int(t.get("id")), _dec(t.get("refund_total"))) for t in posted.get("refund_tax") or [])
            if not taxes and original.get("taxes") and total:
                taxes = OrderedDict((t["id"], ZERO) for t in original["taxes"])
            items_total += total + sum(taxes.values(), ZERO)
            for rate_id, value in taxes.items():
                slot = tax_by_rate.setdefault(rate_id, [ZERO, ZERO])
                slot[1 if kind == "shipping" else 0] += value
            line = self._refund_line(store, kind, original, quantity, total, taxes)
            refund_lines[kind].append(line)
            if kind == "line" and quantity:
                restock.append((original, quantity))
        amount = _dec(data["amount"]) if data.get("amount") not in (None, "") else items_total
        if amount <= 0:
            raise WooError("woocommerce_rest_invalid_order_refund", "Refund amount must be greater than zero.", 400)
        already = sum((-_dec(r["total"]) for r in order.get("refunds", [])), ZERO)
        if amount > _dec(order.get("total")) - already:
            raise WooError("woocommerce_rest_cannot_create_order_refund", "Invalid refund amount.", 500)
        refund_id = store.next_id("post")
        tax_lines = []
        for rate_id, (cart, shipping) in tax_by_rate.items():
            rate = store.rate(rate_id) or {"rate": "0", "name": "", "country": "SE"}
            tax_lines.append({
                "id": store.next_id("item"),
                "rate_code": _rate_code(rate),
                "rate_id": rate_id, "label": rate.get("name", ""), "compound": False,
                "tax_total": _money(-cart), "shipping_tax_total": _money(-shipping),
                "rate_percent": _php_number(_dec(rate["rate"])), "meta_data": []})
        full = amount == _dec(order.get("total")) - already
        refund_tax = sum((c + s for c, s in tax_by_rate.values()), ZERO)
        refund = {
            "id": refund_id, "date_created": local, "date_created_gmt": gmt, "amount": _money(amount),
            "reason": data.get("reason") or "", "refunded_by": int(data.get("refunded_by") or 1),
            "refunded_payment": _truthy(data.get("api_refund", True)),
            "meta_data": [{"id": store.next_id("meta"), "key": "_refund_type", "value": "full" if full else "partial"}],
            "line_items": refund_lines["line"], "shipping_lines": refund_lines["shipping"], "tax_lines": tax_lines,
            "fee_lines": refund_lines["fee"], "__order_id": order["id"],
        }
        store.refunds[refund_id] = refund
        order["refunds"].insert(0, {"id": refund_id, "reason": refund["reason"], "total": _money(-amount),
                                    "total_tax": _money(-refund_tax)})
        if _truthy(data.get("api_restock", True)):
            for original, quantity in restock:
                product = store.products.get(self._stock_product_id(original))
                if product is None or product.get("manage_stock") is not True:
                    continue
                self._adjust_stock(store, product["id"], quantity)
                meta = next((m for m in original.get("meta_data", []) if m.get("key") == "_reduced_stock"), None)
                if meta is not None:
                    meta["value"] = meta["display_value"] = str(int(meta["value"]) - quantity)
                restocked = next((m for m in original.get("meta_data", [])
                                  if m.get("key") == "_restock_refunded_items"), None)
                if restocked is None:
                    original["meta_data"].append(self._item_meta(store, "_restock_refunded_items", str(quantity)))
                else:
                    restocked["value"] = restocked["display_value"] = str(int(restocked["value"]) + quantity)
        if full:
            self._set_status(store, order, "refunded")
        self._touch_order(store, order)
        self._fire(store, "order.updated", order["id"])
        self.changed()
        location = f"{store.home()}{REST_BASE}/orders/{order['id']}/refunds/{refund_id}"
        return wp_response(self._refund_out(store, refund), 201, [("Location", location)])

    def _refund_line(self, store: Store, kind: str, original: dict, quantity: int, total: Decimal,
                     taxes: dict) -> dict:
        tax_total = sum(taxes.values(), ZERO)
        refunded_meta = self._item_meta(store, "_refunded_item_id", str(original["id"]))
        if kind == "line":
            return {"id": store.next_id("item"), "name": original.get("name", ""),
                    "product_id": original.get("product_id", 0), "variation_id": original.get("variation_id", 0),
                    "quantity": -quantity, "tax_class": original.get("tax_class", ""),
                    "subtotal": _money(-total), "subtotal_tax": _money(-tax_total), "total": _money(-total),
                    "total_tax": _money(-tax_total),
                    "taxes": [{"id": k, "total": _money(-v), "subtotal": _money(-v)} for k, v in taxes.items()],
                    "meta_data": [refunded_meta], "sku": original.get("sku", ""), "global_unique_id": "",
                    "price": _line_price(_php_str(total), quantity) if quantity else 0,
                    "image": {"id": "", "src": ""}, "parent_name": original.get("parent_name")}
        if kind == "shipping":
            return {"id": store.next_id("item"), "method_title": original.get("method_title", ""),
                    "method_id": original.get("method_id", ""), "instance_id": original.get("instance_id", ""),
                    "total": _money(-total), "total_tax": _money(-tax_total),
                    "taxes": [{"id": k, "total": _money(-v), "subtotal": ""} for k, v in taxes.items()],
                    "tax_status": "taxable", "meta_data": [refunded_meta]}
        return {"id": store.next_id("item"), "name": original.get("name", ""),
                "tax_class": original.get("tax_class", ""),
                "tax_status": original.get("tax_status", "taxable"), "amount": "", "total": _money(-total),
                "total_tax": _money(-tax_total),
                "taxes": [{"id": k, "total": _money(-v), "subtotal": ""} for k, v in taxes.items()],
                "meta_data": [refunded_meta]}

    # -- customers -----------------------------------------------------------------------------------
    def _customer_out(self, store: Store, customer: dict) -> dict:
        data = _public(customer)
        data["_links"] = self._links(store, f"/customers/{customer['id']}", "/customers")
        return data

    def _customer_by_id(self, store: Store, customer_id: int, status: int = 404) -> dict:
        customer = store.customers.get(customer_id)
        if customer is None:
            raise WooError("woocommerce_rest_invalid_id", "Invalid resource ID.", status)
        return customer

    def _customers_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        ids = self._select(store, request, "customer", store.customers,
                           ("id", "include", "name", "registered_date"), default_order="asc", default_orderby="name")
        email = (request.arg("email") or "").lower()
        role = request.arg("role") or "customer"
        search = (request.arg("search") or "").lower()
        out = []
        for customer_id in ids:
            customer = store.customers[customer_id]
            if email and customer.get("email", "").lower() != email:
                continue
            if role != "all" and customer.get("role") != role:
                continue
            if search and search not in " ".join(str(customer.get(k, "")) for k in
                                                 ("email", "first_name", "last_name", "username")).lower():
                continue
            out.append(customer_id)
        return self._paged_response(store, request, out, lambda i: self._customer_out(store, store.customers[i]),
                                    "customers", paging)

    def _customer_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return wp_response(self._customer_out(store, self._customer_by_id(store, int(request.params["id"]))))

    def _customer_create_item(self, store: Store, data: dict) -> dict:
        if not isinstance(data, dict) or not data.get("email"):
            raise WooError("rest_missing_callback_param", "Missing parameter(s): email", 400, params=["email"])
        email = str(data["email"]).strip()
        if any(c.get("email", "").lower() == email.lower() for c in store.customers.values()):
            raise WooError("registration-error-email-exists",
                           "An account is already registered with your email address. "
                           "<a href=\"#\" class=\"showlogin\">Please log in.</a>", 400)
        customer_id = store.next_id("user")
        local, gmt = store.stamp()
        customer = {
            "id": customer_id, "date_created": local, "date_created_gmt": gmt, "date_modified": local,
            "date_modified_gmt": gmt, "email": email, "first_name": data.get("first_name", ""),
            "last_name": data.get("last_name", ""), "role": "customer",
            "username": data.get("username") or email.split("@")[0],
            "billing": self._address(data.get("billing"), email=True),
            "shipping": self._address(data.get("shipping"), email=False), "is_paying_customer": False,
            "avatar_url": "https://secure.gravatar.com/avatar/" + hashlib.sha256(email.lower().encode()).hexdigest()
                          + "?s=96&d=mm&r=g",
            "meta_data": self._merge_meta(store, [], data.get("meta_data") or []),
        }
        store.customers[customer_id] = customer
        self._fire(store, "customer.created", customer_id)
        store.touch()
        self.changed()
        return customer

    def _customer_update_item(self, store: Store, customer: dict, data: dict) -> dict:
        for key in ("email", "first_name", "last_name"):
            if key in data:
                customer[key] = data[key] or ""
        for key, email in (("billing", True), ("shipping", False)):
            if key in data:
                customer[key] = self._address(data[key], email=email, existing=customer[key])
        if "meta_data" in data:
            customer["meta_data"] = self._merge_meta(store, customer.get("meta_data", []), data["meta_data"] or [])
        customer["date_modified"], customer["date_modified_gmt"] = store.stamp()
        self._fire(store, "customer.updated", customer["id"])
        store.touch()
        self.changed()
        return customer

    def _customer_delete_item(self, store: Store, customer: dict, force: bool) -> dict:
        if not force:
            raise WooError("woocommerce_rest_trash_not_supported", "Customers do not support trashing.", 501)
        out = self._customer_out(store, customer)
        del store.customers[customer["id"]]
        self._fire(store, "customer.deleted", customer["id"])
        store.touch()
        self.changed()
        return out

    def _customer_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        customer = self._customer_create_item(store, self._body(request))
        location = f"{store.home()}{REST_BASE}/customers/{customer['id']}"
        return wp_response(self._customer_out(store, customer), 201, [("Location", location)])

    def _customer_update(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        customer = self._customer_by_id(store, int(request.params["id"]), 400)
        return wp_response(self._customer_out(store, self._customer_update_item(store, customer, self._body(request))))

    def _customer_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        customer = self._customer_by_id(store, int(request.params["id"]))
        return wp_response(self._customer_delete_item(store, customer, _truthy(request.arg("force"))))

    def _customers_batch(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return self._batch(
            store, request, lambda d: self._customer_out(store, self._customer_create_item(store, d)),
            lambda i, d: self._customer_out(store, self._customer_update_item(
                store, self._customer_by_id(store, i, 400), d)),
            lambda i: self._customer_delete_item(store, self._customer_by_id(store, i), True))

    # -- coupons (read only) --
    def _coupons_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        coupons = sorted(store.coupons.values(), key=lambda c: c.get("id", 0), reverse=self._order_dir(request))
        by_id = {c.get("id", 0): c for c in coupons}
        return self._paged_response(store, request, [c.get("id", 0) for c in coupons],
                                    lambda i: {**_public(by_id[i]), "_links": self._links(
                                        store, f"/coupons/{i}", "/coupons")}, "coupons", paging)

    # -- webhooks ------------------------------------------------------------------------------------
    def _webhook_out(self, store: Store, webhook: dict) -> dict:
        data = {k: v for k, v in webhook.items() if k not in ("secret", "failure_count") and not k.startswith("__")}
        data["_links"] = self._links(store, f"/webhooks/{webhook['id']}", "/webhooks")
        return data

    def _webhook_by_id(self, store: Store, webhook_id: int, status: int = 404) -> dict:
        webhook = store.webhooks.get(webhook_id)
        if webhook is None:
            raise WooError("woocommerce_rest_webhook_invalid_id", "Invalid ID.", status)
        return webhook

    @staticmethod
    def _valid_topic(topic: str) -> bool:
        return topic in WEBHOOK_TOPIC_HOOKS or bool(re.match(r"^action\.(woocommerce_|wc_)\w+$", topic or ""))

    def _webhooks_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        status = request.arg("status") or "all"
        ids = sorted(store.webhooks, reverse=self._order_dir(request))
        ids = [i for i in ids if status == "all" or store.webhooks[i]["status"] == status]
        return self._paged_response(store, request, ids, lambda i: self._webhook_out(store, store.webhooks[i]),
                                    "webhooks", paging)

    def _webhook_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return wp_response(self._webhook_out(store, self._webhook_by_id(store, int(request.params["id"]))))

    def _webhook_create_item(self, store: Store, data: dict, after: list) -> dict:
        topic = (data or {}).get("topic") or ""
        if not self._valid_topic(topic):
            raise WooError("woocommerce_rest_webhook_invalid_topic",
                           "Webhook topic is required and must be valid.", 400)
        url = data.get("delivery_url") or ""
        if not re.match(r"^https?://", url):
            raise WooError("woocommerce_rest_webhook_invalid_delivery_url",
                           "Webhook delivery URL must be a valid URL starting with http:// or https://.", 400)
        status = data.get("status") or "active"
        if status not in ("active", "paused", "disabled"):
            raise _invalid_param("status", "status is not one of active, paused, and disabled.", "rest_not_in_enum")
        webhook_id = store.next_id("webhook")
        local, gmt = store.stamp()
        resource, _, event = topic.partition(".")
        webhook = {
            "id": webhook_id, "name": data.get("name") or f"Webhook created on {local}", "status": status,
            "topic": topic, "resource": resource, "event": event,
            "hooks": WEBHOOK_TOPIC_HOOKS.get(topic, [event]), "delivery_url": url,
            "date_created": local, "date_created_gmt": gmt, "date_modified": local, "date_modified_gmt": gmt,
            "api_version": "wp_api_v3",
            "secret": data.get("secret") or secrets.token_urlsafe(36), "failure_count": 0,
        }
        store.webhooks[webhook_id] = webhook
        self.changed()
        if status == "active":
            after.append(lambda: self._deliver_ping(store, webhook_id, url))
        return webhook

    def _webhook_update_item(self, store: Store, webhook: dict, data: dict) -> dict:
        if "topic" in data:
            if not self._valid_topic(data["topic"] or ""):
                raise WooError("woocommerce_rest_webhook_invalid_topic",
                               "Webhook topic is required and must be valid.", 400)
            webhook["topic"] = data["topic"]
            webhook["resource"], _, webhook["event"] = data["topic"].partition(".")
            webhook["hooks"] = WEBHOOK_TOPIC_HOOKS.get(data["topic"], [webhook["event"]])
        if "status" in data:
            if data["status"] not in ("active", "paused", "disabled"):
                raise _invalid_param("status", "status is not one of active, paused, and disabled.", "rest_not_in_enum")
            webhook["status"] = data["status"]
        for key in ("name", "delivery_url", "secret"):
            if data.get(key):
                webhook[key] = data[key]
        webhook["date_modified"], webhook["date_modified_gmt"] = store.stamp()
        self.changed()
        return webhook

    def _webhook_delete_item(self, store: Store, webhook: dict, force: bool) -> dict:
        if not force:
            raise WooError("woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.", 501)
        out = self._webhook_out(store, webhook)
        del store.webhooks[webhook["id"]]
        for key in [k for k in store.pending if k[0] == webhook["id"]]:
            del store.pending[key]
        self.changed()
        return out

    def _webhook_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        webhook = self._webhook_create_item(store, self._body(request), after)
        location = f"{store.home()}{REST_BASE}/webhooks/{webhook['id']}"
        return wp_response(self._webhook_out(store, webhook), 201, [("Location", location)])

    def _webhook_update(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        webhook = self._webhook_by_id(store, int(request.params["id"]), 400)
        return wp_response(self._webhook_out(store, self._webhook_update_item(store, webhook, self._body(request))))

    def _webhook_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        webhook = self._webhook_by_id(store, int(request.params["id"]))
        return wp_response(self._webhook_delete_item(store, webhook, _truthy(request.arg("force"))))

    def _webhooks_batch(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return self._batch(
            store, request, lambda d: self._webhook_out(store, self._webhook_create_item(store, d, after)),
            lambda i, d: self._webhook_out(store, self._webhook_update_item(
                store, self._webhook_by_id(store, i, 400), d)),
            lambda i: self._webhook_delete_item(store, self._webhook_by_id(store, i), True))

    # -- webhook delivery ----------------------------------------------------------------------------
    def _fire(self, store: Store, topic: str, resource_id: int) -> None:
        """Queue a delivery for every active webhook on ``topic``; one pending entry per resource."""
        due = time.monotonic() + self.delivery_delay
        queued = False
        for webhook in store.webhooks.values():
            if webhook["status"] != "active" or webhook["topic"] != topic:
                continue
            key = (webhook["id"], resource_id)
            if key not in store.pending:
                store.pending[key] = {"topic": topic, "due": due}
                queued = True
        if queued:
            self._ensure_worker()
            self._wakeup.notify_all()

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._delivery_loop, name="woocommerce-webhooks", daemon=True)
            self._worker.start()

    def _delivery_loop(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                due, next_due = [], None
                for store in self.stores.values():
                    for key, entry in list(store.pending.items()):
                        if entry.get("due", 0) <= now:
                            due.append((store, key, store.pending.pop(key)))
                        elif next_due is None or entry["due"] < next_due:
                            next_due = entry["due"]
                if not due:
                    self._wakeup.wait(timeout=1.0 if next_due is None else max(0.01, next_due - now))
                    continue
            for store, key, entry in due:
                try:
                    self._deliver(store, key[0], key[1], entry["topic"])
                except Exception:
                    logger.exception("webhook delivery failed in the sandbox")

    def _payload(self, store: Store, resource: str, event: str, resource_id: int) -> dict | None:
        if event == "deleted":
            return {"id": resource_id}
        if resource == "order":
            order = store.orders.get(resource_id)
            return self._order_out(store, order) if order else None
        if resource == "product":
            product = store.products.get(resource_id)
            if product is None:
                return None
            if product.get("type") == "variation":
                return self._variation_as_product(store, product)
            return self._product_out(store, product)
        if resource == "customer":
            customer = store.customers.get(resource_id)
            return self._customer_out(store, customer) if customer else None
        return {"id": resource_id}

    def _deliver(self, store: Store, webhook_id: int, resource_id: int, topic: str) -> dict | None:
        """Build the payload now (the state at send time), sign the exact bytes, send once."""
        with self.lock:
            webhook = store.webhooks.get(webhook_id)
            if webhook is None or webhook["status"] != "active":
                return None
            resource, _, event = topic.partition(".")
            payload = self._payload(store, resource, event, resource_id)
            if payload is None:
                return None
            if event != "deleted" and payload.get("status") in ("draft", "auto-draft", "checkout-draft"):
                return None
            body = wp_json(payload)
            secret = webhook["secret"]
            url = webhook["delivery_url"]
            source = store.home() + "/"
        signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        delivery_id = hashlib.md5(f"{webhook_id}{int(time.time())}".encode()).hexdigest()
        headers = [
            ("User-Agent", f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"),
            ("Accept", "*/*"), ("Content-Type", "application/json"),
            ("X-WC-Webhook-Source", source), ("X-WC-Webhook-Topic", topic),
            ("X-WC-Webhook-Resource", resource), ("X-WC-Webhook-Event", event),
            ("X-WC-Webhook-Signature", signature), ("X-WC-Webhook-ID", str(webhook_id)),
            ("X-WC-Webhook-Delivery-ID", delivery_id),
        ]
        started = time.monotonic()
        status, error = self._post(url, headers, body)
        record = {"webhook_id": webhook_id, "topic": topic, "resource_id": resource_id, "delivery_url": url,
                  "delivery_id": delivery_id, "status": status, "error": error,
                  "duration": round(time.monotonic() - started, 4), "bytes": len(body),
                  "at": _iso(datetime.now(timezone.utc))}
        with self.lock:
            webhook = store.webhooks.get(webhook_id)
            if webhook is not None:
                if status is not None and 200 <= status <= 302:
                    webhook["failure_count"] = 0
                elif webhook.get("failure_count", 0) > MAX_WEBHOOK_FAILURES:
                    webhook["status"] = "disabled"
                    record["disabled"] = True
                else:
                    webhook["failure_count"] = webhook.get("failure_count", 0) + 1
            store.deliveries.append(record)
            del store.deliveries[:-DELIVERY_LOG_LIMIT]
            self.changed()
        return record

    def _post(self, url: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int | None, str | None]:
        """One POST, no redirects followed, no retry (as WooCommerce)."""
        parts = urlsplit(url)
        try:
            if parts.scheme == "https":
                import ssl
                connection = http.client.HTTPSConnection(parts.hostname, parts.port or 443,
                                                         timeout=self.delivery_timeout,
                                                         context=ssl._create_unverified_context())
            else:
                connection = http.client.HTTPConnection(parts.hostname, parts.port or 80,
                                                        timeout=self.delivery_timeout)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.putrequest("POST", path, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            connection.putheader("Connection", "close")
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            response.read()
            connection.close()
            return response.status, None
        except (OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _deliver_ping(self, store: Store, webhook_id: int, url: str) -> None:
        """The ping after ``POST /webhooks``: form-encoded, unsigned, no X-WC-Webhook-* headers."""
        headers = [("User-Agent", f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"),
                   ("Accept", "*/*"), ("Content-Type", "application/x-www-form-urlencoded")]
        status, error = self._post(url, headers, f"webhook_id={webhook_id}".encode())
        with self.lock:
            store.deliveries.append({"webhook_id": webhook_id, "topic": "ping", "resource_id": None,
                                     "delivery_url": url, "status": status, "error": error,
                                     "at": _iso(datetime.now(timezone.utc))})

    def flush_webhooks(self, prefix: str | None = None) -> list[dict]:
        """Deliver everything pending now (in this thread) and return what was sent."""
        with self.lock:
            stores = [self.stores[prefix]] if prefix is not None and prefix in self.stores else \
                list(self.stores.values()) if prefix is None else []
            batch = []
            for store in stores:
                while store.pending:
                    key, entry = store.pending.popitem(last=False)
                    batch.append((store, key, entry))
        results = []
        for store, (webhook_id, resource_id), entry in batch:
            record = self._deliver(store, webhook_id, resource_id, entry["topic"])
            if record is not None:
                results.append(record)
        return results

    # -- settings, system status, taxes, reports --------------------------------------------------------
    def _system_status(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        home = store.home()
        data = {
            "environment": {
                "home_url": home, "site_url": home, "store_id": hashlib.md5(home.encode()).hexdigest(),
                "version": store.settings["version"], "log_directory": "/var/www/html/wp-content/uploads/wc-logs/",
                "log_directory_writable": True, "wp_version": WP_VERSION, "wp_multisite": False,
                "wp_memory_limit": 268435456, "wp_debug_mode": False, "wp_cron": True, "language": "sv_SE",
                "external_object_cache": None, "server_info": "Apache/2.4", "php_version": "8.2.36",
                "php_post_max_size": 8388608, "php_max_execution_time": 30, "php_max_input_vars": 1000,
                "curl_version": "8.5.0, OpenSSL/3.0.13", "suhosin_installed": False, "max_upload_size": 2097152,
                "mysql_version": "10.11", "mysql_version_string": "10.11-MariaDB", "default_timezone": "UTC",
                "fsockopen_or_curl_enabled": True, "soapclient_enabled": True, "domdocument_enabled": True,
                "gzip_enabled": True, "mbstring_enabled": True, "remote_post_successful": True,
                "remote_post_response": 200, "remote_get_successful": True, "remote_get_response": 200,
            },
            "database": {"wc_database_version": store.settings["version"], "database_prefix": "wp_"},
            "active_plugins": [{"plugin": "woocommerce/woocommerce.php", "name": "WooCommerce",
                                "version": store.settings["version"], "author_name": "Automattic"}],
            "theme": {"name": "Storefront", "version": "4.6.1"},
            "settings": {
                "api_enabled": True, "force_ssl": False, "currency": store.settings["currency"],
                "currency_symbol": "&#107;&#114;", "currency_position": "right_space", "thousand_separator": "",
                "decimal_separator": ",", "number_of_decimals": 2, "geolocation_enabled": False,
                "taxonomies": {"external": "external", "grouped": "grouped", "simple": "simple",
                               "variable": "variable"},
                "product_visibility_terms": {"exclude-from-catalog": "exclude-from-catalog",
                                             "exclude-from-search": "exclude-from-search",
                                             "featured": "featured", "outofstock": "outofstock"},
                "woocommerce_com_connected": "no", "enforce_approved_download_dirs": True,
                "order_datastore": "Automattic\\WooCommerce\\Internal\\DataStores\\Orders\\OrdersTableDataStore",
                "HPOS_enabled": True, "HPOS_sync_enabled": False,
            },
            "security": {"secure_connection": request.scheme == "https", "hide_errors": True},
            "pages": [], "post_type_counts": [{"type": "product", "count": str(len(store.products))}],
        }
        return wp_response(data)

    def _settings_general(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        values = dict(GENERAL_SETTINGS)
        values["woocommerce_currency"] = store.settings["currency"]
        out = []
        for key, value in values.items():
            label, kind = SETTING_LABELS.get(key, (key.replace("woocommerce_", "").replace("_", " ").capitalize(),
                                                   "text"))
            out.append({"id": key, "label": label, "description": "", "type": kind, "default": "", "tip": "",
                        "value": value, "_links": {
                            "self": [{"href": f"{store.home()}{REST_BASE}/settings/general/{key}"}],
                            "collection": [{"href": f"{store.home()}{REST_BASE}/settings/general"}]}})
        return wp_response(out)

    def _taxes_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        tax_class = request.arg("class")
        rates = {r["id"]: r for r in store.tax_rates if not tax_class or r.get("class") == tax_class}

        def render(rate_id):
            r = rates[rate_id]
            return {"id": r["id"], "country": r.get("country", "SE"), "state": r.get("state", ""),
                    "postcode": "", "city": "", "rate": r["rate"], "name": r["name"],
                    "priority": r.get("priority", 1), "compound": bool(r.get("compound", False)),
                    "shipping": bool(r.get("shipping")), "order": r.get("order", 0),
                    "class": r.get("class", "standard"), "postcodes": [], "cities": [],
                    "_links": self._links(store, f"/taxes/{r['id']}", "/taxes")}
        return self._paged_response(store, request, sorted(rates), render, "taxes", paging)

    def _tax_classes_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return wp_response([{**c, "_links": {"collection": [{"href": f"{store.home()}{REST_BASE}/taxes/classes"}]}}
                            for c in store.tax_classes])

    def _report_order_totals(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        """``WC_REST_Report_Orders_Totals_Controller``: every registered status, custom ones too."""
        counts: dict[str, int] = {}
        for order in store.orders.values():
            counts[order.get("status")] = counts.get(order.get("status"), 0) + 1
        return wp_response([{"slug": slug, "name": name, "total": counts.get(slug, 0)}
                            for slug, name in store.order_statuses()])

    # -- controls ------------------------------------------------------------------------------------
    def _control(self, handler):
        def wrapped(request: SandboxRequest) -> SandboxResponse:
            try:
                with self.lock:
                    store = self.stores.get(request.params.get("prefix", ""))
                    if store is None and handler is not self._ctl_flush:
                        return json_response({"error": "no store at this prefix",
                                              "prefix": request.params.get("prefix", "")}, 404)
                    if store is not None and not store.settings.get("home_url"):
                        store.seen_home = f"{request.scheme}://{request.host}{store.prefix}"
                if handler is self._ctl_flush:
                    return handler(store, request)
                with self.lock:
                    return handler(store, request)
            except WooError as error:
                return json_response(error.body(), error.status)
            except (ValueError, KeyError, TypeError) as exc:
                return json_response({"error": f"{type(exc).__name__}: {exc}"}, 400)
        return wrapped

    def _ctl_reset(self, request: SandboxRequest) -> SandboxResponse:
        data = request.json() or {}
        self.reset()
        if data.get("root_store"):
            self.add_store(**data["root_store"])
        if data.get("demo"):
            self.seed_demo()
        return json_response({"stores": [s.prefix for s in self.stores.values()]})

    def _ctl_store_create(self, request: SandboxRequest) -> SandboxResponse:
        data = request.json() or {}
        try:
            store = self.add_store(**data)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 409)
        return json_response(self._store_summary(store), 201)

    def _ctl_stores_list(self, request: SandboxRequest) -> SandboxResponse:
        with self.lock:
            return json_response([self._store_summary(s) for s in self.stores.values()])

    def _store_summary(self, store: Store) -> dict:
        return {"prefix": store.prefix, "home_url": store.home(), "consumer_keys": list(store.keys),
                "prices_include_tax": store.prices_include_tax, "version": store.settings["version"],
                "products": len(store.products), "orders": len(store.orders), "customers": len(store.customers),
                "webhooks": len(store.webhooks), "order_statuses": [s for s, _ in store.order_statuses()]}

    def _ctl_seed(self, request: SandboxRequest) -> SandboxResponse:
        data = request.json()
        if isinstance(data, dict) and data.get("demo"):
            self.seed_demo()
        else:
            configs = data if isinstance(data, list) else (data or {}).get("stores", [])
            for config in configs:
                config = dict(config)
                products, orders = config.pop("products", []), config.pop("orders", [])
                customers, fixtures = config.pop("customers", []), config.pop("fixtures", False)
                with self.lock:
                    store = self.stores.get(config.get("prefix", "")) or self.add_store(**config)
                    if fixtures:
                        self._load_fixture_catalogue(store)
                    self.import_products(store, products)
                    self.import_customers(store, customers)
                    for order in orders:
                        self.import_order(store, order)
        with self.lock:
            return json_response([self._store_summary(s) for s in self.stores.values()])

    def _ctl_webhook_config(self, request: SandboxRequest) -> SandboxResponse:
        data = request.json() or {}
        with self.lock:
            if "delivery_delay" in data:
                self.delivery_delay = float(data["delivery_delay"])
            if "delivery_timeout" in data:
                self.delivery_timeout = float(data["delivery_timeout"])
            return json_response({"delivery_delay": self.delivery_delay, "delivery_timeout": self.delivery_timeout})

    def _ctl_import_products(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        data = request.json()
        items = data if isinstance(data, list) else (data.get("items") if isinstance(data, dict) and "items" in data
                                                     else [data])
        parent_id = request.arg("parent_id")
        imported = self.import_products(store, items, parent_id=int(parent_id) if parent_id else None,
                                        new_ids=_truthy(request.arg("new_id")))
        return json_response([{"id": p["id"], "sku": p.get("sku", ""), "type": p.get("type")} for p in imported], 201)

    def _ctl_import_orders(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        data = request.json()
        new_id = _truthy(request.arg("new_id"))
        if isinstance(data, dict) and "order" in data:
            new_id = new_id or _truthy(data.get("new_id"))
            data = data["order"]
        items = data if isinstance(data, list) else [data]
        orders = [self.import_order(store, o, new_id=new_id) for o in items]
        return json_response([{"id": o["id"], "status": o.get("status"), "total": o.get("total")} for o in orders], 201)

    def _ctl_import_customers(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        data = request.json()
        customers = self.import_customers(store, data if isinstance(data, list) else [data])
        return json_response([{"id": c["id"], "email": c.get("email")} for c in customers], 201)

    def _ctl_import_coupons(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        data = request.json()
        for coupon in data if isinstance(data, list) else [data]:
            coupon = dict(coupon)
            coupon["code"] = str(coupon["code"]).lower()
            coupon.setdefault("id", store.next_id("post"))
            store.bump("post", int(coupon["id"]))
            store.coupons[coupon["code"]] = coupon
        self.changed()
        return json_response(sorted(store.coupons), 201)

    def _ctl_add_key(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        data = request.json() or {}
        store.keys[data["consumer_key"]] = {"consumer_secret": data["consumer_secret"],
                                            "permissions": data.get("permissions", "read_write"), "nonces": {}}
        self.changed()
        return json_response({"consumer_keys": list(store.keys)}, 201)

    def _ctl_order_statuses(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        data = request.json() or {}
        statuses = data.get("statuses") if isinstance(data, dict) and "statuses" in data else (
            {data["slug"]: data.get("label") or data["slug"]} if isinstance(data, dict) and "slug" in data else data)
        for slug, label in (statuses or {}).items():
            store.extra_statuses[slug[3:] if slug.startswith("wc-") else slug] = label
        store.touch()
        self.changed()
        return json_response([{"slug": s, "name": n} for s, n in store.order_statuses()], 201)

    def _ctl_flush(self, store: Store | None, request: SandboxRequest) -> SandboxResponse:
        return json_response({"delivered": self.flush_webhooks(request.params.get("prefix", ""))})

    def _ctl_deliveries(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        return json_response({"deliveries": list(store.deliveries),
                              "pending": [{"webhook_id": w, "resource_id": r, "topic": e["topic"]}
                                          for (w, r), e in store.pending.items()]})

    def _ctl_clock(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        if request.method == "POST":
            data = request.json() or {}
            if data.get("now"):
                target = datetime.fromisoformat(str(data["now"]).replace("Z", "+00:00"))
                if target.tzinfo is None:
                    target = target.replace(tzinfo=timezone.utc)
                store.clock_offset = (target - datetime.now(timezone.utc)).total_seconds()
            else:
                store.clock_offset = float(data.get("offset_seconds", 0))
            self.changed()
        local, gmt = store.stamp()
        return json_response({"offset_seconds": store.clock_offset, "now": local, "now_gmt": gmt})

    def _ctl_settings(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        data = request.json() or {}
        for key in ("prices_include_tax", "version", "home_url", "currency", "currency_symbol"):
            if key in data:
                store.settings[key] = data[key]
        store.touch()
        self.changed()
        return json_response(store.settings)

    # -- public set-up API -----------------------------------------------------------------------------
    def add_store(self, prefix: str = "", consumer_key: str | None = None, consumer_secret: str | None = None,
                  permissions: str = "read_write", keys: list | None = None, prices_include_tax: bool = True,
                  version: str = WC_VERSION, home_url: str | None = None, currency: str = "SEK",
                  order_statuses: dict | None = None, coupons: list | None = None) -> Store:
        """Create an empty store at ``prefix`` ("" = root, "/butik2" = a subdirectory install)."""
        prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        with self.lock:
            if prefix in self.stores:
                raise ValueError(f"a store already exists at {prefix or '/'}")
            store = Store(prefix, prices_include_tax=prices_include_tax, version=version, home_url=home_url,
                          currency=currency, order_statuses={(k[3:] if k.startswith("wc-") else k): v
                                                             for k, v in (order_statuses or {}).items()})
            for key in ([{"consumer_key": consumer_key, "consumer_secret": consumer_secret,
                          "permissions": permissions}] if consumer_key else []) + list(keys or []):
                store.keys[key["consumer_key"]] = {"consumer_secret": key["consumer_secret"],
                                                   "permissions": key.get("permissions", "read_write"), "nonces": {}}
            for coupon in coupons or []:
                store.coupons[str(coupon["code"]).lower()] = dict(coupon, code=str(coupon["code"]).lower())
            self.stores[prefix] = store
            self.changed()
            return store

    def store(self, prefix: str = "") -> Store:
        return self.stores[prefix]

    def import_products(self, store: Store, items: list, *, parent_id: int | None = None,
                        new_ids: bool = False) -> list[dict]:
        """Store product/variation JSON as given (e.g. fixtures), keeping ids, prices and dates."""
        imported = []
        with self.lock:
            for data in items:
                is_variation = data.get("type") == "variation" or parent_id is not None
                template = VARIATION_TEMPLATE if is_variation else PRODUCT_TEMPLATE
                product = json.loads(json.dumps(template))
                product.update({k: v for k, v in data.items() if k != "_links"})
                if new_ids or not product.get("id"):
                    product["id"] = store.next_id("post")
                store.bump("post", int(product["id"]))
                if is_variation:
                    product["type"] = "variation"
                    if parent_id is not None:
                        product["parent_id"] = parent_id
                if not product.get("date_created"):
                    product["date_created"], product["date_created_gmt"] = store.stamp()
                if not product.get("date_modified"):
                    product["date_modified"], product["date_modified_gmt"] = product["date_created"], product.get(
                        "date_created_gmt")
                old = store.products.get(product["id"])
                if old is not None:
                    store.unindex_sku(old)
                store.products[product["id"]] = product
                store.index_sku(product)
                parent = store.products.get(product.get("parent_id") or 0) if is_variation else None
                if parent is not None and product["id"] not in parent.setdefault("variations", []):
                    parent["variations"].append(product["id"])
                imported.append(product)
            store.touch()
            self.changed()
        return imported

    def import_customers(self, store: Store, items: list) -> list[dict]:
        with self.lock:
            out = []
            for data in items:
                customer = {k: v for k, v in data.items() if k != "_links"}
                if not customer.get("id"):
                    customer["id"] = store.next_id("user")
                store.bump("user", int(customer["id"]))
                store.customers[customer["id"]] = customer
                out.append(customer)
            store.touch()
            self.changed()
            return out

    def import_order(self, store: Store, data: dict, *, new_id: bool = False) -> dict:
        """Store a full order JSON as given (its totals kept), e.g. a fixture file."""
        with self.lock:
            order = json.loads(json.dumps({k: v for k, v in data.items() if k != "_links"}))
            if new_id or not order.get("id"):
                order["id"] = store.next_id("post")
                order["number"] = str(order["id"])
            store.bump("post", int(order["id"]))
            for key in ("line_items", "tax_lines", "shipping_lines", "fee_lines", "coupon_lines", "refunds",
                        "meta_data"):
                order.setdefault(key, [])
            for key in ("line_items", "tax_lines", "shipping_lines", "fee_lines", "coupon_lines"):
                for item in order[key]:
                    store.bump("item", int(item.get("id") or 0))
                    for meta in item.get("meta_data", []):
                        store.bump("meta", int(meta.get("id") or 0))
                    if key in ("line_items", "shipping_lines", "fee_lines"):
                        item["__total"] = item.get("total", "0")
                        if key == "line_items":
                            item["__subtotal"] = item.get("subtotal", item.get("total", "0"))
            if not order.get("date_created"):
                order["date_created"], order["date_created_gmt"] = store.stamp()
            if not order.get("date_modified"):
                order["date_modified"] = order["date_created"]
                order["date_modified_gmt"] = order.get("date_created_gmt")
            order.setdefault("status", "pending")
            order.setdefault("order_key", "wc_order_" + secrets.token_hex(6)[:13])
            order["__stock_reduced"] = any(m.get("key") == "_reduced_stock" for li in order["line_items"]
                                           for m in li.get("meta_data", []))
            store.orders[order["id"]] = order
            store.touch()
            self.changed()
            return order

    def _load_fixture_catalogue(self, store: Store) -> None:
        """The WooCommerce 11 fixture products and coupons, same ids and SKUs; skipped when absent."""
        products_dir = self.fixtures_dir / "products"
        if not products_dir.is_dir():
            logger.info("WooCommerce fixtures not found at %s; the demo stores stay empty", products_dir)
            return
        for path in sorted(products_dir.glob("*.json")):
            data = json.loads(path.read_text("utf-8"))
            items = data if isinstance(data, list) else [data]
            parents = [i for i in items if i.get("type") != "variation"]
            self.import_products(store, parents)
        for path in sorted(products_dir.glob("*.json")):
            data = json.loads(path.read_text("utf-8"))
            items = data if isinstance(data, list) else [data]
            self.import_products(store, [i for i in items if i.get("type") == "variation"])
        customers_dir = self.fixtures_dir / "customers"
        if customers_dir.is_dir():
            self.import_customers(store, [json.loads(p.read_text("utf-8"))
                                          for p in sorted(customers_dir.glob("*.json"))])
        coupons_path = self.fixtures_dir / "settings" / "coupons.json"
        if coupons_path.is_file():
            for coupon in json.loads(coupons_path.read_text("utf-8")):
                coupon = {k: v for k, v in coupon.items() if k != "_links"}
                store.coupons[coupon["code"].lower()] = coupon
                store.bump("post", int(coupon.get("id") or 0))

    def seed_demo(self) -> None:
        """Two shops of one customer: the root store and ``/butik2``, both with the fixture catalogue."""
        with self.lock:
            for prefix, _name, key, secret, _unit in demo.WOO_STORES:
                self.stores.pop(prefix, None)
                store = self.add_store(prefix, consumer_key=key, consumer_secret=secret, permissions="read_write",
                                       prices_include_tax=True)
                self._load_fixture_catalogue(store)
            self.changed()

    def reset(self) -> None:
        with self.lock:
            self.stores.clear()
            self.changed()

    def state_dump(self) -> dict:
        with self.lock:
            return {"stores": [s.dump() for s in self.stores.values()], "delivery_delay": self.delivery_delay}

    def state_load(self, data: dict) -> None:
        data = _undecimal(data)
        with self.lock:
            self.stores = {}
            for store_data in data.get("stores", []):
                store = Store.load(store_data)
                self.stores[store.prefix] = store
            self.delivery_delay = float(data.get("delivery_delay", self.delivery_delay))
            if any(s.pending for s in self.stores.values()):
                now = time.monotonic()
                for store in self.stores.values():
                    for entry in store.pending.values():
                        entry["due"] = now + self.delivery_delay
                self._ensure_worker()
            self.changed()


def _rate_code(rate: dict) -> str:
    """``WC_Tax::get_rate_code``: COUNTRY-STATE-NAME-PRIORITY, empty parts left out."""
    parts = (rate.get("country", "SE"), rate.get("state", ""), (rate.get("name") or "TAX").upper(),
             str(rate.get("priority", 1)))
    return "-".join(p for p in parts if p)


def _php_str_full(value: Decimal) -> str:
    """An unrounded tax amount as stored (WooCommerce keeps line taxes unrounded)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text
