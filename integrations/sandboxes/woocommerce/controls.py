"""The sandbox's own routes under ``/_sandbox/`` and ``{prefix}/_sandbox/``, and its set-up API.

Never part of the real API: they stand for what a shop owner does in wp-admin or what a test
needs to arrange (stores, keys, settings with the store's plugins and features, a moved clock,
orders and products imported as a real store answered them, webhook flushing). The controls of
other modules: ``orders/<id>/status`` and ``status-writes`` (``statuses.py``), ``orders/<id>/payment``
and ``payments`` (``payments.py``), ``emails`` (``emails.py``). Where they store a resource "as the shop made it",
the record is kept as given, as WooCommerce's own data stores would hold it.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timezone

from .. import demo
from ..fixtures import WOOCOMMERCE_11
from ..http import SandboxRequest, SandboxResponse, html_table, json_response
from .common import REST_BASE, WC_VERSION, ZERO, WooError, _dec, _truthy
from .emails import email_settings
from .products import PRODUCT_TEMPLATE
from .store import Store
from .variations import VARIATION_TEMPLATE

logger = logging.getLogger(__name__)

WC11_FIXTURES_DIR = WOOCOMMERCE_11


class ControlsMixin:
    """``/_sandbox/`` routes and the set-up API (stores, keys, imports, the demo) they call."""

    index_title = "WooCommerce sandbox"

    def index_html(self, base: str) -> str:
        rows = []
        with self.lock:
            for store in self.stores.values():
                keys = list(store.keys.items()) or [("", {"consumer_secret": "", "permissions": ""})]
                extras = ", ".join(store.plugins + [f for f, on in store.features.items() if on]) or "-"
                for key, grant in keys:
                    rows.append(
                        [
                            f"{base}{store.prefix}/",
                            f"{base}{store.prefix}{REST_BASE}/",
                            key,
                            grant["consumer_secret"],
                            grant["permissions"],
                            "incl. VAT" if store.prices_include_tax else "excl. VAT",
                            len(store.products),
                            len(store.orders),
                            len(store.webhooks),
                            extras,
                        ]
                    )
        return (
            f"<p>Stand-ins for WooCommerce {WC_VERSION} stores on one port, each under its own path "
            "as a WordPress subdirectory install: REST API <code>wc/v3</code>, signed with OAuth 1.0a "
            "(plain HTTP) by the keys below. The keys are the sandbox's, valid nowhere else.</p>"
            + html_table(
                [
                    "store",
                    "REST API base",
                    "consumer key",
                    "consumer secret",
                    "permissions",
                    "prices entered",
                    "products",
                    "orders",
                    "webhooks",
                    "plugins and features",
                ],
                rows,
            )
            + "<p>Each store also answers <code>/wp-json/</code> (the REST index), the shipment-tracking "
            "plugins' routes and the order fulfillments routes while it has them; completing an order "
            "paid with Klarna, Nexi or Svea captures the payment as those plugins do. The controls "
            "<code>settings</code>, <code>payments</code>, <code>emails</code>, <code>status-writes</code>, "
            "<code>orders/{oid}/status</code> and <code>orders/{oid}/payment</code> set and show that.</p>"
        )

    def _control(self, handler):
        def wrapped(request: SandboxRequest) -> SandboxResponse:
            try:
                with self.lock:
                    store = self.stores.get(request.params.get("prefix", ""))
                    if store is None and handler is not self._ctl_flush:
                        return json_response(
                            {"error": "no store at this prefix", "prefix": request.params.get("prefix", "")},
                            404,
                        )
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
        return {
            "prefix": store.prefix,
            "home_url": store.home(),
            "consumer_keys": list(store.keys),
            "prices_include_tax": store.prices_include_tax,
            "version": store.settings["version"],
            "products": len(store.products),
            "orders": len(store.orders),
            "customers": len(store.customers),
            "webhooks": len(store.webhooks),
            "order_statuses": [s for s, _ in store.order_statuses()],
            "plugins": list(store.plugins),
            "features": dict(store.features),
            "payment_settings": dict(store.payment_settings),
        }

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
            return json_response(
                {"delivery_delay": self.delivery_delay, "delivery_timeout": self.delivery_timeout}
            )

    def _ctl_import_products(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        data = request.json()
        items = (
            data
            if isinstance(data, list)
            else (data.get("items") if isinstance(data, dict) and "items" in data else [data])
        )
        parent_id = request.arg("parent_id")
        imported = self.import_products(
            store,
            items,
            parent_id=int(parent_id) if parent_id else None,
            new_ids=_truthy(request.arg("new_id")),
        )
        return json_response(
            [{"id": p["id"], "sku": p.get("sku", ""), "type": p.get("type")} for p in imported], 201
        )

    def _ctl_import_orders(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        data = request.json()
        new_id = _truthy(request.arg("new_id"))
        if isinstance(data, dict) and "order" in data:
            new_id = new_id or _truthy(data.get("new_id"))
            data = data["order"]
        items = data if isinstance(data, list) else [data]
        orders = [self.import_order(store, o, new_id=new_id) for o in items]
        return json_response(
            [{"id": o["id"], "status": o.get("status"), "total": o.get("total")} for o in orders], 201
        )

    def _ctl_import_refunds(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        """``POST {prefix}/_sandbox/orders/<id>/refunds``: one refund or a list, as WooCommerce answers them."""
        order = self._order_by_id(store, int(request.params["oid"]))
        data = request.json()
        refunds = [self.import_refund(store, order, r) for r in (data if isinstance(data, list) else [data])]
        return json_response(
            [{"id": r["id"], "amount": r.get("amount"), "order_status": order["status"]} for r in refunds],
            201,
        )

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
        store.keys[data["consumer_key"]] = {
            "consumer_secret": data["consumer_secret"],
            "permissions": data.get("permissions", "read_write"),
            "nonces": {},
        }
        self.changed()
        return json_response({"consumer_keys": list(store.keys)}, 201)

    def _ctl_order_statuses(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        data = request.json() or {}
        statuses = (
            data.get("statuses")
            if isinstance(data, dict) and "statuses" in data
            else (
                {data["slug"]: data.get("label") or data["slug"]}
                if isinstance(data, dict) and "slug" in data
                else data
            )
        )
        for slug, label in (statuses or {}).items():
            store.extra_statuses[slug[3:] if slug.startswith("wc-") else slug] = label
        store.touch()
        self.changed()
        return json_response([{"slug": s, "name": n} for s, n in store.order_statuses()], 201)

    def _ctl_flush(self, store: Store | None, request: SandboxRequest) -> SandboxResponse:
        return json_response({"delivered": self.flush_webhooks(request.params.get("prefix", ""))})

    def _ctl_deliveries(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        return json_response(
            {
                "deliveries": list(store.deliveries),
                "pending": [
                    {"webhook_id": w, "resource_id": r, "topic": e["topic"]}
                    for (w, r), e in store.pending.items()
                ],
            }
        )

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
        """``{prefix}/_sandbox/settings``: POST changes, GET reads. Besides the store's options (prices incl.
        tax, version, home URL, currency, blogname, admin_email, language, price separators): ``plugins``
        (a list among shipment_tracking, ast, klarna, nexi, svea), ``features`` (``{"fulfillments": bool}``),
        ``payment_settings`` (``kom_auto_capture``, ``dibs_manage_orders``, ``sync_order_completion``:
        "yes"/"no") and ``emails`` (``{"customer_completed_order": false, ...}``)."""
        if request.method == "POST":
            data = request.json() or {}
            for key in (
                "prices_include_tax",
                "version",
                "home_url",
                "currency",
                "currency_symbol",
                "blogname",
                "admin_email",
                "language",
                "price_thousand_sep",
                "price_decimal_sep",
            ):
                if key in data:
                    store.settings[key] = data[key]
            store.configure(
                plugins=data.get("plugins"),
                features=data.get("features"),
                payment_settings=data.get("payment_settings"),
                emails=data.get("emails"),
            )
            store.touch()
            self.changed()
        return json_response(self._store_settings(store))

    def _store_settings(self, store: Store) -> dict:
        return {
            **store.settings,
            "plugins": list(store.plugins),
            "features": dict(store.features),
            "payment_settings": dict(store.payment_settings),
            "emails": email_settings(store),
        }

    # -- public set-up API -----------------------------------------------------------------------------
    def add_store(
        self,
        prefix: str = "",
        consumer_key: str | None = None,
        consumer_secret: str | None = None,
        permissions: str = "read_write",
        keys: list | None = None,
        prices_include_tax: bool = True,
        version: str = WC_VERSION,
        home_url: str | None = None,
        currency: str = "SEK",
        order_statuses: dict | None = None,
        coupons: list | None = None,
        plugins: list | None = None,
        features: dict | None = None,
        payment_settings: dict | None = None,
        emails: dict | None = None,
    ) -> Store:
        """Create an empty store at ``prefix`` ("" = root, "/butik2" = a subdirectory install). ``plugins``,
        ``features``, ``payment_settings`` and ``emails`` as ``Store.configure`` takes them; left out, the
        store has the payment plugins with their own defaults, no tracking plugin, no fulfillments and
        WooCommerce's default e-mails."""
        prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        with self.lock:
            if prefix in self.stores:
                raise ValueError(f"a store already exists at {prefix or '/'}")
            store = Store(
                prefix,
                prices_include_tax=prices_include_tax,
                version=version,
                home_url=home_url,
                currency=currency,
                order_statuses={
                    (k[3:] if k.startswith("wc-") else k): v for k, v in (order_statuses or {}).items()
                },
            )
            store.configure(
                plugins=plugins, features=features, payment_settings=payment_settings, emails=emails
            )
            for key in (
                [
                    {
                        "consumer_key": consumer_key,
                        "consumer_secret": consumer_secret,
                        "permissions": permissions,
                    }
                ]
                if consumer_key
                else []
            ) + list(keys or []):
                store.keys[key["consumer_key"]] = {
                    "consumer_secret": key["consumer_secret"],
                    "permissions": key.get("permissions", "read_write"),
                    "nonces": {},
                }
            for coupon in coupons or []:
                store.coupons[str(coupon["code"]).lower()] = dict(coupon, code=str(coupon["code"]).lower())
            self.stores[prefix] = store
            self.changed()
            return store

    def store(self, prefix: str = "") -> Store:
        return self.stores[prefix]

    def import_products(
        self, store: Store, items: list, *, parent_id: int | None = None, new_ids: bool = False
    ) -> list[dict]:
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
                    product["date_modified"], product["date_modified_gmt"] = (
                        product["date_created"],
                        product.get("date_created_gmt"),
                    )
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
            for key in (
                "line_items",
                "tax_lines",
                "shipping_lines",
                "fee_lines",
                "coupon_lines",
                "refunds",
                "meta_data",
            ):
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
            order["__stock_reduced"] = any(
                m.get("key") == "_reduced_stock"
                for li in order["line_items"]
                for m in li.get("meta_data", [])
            )
            store.orders[order["id"]] = order
            store.touch()
            self.changed()
            return order

    def import_refund(self, store: Store, order: dict, data: dict) -> dict:
        """Store a refund the way the shop made it: the JSON WooCommerce answers for
        ``GET /orders/<id>/refunds/<id>`` (e.g. ``fixtures/woocommerce-11/refunds``), kept as given, with
        none of the refunds controller's checks, no payment and no restocking. The order then shows it as
        ``wc_create_refund`` leaves an order (see ``RefundsMixin._order_refunded``): its ``refunds`` list,
        ``refunded`` once nothing is left to refund, modified now on the store's clock."""
        with self.lock:
            refund = json.loads(json.dumps({k: v for k, v in data.items() if k != "_links"}))
            if not refund.get("id"):
                refund["id"] = store.next_id("post")
            store.bump("post", int(refund["id"]))
            for meta in refund.get("meta_data", []):
                store.bump("meta", int(meta.get("id") or 0))
            for key in ("line_items", "shipping_lines", "fee_lines", "tax_lines"):
                for item in refund.get(key, []):
                    store.bump("item", int(item.get("id") or 0))
                    for meta in item.get("meta_data", []):
                        store.bump("meta", int(meta.get("id") or 0))
            if not refund.get("date_created"):
                refund["date_created"], refund["date_created_gmt"] = store.stamp()
            refund["__order_id"] = order["id"]
            store.refunds[refund["id"]] = refund
            # The refund's tax, negative like its tax lines (WC_Order_Refund::get_total_tax).
            total_tax = sum(
                (
                    _dec(t.get("tax_total")) + _dec(t.get("shipping_tax_total"))
                    for t in refund.get("tax_lines", [])
                ),
                ZERO,
            )
            self._order_refunded(store, order, refund, amount=_dec(refund.get("amount")), total_tax=total_tax)
            store.touch()
            self.changed()
            return refund

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
            self.import_customers(
                store, [json.loads(p.read_text("utf-8")) for p in sorted(customers_dir.glob("*.json"))]
            )
        coupons_path = self.fixtures_dir / "settings" / "coupons.json"
        if coupons_path.is_file():
            for coupon in json.loads(coupons_path.read_text("utf-8")):
                coupon = {k: v for k, v in coupon.items() if k != "_links"}
                store.coupons[coupon["code"].lower()] = coupon
                store.bump("post", int(coupon.get("id") or 0))

    def seed_demo(self) -> None:
        """Two shops of one customer, both with the fixture catalogue: the root store keeps its prices
        including VAT (the fixtures' store A), ``/butik2`` excluding VAT (store B); ``demo.WOO_PRICES_INCLUDE_TAX``."""
        with self.lock:
            for prefix, _name, key, secret, _unit in demo.WOO_STORES:
                self.stores.pop(prefix, None)
                store = self.add_store(
                    prefix,
                    consumer_key=key,
                    consumer_secret=secret,
                    permissions="read_write",
                    prices_include_tax=demo.WOO_PRICES_INCLUDE_TAX.get(prefix, True),
                )
                self._load_fixture_catalogue(store)
            self.changed()
