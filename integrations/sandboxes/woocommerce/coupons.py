"""Coupons: how an order's coupon lines become discounts on its lines, and ``GET /coupons``.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
- ``includes/class-wc-discounts.php``: ``set_items_from_order`` (prices in cents, incl. tax when
  the store's prices include tax, items sorted by price, highest first), ``apply_coupon``,
  ``apply_coupon_percent``, ``apply_coupon_fixed_product``, ``apply_coupon_fixed_cart``,
  ``apply_coupon_remainder``;
- ``includes/abstracts/abstract-wc-order.php``: ``apply_coupon`` / ``recalculate_coupons``
  (the coupon lines' ``discount`` / ``discount_tax``, ``coupon_info`` meta);
- ``includes/rest-api/Controllers/Version3/class-wc-rest-orders-controller.php``:
  ``coupon_lines`` replaces all coupons (``woocommerce_rest_invalid_coupon``);
- ``includes/rest-api/Controllers/Version3/class-wc-rest-coupons-controller.php``: the list.
"""
from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from ..http import SandboxRequest, SandboxResponse
from .common import ZERO, WooError, _dec, _micro, _php_number, _php_str, _public, wp_json
from .store import Store


class CouponsMixin:
    """``WC_Discounts`` applied to an order, and the read-only coupons list."""

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

    # -- coupons (read only) --
    def _coupons_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        coupons = sorted(store.coupons.values(), key=lambda c: c.get("id", 0), reverse=self._order_dir(request))
        by_id = {c.get("id", 0): c for c in coupons}
        return self._paged_response(store, request, [c.get("id", 0) for c in coupons],
                                    lambda i: {**_public(by_id[i]), "_links": self._links(
                                        store, f"/coupons/{i}", "/coupons")}, "coupons", paging)
