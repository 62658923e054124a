"""Refunds: ``/orders/<id>/refunds`` and ``/refunds``.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
- ``includes/rest-api/Controllers/Version3/class-wc-rest-order-refunds-controller.php`` (and v2):
  ``prepare_object_for_database`` (``amount`` wins over the lines, ``api_refund``,
  ``api_restock``), delete only with ``force``;
- ``includes/wc-order-functions.php``: ``wc_create_refund`` (negative lines and taxes,
  ``_refunded_item_id``, restocking, a full refund marks the order ``refunded`` through
  ``wc_order_fully_refunded``);
- ``includes/class-wc-order-refund.php``: the refund's fields; the order's ``refunds`` summary
  comes from ``WC_Order::get_refunds`` as the orders controller shows it (negative totals).
"""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal

from ..http import SandboxRequest, SandboxResponse
from .common import (
    REST_BASE,
    ZERO,
    WooError,
    _dec,
    _line_price,
    _money,
    _php_number,
    _php_str,
    _public,
    _truthy,
    wp_response,
)
from .orders import _rate_code
from .store import Store


class RefundsMixin:
    """The order refunds controller (``wc_create_refund``)."""

    def _refund_out(self, store: Store, refund: dict) -> dict:
        data = _public(refund)
        if "line_items" in refund:
            data["line_items"] = self._line_items_out(store, refund["line_items"])
        order_id = refund["__order_id"]
        data["_links"] = self._links(
            store,
            f"/orders/{order_id}/refunds/{refund['id']}",
            f"/orders/{order_id}/refunds",
            up=f"/orders/{order_id}",
            allow=("GET", "DELETE"),
        )
        return data

    def _refunds_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        order = self._order_by_id(store, int(request.params["oid"]))
        ids = [r["id"] for r in order.get("refunds", []) if r["id"] in store.refunds]
        return self._paged_response(
            store,
            request,
            ids,
            lambda i: self._refund_out(store, store.refunds[i]),
            f"orders/{order['id']}/refunds",
            paging,
        )

    def _refunds_all(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        ids = sorted(store.refunds, reverse=self._order_dir(request))
        return self._paged_response(
            store, request, ids, lambda i: self._refund_out(store, store.refunds[i]), "refunds", paging
        )

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
            taxes = OrderedDict(
                (int(t.get("id")), _dec(t.get("refund_total"))) for t in posted.get("refund_tax") or []
            )
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
            raise WooError(
                "woocommerce_rest_invalid_order_refund", "Refund amount must be greater than zero.", 400
            )
        already = sum((-_dec(r["total"]) for r in order.get("refunds", [])), ZERO)
        if amount > _dec(order.get("total")) - already:
            raise WooError("woocommerce_rest_cannot_create_order_refund", "Invalid refund amount.", 500)
        refund_id = store.next_id("post")
        tax_lines = []
        for rate_id, (cart, shipping) in tax_by_rate.items():
            rate = store.rate(rate_id) or {"rate": "0", "name": "", "country": "SE"}
            tax_lines.append(
                {
                    "id": store.next_id("item"),
                    "rate_code": _rate_code(rate),
                    "rate_id": rate_id,
                    "label": rate.get("name", ""),
                    "compound": False,
                    "tax_total": _money(-cart),
                    "shipping_tax_total": _money(-shipping),
                    "rate_percent": _php_number(_dec(rate["rate"])),
                    "meta_data": [],
                }
            )
        full = amount == _dec(order.get("total")) - already
        refund_tax = sum((c + s for c, s in tax_by_rate.values()), ZERO)
        refund = {
            "id": refund_id,
            "date_created": local,
            "date_created_gmt": gmt,
            "amount": _money(amount),
            "reason": data.get("reason") or "",
            "refunded_by": int(data.get("refunded_by") or 1),
            "refunded_payment": _truthy(data.get("api_refund", True)),
            "meta_data": [
                {"id": store.next_id("meta"), "key": "_refund_type", "value": "full" if full else "partial"}
            ],
            "line_items": refund_lines["line"],
            "shipping_lines": refund_lines["shipping"],
            "tax_lines": tax_lines,
            "fee_lines": refund_lines["fee"],
            "__order_id": order["id"],
        }
        store.refunds[refund_id] = refund
        if _truthy(data.get("api_restock", True)):
            for original, quantity in restock:
                product = store.products.get(self._stock_product_id(original))
                if product is None or product.get("manage_stock") is not True:
                    continue
                self._adjust_stock(store, product["id"], quantity)
                meta = next(
                    (m for m in original.get("meta_data", []) if m.get("key") == "_reduced_stock"), None
                )
                if meta is not None:
                    meta["value"] = meta["display_value"] = str(int(meta["value"]) - quantity)
                restocked = next(
                    (m for m in original.get("meta_data", []) if m.get("key") == "_restock_refunded_items"),
                    None,
                )
                if restocked is None:
                    original["meta_data"].append(
                        self._item_meta(store, "_restock_refunded_items", str(quantity))
                    )
                else:
                    restocked["value"] = restocked["display_value"] = str(int(restocked["value"]) + quantity)
        self._order_refunded(store, order, refund, amount=amount, total_tax=-refund_tax)
        self.changed()
        location = f"{store.home()}{REST_BASE}/orders/{order['id']}/refunds/{refund_id}"
        return wp_response(self._refund_out(store, refund), 201, [("Location", location)])

    def _order_refunded(
        self, store: Store, order: dict, refund: dict, *, amount: Decimal, total_tax: Decimal
    ) -> None:
        """What ``wc_create_refund`` (includes/wc-order-functions.php) does to the order once a refund is
        saved. The order lists it in ``refunds``, newest first, with negative totals (the orders
        controller's ``get_formatted_item_data``: ``'-' . wc_format_decimal( $refund->get_amount() )``).
        When ``$remaining_refund_amount - $args['amount']`` leaves nothing to refund the order is fully
        refunded: ``update_status( 'refunded' )`` (``woocommerce_order_fully_refunded_status``); else it
        keeps its status. Then ``set_date_modified( time() )`` and ``woocommerce_order_refunded``, one of
        the hooks of the ``order.updated`` webhook."""
        earlier = [r for r in order.get("refunds", []) if r["id"] != refund["id"]]
        remaining = _dec(order.get("total")) - sum((-_dec(r["total"]) for r in earlier), ZERO)
        summary = {
            "id": refund["id"],
            "reason": refund.get("reason") or "",
            "total": _money(-amount),
            "total_tax": _money(total_tax),
        }
        order["refunds"] = sorted(earlier + [summary], key=lambda r: r["id"], reverse=True)
        if remaining - amount <= 0:
            self._set_status(store, order, "refunded")
        else:
            # woocommerce_order_partially_refunded_notification (WC_Email_Customer_Refunded_Order::trigger_partial)
            self._send_email(store, order, "customer_partially_refunded_order")
        self._touch_order(store, order)
        self._fire(store, "order.updated", order["id"])

    def _refund_line(
        self, store: Store, kind: str, original: dict, quantity: int, total: Decimal, taxes: dict
    ) -> dict:
        tax_total = sum(taxes.values(), ZERO)
        refunded_meta = self._item_meta(store, "_refunded_item_id", str(original["id"]))
        if kind == "line":
            return {
                "id": store.next_id("item"),
                "name": original.get("name", ""),
                "product_id": original.get("product_id", 0),
                "variation_id": original.get("variation_id", 0),
                "quantity": -quantity,
                "tax_class": original.get("tax_class", ""),
                "subtotal": _money(-total),
                "subtotal_tax": _money(-tax_total),
                "total": _money(-total),
                "total_tax": _money(-tax_total),
                "taxes": [{"id": k, "total": _money(-v), "subtotal": _money(-v)} for k, v in taxes.items()],
                "meta_data": [refunded_meta],
                "sku": original.get("sku", ""),
                "global_unique_id": "",
                "price": _line_price(_php_str(total), quantity) if quantity else 0,
                "image": {"id": "", "src": ""},
                "parent_name": original.get("parent_name"),
            }
        if kind == "shipping":
            return {
                "id": store.next_id("item"),
                "method_title": original.get("method_title", ""),
                "method_id": original.get("method_id", ""),
                "instance_id": original.get("instance_id", ""),
                "total": _money(-total),
                "total_tax": _money(-tax_total),
                "taxes": [{"id": k, "total": _money(-v), "subtotal": ""} for k, v in taxes.items()],
                "tax_status": "taxable",
                "meta_data": [refunded_meta],
            }
        return {
            "id": store.next_id("item"),
            "name": original.get("name", ""),
            "tax_class": original.get("tax_class", ""),
            "tax_status": original.get("tax_status", "taxable"),
            "amount": "",
            "total": _money(-total),
            "total_tax": _money(-tax_total),
            "taxes": [{"id": k, "total": _money(-v), "subtotal": ""} for k, v in taxes.items()],
            "meta_data": [refunded_meta],
        }
