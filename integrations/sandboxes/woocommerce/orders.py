"""Orders: ``/orders`` and ``/orders/<id>``, their items, totals, status changes and stock.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
- ``includes/rest-api/Controllers/Version3/class-wc-rest-orders-controller.php`` and its parent
  ``Version2/class-wc-rest-orders-v2-controller.php``: ``prepare_object_for_database``,
  ``save_object`` (items first, then ``calculate_totals``, then status / ``set_paid``),
  ``set_item`` / ``prepare_line_items`` (an ``id`` updates that item, ``product_id: null`` or
  ``quantity: 0`` removes it, products by SKU), ``get_order_item_data``, ``get_collection_params``
  (``status`` as an array);
- ``includes/abstracts/abstract-wc-order.php``: ``calculate_totals`` (net lines rounded per line,
  ``update_taxes``, ``tax_round_at_subtotal = no``), ``set_status``;
- ``includes/class-wc-order.php``: ``payment_complete``, ``needs_payment``, ``needs_processing``,
  ``is_editable``, ``status_transition`` (the order note);
- ``includes/wc-stock-functions.php``: ``wc_maybe_reduce_stock_levels`` /
  ``wc_maybe_increase_stock_levels`` (REST orders may oversell);
- ``includes/class-wc-tax.php``: ``calc_inclusive_tax``, ``calc_exclusive_tax``, ``get_rate_code``;
  ``includes/wc-product-functions.php``: ``wc_get_price_excluding_tax``.
Coupons applied to an order live in ``coupons.py`` (``WC_Discounts``). A status change
(``_set_status``) also runs what hooks into it on a real store: the payment plugins' capture on
``completed`` (``payments.py``), WooCommerce's e-mails (``emails.py``) and the status-write log
(``statuses.py``).
"""

from __future__ import annotations

import json
import secrets
import string
from collections import OrderedDict
from decimal import ROUND_HALF_UP, Decimal

from ..http import SandboxRequest, SandboxResponse
from .common import (
    CENT,
    REST_BASE,
    ZERO,
    WooError,
    _dec,
    _invalid_param,
    _line_price,
    _list_param,
    _micro,
    _money,
    _php_number,
    _php_str,
    _php_str_full,
    _public,
    _slugify,
    _truthy,
    wp_response,
)
from .store import Store

PAID_STATUSES = ("processing", "completed")
PAYMENT_COMPLETE_STATUSES = ("on-hold", "pending", "failed", "cancelled")
STOCK_REDUCING_STATUSES = ("processing", "completed", "on-hold")
STOCK_RESTORING_STATUSES = ("cancelled", "pending")
EDITABLE_STATUSES = ("pending", "on-hold", "auto-draft", "checkout-draft")
ADDRESS_KEYS = [
    "first_name",
    "last_name",
    "company",
    "address_1",
    "address_2",
    "city",
    "state",
    "postcode",
    "country",
]

ORDER_ITEM_LISTS = ("line_items", "tax_lines", "shipping_lines", "fee_lines", "coupon_lines")


def _public_order(order: dict) -> dict:
    """An order without the sandbox's own bookkeeping (unrounded amounts, stock flags)."""
    data = _public(order)
    for key in ORDER_ITEM_LISTS:
        if key in data:
            data[key] = [_public(item) for item in data[key]]
    return data


def _rate_code(rate: dict) -> str:
    """``WC_Tax::get_rate_code``: COUNTRY-STATE-NAME-PRIORITY, empty parts left out."""
    parts = (
        rate.get("country", "SE"),
        rate.get("state", ""),
        (rate.get("name") or "TAX").upper(),
        str(rate.get("priority", 1)),
    )
    return "-".join(p for p in parts if p)


class OrdersMixin:
    """The orders controller: orders, their items and totals, status changes and the stock they move."""

    def _status_enum(self, store: Store) -> list[str]:
        return [s for s, _ in store.order_statuses()]

    def _order_out(self, store: Store, order: dict) -> dict:
        data = _public_order(order)
        data["line_items"] = self._line_items_out(store, order.get("line_items", []))
        templates = f"{store.home()}{REST_BASE}/orders/{order['id']}/actions/email_templates"
        extra = {"email_templates": [{"embeddable": True, "href": templates}]}
        if order.get("customer_id"):
            extra["customer"] = [{"href": f"{store.home()}{REST_BASE}/customers/{order['customer_id']}"}]
        data["_links"] = self._links(store, f"/orders/{order['id']}", "/orders", extra=extra)
        return data

    def _line_items_out(self, store: Store, items: list[dict]) -> list[dict]:
        """``get_order_item_data`` (Version2/class-wc-rest-orders-v2-controller.php, used by v3 and by the
        refunds controller) reads ``sku`` and ``global_unique_id`` from ``$item->get_product()`` when it
        builds the answer: the product's values now, not the ones at checkout, and ``null`` once the
        product is deleted. A line of an imported order whose product this store never had keeps what
        the order came with, standing in for the real shop's product."""
        out = []
        for item in items:
            data = _public(item)
            product = store.products.get(self._stock_product_id(item))
            if product is not None:
                data["sku"] = product.get("sku", "")
                data["global_unique_id"] = product.get("global_unique_id", "")
            elif item.get("__product_deleted"):
                data["sku"] = data["global_unique_id"] = None
            out.append(data)
        return out

    def _lines_lose_products(self, store: Store, product_ids: set[int]) -> None:
        """Products deleted for good: ``$item->get_product()`` finds nothing for their lines any more.
        Marked on the lines, since a missing product is otherwise one an imported order's shop had."""
        records = list(store.orders.values()) + list(store.refunds.values())
        for record in records:
            for item in record.get("line_items", []):
                if self._stock_product_id(item) in product_ids:
                    item["__product_deleted"] = True

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
                raise _invalid_param(
                    "status", f"status[{i}] is not one of {', '.join(allowed)}.", "rest_not_in_enum"
                )
        wanted = None if "any" in statuses else set(statuses)
        ids = self._select(
            store, request, "order", store.orders, ("date", "id", "include", "title", "slug", "modified")
        )
        customer = request.arg("customer")
        product = request.arg("product")
        parent = self._id_list(request, "parent")
        search = (request.arg("search") or "").lower()
        items = []
        for order_id in ids:
            order = store.orders[order_id]
            status = order.get("status")
            if (wanted is None and status in ("trash", "auto-draft")) or (
                wanted is not None and status not in wanted
            ):
                continue
            if customer not in (None, "") and str(order.get("customer_id")) != customer:
                continue
            if product and not any(
                str(li.get("product_id")) == product for li in order.get("line_items", [])
            ):
                continue
            if parent and order.get("parent_id") not in parent:
                continue
            if (
                search
                and search not in json.dumps(order.get("billing", {}), ensure_ascii=False).lower()
                and search != str(order_id)
            ):
                continue
            items.append(order)
        items = self._date_filters(request, items)
        return self._paged_response(
            store,
            request,
            [o["id"] for o in items],
            lambda i: self._order_out(store, store.orders[i]),
            "orders",
            paging,
        )

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
            self._log_status_write(store, order, order.get("status"), "trash", "rest")
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
            store,
            request,
            lambda d: self._order_out(store, self._order_create_item(store, d)),
            lambda i, d: self._order_out(
                store, self._order_update_item(store, self._order_by_id(store, i, 400), d)
            ),
            lambda i: self._order_delete_item(store, self._order_by_id(store, i), True),
        )

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
            raise _invalid_param(
                "status", f"status is not one of {', '.join(self._status_enum(store))}.", "rest_not_in_enum"
            )
        order_id = store.next_id("post")
        local, gmt = store.stamp()
        key = "wc_order_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(13))
        order = {
            "id": order_id,
            "parent_id": int(data.get("parent_id") or 0),
            "status": "pending",
            "currency": data.get("currency") or store.settings["currency"],
            "version": store.settings["version"],
            "prices_include_tax": store.prices_include_tax,
            "date_created": local,
            "date_modified": local,
            "discount_total": "0.00",
            "discount_tax": "0.00",
            "shipping_total": "0.00",
            "shipping_tax": "0.00",
            "cart_tax": "0.00",
            "total": "0.00",
            "total_tax": "0.00",
            "customer_id": customer_id,
            "order_key": key,
            "billing": self._address(data.get("billing"), email=True),
            "shipping": self._address(data.get("shipping"), email=False),
            "payment_method": data.get("payment_method") or "",
            "payment_method_title": data.get("payment_method_title") or "",
            "transaction_id": data.get("transaction_id") or "",
            "customer_ip_address": "",
            "customer_user_agent": "",
            "created_via": "rest-api",
            "customer_note": data.get("customer_note") or "",
            "date_completed": None,
            "date_paid": None,
            "cart_hash": "",
            "number": str(order_id),
            "meta_data": [],
            "line_items": [],
            "tax_lines": [],
            "shipping_lines": [],
            "fee_lines": [],
            "coupon_lines": [],
            "refunds": [],
            "payment_url": "",
            "is_editable": True,
            "needs_payment": False,
            "needs_processing": False,
            "date_created_gmt": gmt,
            "date_modified_gmt": gmt,
            "date_completed_gmt": None,
            "date_paid_gmt": None,
            "currency_symbol": store.settings.get("currency_symbol", "kr"),
        }
        order["meta_data"] = self._merge_meta(store, [], data.get("meta_data") or [])
        self._set_items(store, order, data, creating=True)
        self._calculate_totals(store, order)
        if data.get("coupon_lines"):
            self._apply_coupons(store, order, data["coupon_lines"])
        order["__total_at_creation"] = order["total"]  # what a payment provider authorized at checkout
        store.orders[order_id] = order
        self._fire(store, "order.created", order_id)
        self._fulfillments_on_new_order(store, order)
        self._save_status(store, order, data, creating=True)
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
            raise _invalid_param(
                "status", f"status is not one of {', '.join(self._status_enum(store))}.", "rest_not_in_enum"
            )
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
                self._apply_coupons(
                    store, order, [{"code": c["code"]} for c in order["coupon_lines"]], keep=True
                )
        self._save_status(store, order, data, creating=False)
        self._finish_order(store, order)
        self._touch_order(store, order)
        self._fire(store, "order.updated", order["id"])
        self.changed()
        return order

    def _save_status(self, store: Store, order: dict, data: dict, *, creating: bool) -> None:
        """The end of ``WC_REST_Orders_Controller::save_object`` (Version3/class-wc-rest-orders-controller.php,
        as in the v2 controller): the posted status is set first (``if ( ! empty( $request['status'] ) )
        $object->set_status( ... )``, then ``save()``); only after that, for ``set_paid`` true,
        ``payment_complete()`` runs ``if ( $creating || $object->needs_payment() )``. So
        ``{"status": "completed", "set_paid": true}`` on an on-hold order ends completed, and ``set_paid``
        alone on an on-hold order changes nothing (on-hold does not need payment)."""
        status = data.get("status")
        if status:
            self._set_status(store, order, status)
        if _truthy(data.get("set_paid")) and (creating or self._needs_payment(order)):
            self._payment_complete(store, order, data.get("transaction_id") or "")

    @staticmethod
    def _needs_payment(order: dict) -> bool:
        """``WC_Order::needs_payment``: a pending or failed order (``woocommerce_valid_order_statuses_for_payment``)
        with a total above zero."""
        return order.get("status") in ("pending", "failed") and _dec(order.get("total")) > 0

    def _needs_processing(self, store: Store, order: dict) -> bool:
        """``WC_Order::needs_processing``: some line's product is not both virtual and downloadable;
        lines whose product is gone are skipped, and an order without lines needs none."""
        products = (store.products.get(self._stock_product_id(li)) for li in order.get("line_items", []))
        return any(not (p.get("virtual") and p.get("downloadable")) for p in products if p)

    def _finish_order(self, store: Store, order: dict) -> None:
        status = order.get("status")
        order["is_editable"] = status in EDITABLE_STATUSES
        order["needs_payment"] = self._needs_payment(order)
        order["needs_processing"] = self._needs_processing(store, order)
        order["payment_url"] = (
            f"{store.home()}/checkout/order-pay/{order['id']}/?pay_for_order=true&key={order['order_key']}"
        )

    def _payment_complete(self, store: Store, order: dict, transaction_id: str) -> None:
        """``WC_Order::payment_complete`` (includes/class-wc-order.php): only an order in one of
        ``woocommerce_valid_order_statuses_for_payment_complete`` (on-hold, pending, failed, cancelled)
        is marked paid; it becomes processing, or completed when it ``needs_processing()`` nothing."""
        if order.get("status") not in PAYMENT_COMPLETE_STATUSES:
            return
        if transaction_id:
            order["transaction_id"] = transaction_id
        if not order.get("date_paid"):
            order["date_paid"], order["date_paid_gmt"] = store.stamp()
            self._payment_authorized(store, order)
        self._set_status(store, order, "processing" if self._needs_processing(store, order) else "completed")

    def _set_status(
        self,
        store: Store,
        order: dict,
        status: str,
        *,
        by: str = "rest",
        note: str = "",
        author: str = "system",
    ) -> None:
        """``WC_Order::set_status`` + ``save`` + ``status_transition``, in WooCommerce's order: the order is
        saved (``date_modified`` now, ``date_paid`` / ``date_completed``, stock), then
        ``woocommerce_order_status_<to>`` runs (the payment plugins' capture on ``completed``, which
        may itself move the order to ``on-hold`` through this same method), then the transition note
        is added ("<note> Order status changed from A to B.", attributed to ``author``: a person for a
        manual change in wp-admin, else the system), then the ``<from>_to_<to>`` notifications (the
        e-mails). ``by`` (rest, person, plugin, ast) goes to the store's status-write log."""
        old = order.get("status")
        if old == status:
            return
        order["status"] = status
        labels = dict(store.order_statuses())
        if status in PAID_STATUSES and not order.get("date_paid"):
            order["date_paid"], order["date_paid_gmt"] = store.stamp()
            self._payment_authorized(store, order)
        if status == "completed":
            order["date_completed"], order["date_completed_gmt"] = store.stamp()
        if status in STOCK_REDUCING_STATUSES:
            self._reduce_stock(store, order)
        elif status in STOCK_RESTORING_STATUSES:
            self._restore_stock(store, order)
        self._touch_order(store, order)
        self._log_status_write(store, order, old, status, by)
        if status == "completed":
            self._payment_plugins_on_completed(store, order)
        transition = f"Order status changed from {labels.get(old, old)} to {labels.get(status, status)}."
        self._add_note(store, order["id"], f"{note} {transition}".strip(), customer_note=False, author=author)
        self._status_emails(store, order, old, status)

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
        return (
            (order.get("shipping") or {}).get("country")
            or (order.get("billing") or {}).get("country")
            or "SE"
        )

    def _line_item(self, store: Store, order: dict, posted: dict, existing: dict | None) -> dict | None:
        if existing is not None and (
            "product_id" in posted and posted["product_id"] is None or posted.get("quantity") == 0
        ):
            return None
        product_ref = (
            posted
            if existing is None or "product_id" in posted or "variation_id" in posted or "sku" in posted
            else {"product_id": existing["product_id"], "variation_id": existing["variation_id"]}
        )
        product = self._product_for_line(store, product_ref)
        if product is None and existing is None:
            raise WooError(
                "woocommerce_rest_required_product_reference", "Product ID or SKU is required.", 400
            )
        quantity = int(posted.get("quantity", existing["quantity"] if existing else 1) or 0)
        item = existing if existing is not None else {"id": store.next_id("item")}
        is_variation = product is not None and product.get("type") == "variation"
        parent = store.products.get(product.get("parent_id") or 0) if is_variation else None
        if product is not None:
            name = product.get("name", "")
            if parent is not None:
                options = ", ".join(str(a.get("option", "")) for a in product.get("attributes", []))
                name = f"{parent.get('name', '')} - {options}" if options else parent.get("name", "")
            item.update(
                {
                    "name": posted.get("name") or name,
                    "product_id": parent["id"] if parent is not None else product["id"],
                    "variation_id": product["id"] if parent is not None else 0,
                    "tax_class": product.get("tax_class", ""),
                    "__tax_status": product.get("tax_status", "taxable"),
                }
            )
            if existing is None:
                meta = []
                for attribute in product.get("attributes", []) if parent is not None else []:
                    slug = attribute.get("slug") or "pa_" + _slugify(str(attribute.get("name", "")))
                    option = str(attribute.get("option", ""))
                    meta.append(
                        self._item_meta(store, slug, _slugify(option), attribute.get("name", slug), option)
                    )
                item["meta_data"] = meta
        item["quantity"] = quantity
        if "meta_data" in posted:
            item["meta_data"] = item.get("meta_data", []) + [
                self._item_meta(store, m["key"], m.get("value"))
                for m in posted["meta_data"] or []
                if isinstance(m, dict) and "key" in m
            ]
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
                    raise WooError(
                        "woocommerce_rest_invalid_item_id",
                        "Order item ID provided is not associated with order.",
                        400,
                    )
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
                    raise WooError(
                        "woocommerce_rest_invalid_item_id",
                        "Order item ID provided is not associated with order.",
                        400,
                    )
                if item_id and ("method_id" in posted and posted["method_id"] is None):
                    lines.pop(item_id)
                    continue
                line = lines.get(item_id) or {
                    "id": store.next_id("item"),
                    "method_title": "",
                    "method_id": "",
                    "instance_id": "",
                    "__total": "0",
                }
                for key in ("method_title", "method_id", "instance_id"):
                    if key in posted:
                        line[key] = "" if posted[key] is None else str(posted[key])
                if "total" in posted:
                    line["__total"] = _php_str(_dec(posted["total"]))
                line["tax_status"] = "taxable"
                line["meta_data"] = self._merge_meta(
                    store, line.get("meta_data", []), posted.get("meta_data") or []
                )
                lines[line["id"]] = line
            order["shipping_lines"] = list(lines.values())
        if "fee_lines" in data:
            fees = {f["id"]: f for f in order["fee_lines"]}
            for posted in data["fee_lines"] or []:
                item_id = int(posted.get("id") or 0)
                if item_id and item_id not in fees:
                    raise WooError(
                        "woocommerce_rest_invalid_item_id",
                        "Order item ID provided is not associated with order.",
                        400,
                    )
                if item_id and ("name" in posted and posted["name"] is None):
                    fees.pop(item_id)
                    continue
                fee = fees.get(item_id) or {
                    "id": store.next_id("item"),
                    "name": "",
                    "tax_class": "",
                    "tax_status": "taxable",
                    "amount": "",
                    "__total": "0",
                }
                for key in ("name", "tax_class", "tax_status"):
                    if key in posted and posted[key] is not None:
                        fee[key] = posted[key]
                if "total" in posted:
                    fee["__total"] = _php_str(_dec(posted["total"]))
                fee["meta_data"] = self._merge_meta(
                    store, fee.get("meta_data", []), posted.get("meta_data") or []
                )
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
            item["taxes"] = [
                {"id": k, "total": _money(v), "subtotal": _money(subtotal_taxes.get(k, ZERO))}
                for k, v in taxes.items()
            ]
            item["price"] = _line_price(item["__total"], item.get("quantity") or 0)
            for rate_id, value in taxes.items():
                cart_taxes[rate_id] = cart_taxes.get(rate_id, ZERO) + store.tax_round(value)
            subtotal_tax_raw += sum(subtotal_taxes.values(), ZERO)
            total_tax_raw += sum(taxes.values(), ZERO)
        fees_total = ZERO
        for fee in order["fee_lines"]:
            total = _dec(fee.get("__total"))
            rates = (
                store.rates(fee.get("tax_class", ""), country) if fee.get("tax_status") == "taxable" else []
            )
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
        cart_subtotal = sum(
            (_dec(li["__subtotal"]).quantize(CENT, rounding=ROUND_HALF_UP) for li in order["line_items"]),
            ZERO,
        )
        cart_total = sum(
            (_dec(li["__total"]).quantize(CENT, rounding=ROUND_HALF_UP) for li in order["line_items"]), ZERO
        )
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
            line.update(
                {
                    "rate_code": _rate_code(rate),
                    "rate_id": rate_id,
                    "label": rate.get("name", ""),
                    "compound": bool(rate.get("compound", False)),
                    "tax_total": _money(cart_taxes.get(rate_id, ZERO)),
                    "shipping_tax_total": _money(shipping_taxes.get(rate_id, ZERO)),
                    "rate_percent": _php_number(_dec(rate["rate"])),
                    "meta_data": line.get("meta_data", []),
                }
            )
            lines.append(line)
        order["tax_lines"] = lines

    # -- stock (wc-stock-functions.php) --
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

    def _item_meta(
        self, store: Store, key: str, value, display_key: str | None = None, display_value=None
    ) -> dict:
        return {
            "id": store.next_id("meta"),
            "key": key,
            "value": value,
            "display_key": display_key if display_key is not None else key,
            "display_value": display_value if display_value is not None else value,
        }

    # -- OPTIONS /orders --
    def _orders_schema(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        money = {"type": "string", "context": ["view", "edit"], "readonly": True}
        schema = {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "title": "shop_order",
            "type": "object",
            "properties": {
                "id": {
                    "description": "Unique identifier for the resource.",
                    "type": "integer",
                    "context": ["view", "edit"],
                    "readonly": True,
                },
                "parent_id": {
                    "description": "Parent order ID.",
                    "type": "integer",
                    "context": ["view", "edit"],
                },
                "number": {
                    "description": "Order number.",
                    "type": "string",
                    "context": ["view", "edit"],
                    "readonly": True,
                },
                "status": {
                    "description": "Order status.",
                    "type": "string",
                    "default": "pending",
                    "enum": self._status_enum(store),
                    "context": ["view", "edit"],
                },
                "currency": {
                    "description": "Currency the order was created with, in ISO format.",
                    "type": "string",
                    "default": store.settings["currency"],
                    "context": ["view", "edit"],
                },
                "date_modified_gmt": {
                    "description": "The date the order was last modified, as GMT.",
                    "type": "date-time",
                    "context": ["view", "edit"],
                    "readonly": True,
                },
                "total": {"description": "Grand total.", **money},
                "total_tax": {"description": "Sum of all taxes.", **money},
                "prices_include_tax": {
                    "description": "True the prices included tax during checkout.",
                    "type": "boolean",
                    "context": ["view", "edit"],
                    "readonly": True,
                },
                "customer_id": {
                    "description": "User ID who owns the order. 0 for guests.",
                    "type": "integer",
                    "default": 0,
                    "context": ["view", "edit"],
                },
                "set_paid": {
                    "description": "Define if the order is paid. It will set the status to processing "
                    "and reduce stock items.",
                    "type": "boolean",
                    "default": False,
                    "context": ["edit"],
                },
            },
        }
        return wp_response(
            {
                "namespace": "wc/v3",
                "methods": ["GET", "POST"],
                "endpoints": [{"methods": ["GET"], "args": {}}, {"methods": ["POST"], "args": {}}],
                "schema": schema,
                "_links": {"self": [{"href": f"{store.home()}{REST_BASE}/orders"}]},
            },
            200,
            [("Allow", "GET, POST")],
        )
