"""One WooCommerce install (a WordPress site, maybe a subdirectory one): the ``Store`` model.

The store's options (``woocommerce_prices_include_tax``, currency, version, home URL), its tax
rates as ``WC_Tax`` reads them from ``wp_woocommerce_tax_rates``, the id counters WordPress and
WooCommerce share (``wp_posts`` ids for products, orders, refunds and coupons; order item ids;
meta ids; comment ids for order notes), the store clock and the state file (dump/load).

A store also knows which plugins and features it has (``plugins``, ``features``,
``payment_settings``, ``emails``: see ``configure``) and keeps what those leave behind outside the
order itself: the payment providers' side of each order (``payments``), the fulfillments, the
e-mails WooCommerce sent and a log of every status write (for tests and benchmarks).

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
- ``includes/wc-order-functions.php``: ``wc_get_order_statuses`` (the core statuses, plus
  ``checkout-draft`` added by ``src/Blocks/Domain/Services/DraftOrders.php``);
- ``includes/class-wc-tax.php``: ``find_rates``; ``includes/wc-core-functions.php``:
  ``wc_round_tax_total`` (half-down with ``WC_TAX_ROUNDING_MODE`` when prices include tax).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal

from .common import CENT, STORE_TIMEZONE, WC_VERSION, _dec, _iso, _php_number

CORE_ORDER_STATUSES = [
    ("pending", "Pending payment"),
    ("processing", "Processing"),
    ("on-hold", "On hold"),
    ("completed", "Completed"),
    ("cancelled", "Cancelled"),
    ("refunded", "Refunded"),
    ("failed", "Failed"),
    ("checkout-draft", "Draft"),
]

# Plugins a store can have (``Store.plugins``): the shipment-tracking extensions and the payment
# plugins whose order management captures on completion (tracking.py, payments.py).
KNOWN_PLUGINS = ("shipment_tracking", "ast", "klarna", "nexi", "svea")
# A new store has the payment plugins (so orders paid with them behave as on a store that has them)
# and no tracking plugin.
DEFAULT_PLUGINS = ["klarna", "nexi", "svea"]
DEFAULT_FEATURES = {"fulfillments": False}  # FeaturesController: 'fulfillments' enabled_by_default false
# The plugins' own defaults: Klarna's kom_auto_capture "yes" (KOM/KP settings), Nexi's
# dibs_manage_orders "no" (nets-easy-settings.php), Svea's sync_order_completion "yes".
DEFAULT_PAYMENT_SETTINGS = {
    "kom_auto_capture": "yes",
    "dibs_manage_orders": "no",
    "sync_order_completion": "yes",
}
LOG_LIMIT = 100_000  # status writes and e-mails kept per store

# The Swedish store of the fixtures (GET /taxes, /taxes/classes).
SWEDISH_TAX_RATES = [
    {"id": 1, "rate": "25.0000", "name": "Moms 25%", "shipping": True, "class": "standard"},
    {"id": 2, "rate": "12.0000", "name": "Moms 12%", "shipping": False, "class": "reduced-rate"},
    {"id": 3, "rate": "6.0000", "name": "Moms 6%", "shipping": False, "class": "books"},
    {"id": 4, "rate": "0.0000", "name": "Moms 0%", "shipping": False, "class": "zero-rate"},
]
SWEDISH_TAX_CLASSES = [
    {"slug": "standard", "name": "Standard rate"},
    {"slug": "books", "name": "Books"},
    {"slug": "reduced-rate", "name": "Reduced rate"},
    {"slug": "zero-rate", "name": "Zero rate"},
]


class Store:
    """One WooCommerce install: its keys, settings, catalogue, orders and webhooks."""

    def __init__(
        self,
        prefix: str = "",
        *,
        prices_include_tax: bool = True,
        version: str = WC_VERSION,
        home_url: str | None = None,
        currency: str = "SEK",
        order_statuses: dict | None = None,
        tax_rates: list | None = None,
    ):
        self.prefix = prefix
        self.keys: dict[str, dict] = {}
        self.settings = {
            "prices_include_tax": prices_include_tax,
            "version": version,
            "home_url": home_url,
            "currency": currency,
            "currency_symbol": "kr",
            # WordPress's blogname and admin_email; the site language (the sandbox's own
            # notes are English, so en_US; sv_SE switches the plugins' translated notes).
            "blogname": "Butik",
            "admin_email": "admin@shop.example",
            "language": "en_US",
            # woocommerce_price_thousand_sep / _decimal_sep as the fixtures' store has them.
            "price_thousand_sep": "",
            "price_decimal_sep": ",",
        }
        self.plugins: list[str] = list(DEFAULT_PLUGINS)
        self.features: dict = dict(DEFAULT_FEATURES)
        self.payment_settings: dict = dict(DEFAULT_PAYMENT_SETTINGS)
        self.emails: dict[str, bool] = {}  # overrides of WC_Emails' defaults (emails.py)
        self.payments: dict[int, dict] = {}  # the provider's side of an order (payments.py)
        self.fulfillments: dict[int, dict] = {}  # wc_order_fulfillments rows with their meta
        self.email_log: list[dict] = []
        self.status_writes: list[dict] = []
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
        self.counters = {
            "post": 0,
            "user": 1,
            "webhook": 0,
            "item": 0,
            "meta": 0,
            "comment": 0,
            "fulfillment": 0,
            "fulfillment_meta": 0,
            "email": 0,
        }
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
        return (self.settings.get("home_url") or self.seen_home or f"http://127.0.0.1{self.prefix}").rstrip(
            "/"
        )

    @property
    def prices_include_tax(self) -> bool:
        return bool(self.settings["prices_include_tax"])

    def order_statuses(self) -> list[tuple[str, str]]:
        return CORE_ORDER_STATUSES + [
            (k, v) for k, v in self.extra_statuses.items() if k not in dict(CORE_ORDER_STATUSES)
        ]

    # -- plugins and features --
    def has_plugin(self, name: str) -> bool:
        return name in self.plugins

    def configure(
        self,
        *,
        plugins: list | None = None,
        features: dict | None = None,
        payment_settings: dict | None = None,
        emails: dict | None = None,
    ) -> None:
        """Plugins installed (a list among ``KNOWN_PLUGINS``), core features (``fulfillments``), the
        payment plugins' order-management settings and which e-mails are enabled; ``None`` leaves one
        as it is, a dict is merged."""
        if plugins is not None:
            unknown = [p for p in plugins if p not in KNOWN_PLUGINS]
            if unknown:
                raise ValueError(f"unknown plugin(s) {unknown}; known: {list(KNOWN_PLUGINS)}")
            self.plugins = [p for p in KNOWN_PLUGINS if p in plugins]
        if features is not None:
            unknown = [f for f in features if f not in DEFAULT_FEATURES]
            if unknown:
                raise ValueError(f"unknown feature(s) {unknown}; known: {list(DEFAULT_FEATURES)}")
            self.features.update({k: bool(v) for k, v in features.items()})
        if payment_settings is not None:
            for key, value in payment_settings.items():
                if value not in ("yes", "no"):
                    raise ValueError(f"payment setting {key} must be 'yes' or 'no'")
                self.payment_settings[key] = value
        if emails is not None:
            self.emails.update({k: bool(v) for k, v in emails.items()})

    def log(self, entries: list, entry: dict) -> None:
        entries.append(entry)
        if len(entries) > LOG_LIMIT:
            del entries[: len(entries) - LOG_LIMIT]

    # -- tax --
    def rates(self, tax_class: str, country: str, *, shipping: bool = False) -> list[dict]:
        tax_class = tax_class or "standard"
        return [
            r
            for r in self.tax_rates
            if r.get("class", "standard") == tax_class
            and r.get("country", "SE") in ("", country)
            and (not shipping or r.get("shipping"))
        ]

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
        field = {
            "date": "date_created_gmt",
            "modified": "date_modified_gmt",
            "title": "name",
            "slug": "slug",
            "name": "name",
            "registered_date": "date_created_gmt",
        }.get(orderby)
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
            "prefix": self.prefix,
            "keys": self.keys,
            "settings": self.settings,
            "tax_rates": self.tax_rates,
            "tax_classes": self.tax_classes,
            "extra_statuses": self.extra_statuses,
            "products": list(self.products.values()),
            "orders": list(self.orders.values()),
            "notes": {str(k): v for k, v in self.notes.items()},
            "refunds": list(self.refunds.values()),
            "customers": list(self.customers.values()),
            "webhooks": list(self.webhooks.values()),
            "coupons": list(self.coupons.values()),
            "counters": self.counters,
            "clock_offset": self.clock_offset,
            "seen_home": self.seen_home,
            "deliveries": self.deliveries[-200:],
            "pending": [{"webhook_id": w, "resource_id": r, **v} for (w, r), v in self.pending.items()],
            "plugins": self.plugins,
            "features": self.features,
            "payment_settings": self.payment_settings,
            "emails": self.emails,
            "payments": {str(k): v for k, v in self.payments.items()},
            "fulfillments": list(self.fulfillments.values()),
            "email_log": self.email_log,
            "status_writes": self.status_writes,
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
        store.plugins = list(data.get("plugins", store.plugins))
        store.features.update(data.get("features", {}))
        store.payment_settings.update(data.get("payment_settings", {}))
        store.emails = dict(data.get("emails", {}))
        store.payments = {int(k): v for k, v in data.get("payments", {}).items()}
        store.fulfillments = {f["id"]: f for f in data.get("fulfillments", [])}
        store.email_log = list(data.get("email_log", []))
        store.status_writes = list(data.get("status_writes", []))
        return store


def _undecimal(value):
    """State files are read with ``parse_float=Decimal``; floats here are JSON numbers, not money."""
    if isinstance(value, Decimal):
        return _php_number(value)
    if isinstance(value, dict):
        return {k: _undecimal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_undecimal(v) for v in value]
    return value


class StateMixin:
    """The whole sandbox's state: every store, for ``state_file`` and ``/_sandbox/reset``."""

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
