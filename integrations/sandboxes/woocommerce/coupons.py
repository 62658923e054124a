"""Coupons: how an order's coupon lines become discounts on its lines, and ``GET /coupons``.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
- ``includes/class-wc-discounts.php``: ``set_items_from_order`` (line prices in cents, incl. tax
  when the store's prices include tax, sorted by ``sort_by_price``: unit price, dearest first),
  ``apply_coupon``, ``apply_coupon_percent``, ``apply_coupon_fixed_product``,
  ``apply_coupon_fixed_cart``, ``apply_coupon_remainder`` (the öre a fixed-cart coupon leaves over,
  one per unit, in that order);
- ``includes/abstracts/abstract-wc-order.php``: ``apply_coupon`` / ``recalculate_coupons``
  (the coupon lines' ``discount`` / ``discount_tax``, ``coupon_info`` meta);
- ``includes/rest-api/Controllers/Version3/class-wc-rest-orders-controller.php``:
  ``coupon_lines`` replaces all coupons (``woocommerce_rest_invalid_coupon``);
- ``includes/rest-api/Controllers/Version3/class-wc-rest-coupons-controller.php``: the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal

from ..http import SandboxRequest, SandboxResponse
from .common import ZERO, WooError, _dec, _micro, _php_number, _php_str, _public, wp_json
from .store import Store


def _round_half_up(value: Decimal) -> Decimal:
    """``NumberUtil::round( $value )``: PHP's round(), half away from zero, to whole öre."""
    return value.quantize(Decimal("1"), rounding=ROUND_HALF_UP)


def _round_discount(value: Decimal) -> Decimal:
    """``wc_round_discount( $value, 0 )``: rounds with ``WC_DISCOUNT_ROUNDING_MODE``, which WooCommerce
    defines as ``PHP_ROUND_HALF_DOWN`` (class-woocommerce.php ``define_constants``)."""
    return value.quantize(Decimal("1"), rounding=ROUND_HALF_DOWN)


def _add_number_precision(value: Decimal) -> Decimal:
    """``wc_add_number_precision``: an amount in öre, rounded to ``wc_get_rounding_precision() - 2``
    (4) decimals."""
    return (value * 100).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass
class DiscountItem:
    """One entry of ``WC_Discounts::$items``: an order line's key, quantity and price in öre (the whole
    line's subtotal, not a unit price)."""

    key: int
    quantity: int
    price: Decimal


class WcDiscounts:
    """``WC_Discounts`` (includes/class-wc-discounts.php) built ``set_items_from_order``, amounts in öre.

    Several coupons go through one instance in the order they are listed on the order, as
    ``WC_Abstract_Order::recalculate_coupons`` applies them; each sees the discounts of the ones
    before (``get_discounted_price_in_cents``). ``woocommerce_calc_discounts_sequentially`` is ``no``
    (the Swedish store's setting), so percent coupons discount the undiscounted price.
    """

    def __init__(self, items: list[DiscountItem]):
        # uasort( $this->items, 'sort_by_price' ): the unit price ($a->price / $a->quantity when the
        # quantity is above 1), dearest first; so the dearest units take the öre a fixed-cart coupon
        # leaves over. (Before woocommerce#30070 it multiplied the line price by the quantity again.)
        # PHP 8's sort is stable, as Python's is: lines of one unit price keep the order's item order.
        self.items = sorted(
            items,
            key=lambda item: item.price / item.quantity if item.quantity > 1 else item.price,
            reverse=True,
        )
        self.discounts: dict[str, dict[int, Decimal]] = {}

    def get_discount(self, key: int) -> Decimal:
        """What every coupon applied so far took off one item (``get_discount( $key, true )``)."""
        return sum((discounts.get(key, ZERO) for discounts in self.discounts.values()), ZERO)

    def get_discounted_price_in_cents(self, item: DiscountItem) -> Decimal:
        """``absint( NumberUtil::round( $item->price - $this->get_discount( $item->key, true ) ) )``."""
        return abs(_round_half_up(item.price - self.get_discount(item.key)))

    def apply_coupon(self, code: str, discount_type: str, amount: Decimal) -> None:
        """``apply_coupon( $coupon, false )``: ``amount`` is the coupon's own (``get_amount``); coupons
        here carry no product or category restrictions, so every item with something left to discount
        and a quantity is one to apply it to (``get_items_to_apply_coupon``)."""
        self.discounts.setdefault(code, {item.key: ZERO for item in self.items})
        items_to_apply = [
            item for item in self.items if self.get_discounted_price_in_cents(item) != 0 and item.quantity > 0
        ]
        if discount_type == "percent":
            self.apply_coupon_percent(code, items_to_apply, amount)
        elif discount_type == "fixed_product":
            self.apply_coupon_fixed_product(code, items_to_apply, _add_number_precision(amount))
        else:
            # fixed_cart; a custom type would go through apply_coupon_custom, which no store here has.
            self.apply_coupon_fixed_cart(code, items_to_apply, _add_number_precision(amount))

    def apply_coupon_percent(
        self, code: str, items_to_apply: list[DiscountItem], percent: Decimal
    ) -> Decimal:
        total_discount = cart_total = ZERO
        for item in items_to_apply:
            discounted_price = self.get_discounted_price_in_cents(item)
            price_to_discount = _round_half_up(item.price)
            # ( $price_to_discount / $item->quantity ) * $apply_quantity with no usage limit is the price itself.
            discount = (price_to_discount * percent / 100).to_integral_value(rounding=ROUND_FLOOR)
            discount = _round_discount(min(discounted_price, discount))
            cart_total += price_to_discount
            total_discount += discount
            self.discounts[code][item.key] += discount
        # What the whole cart would get, against what the lines got: the difference goes round as remainder.
        cart_total_discount = _round_discount(cart_total * percent / 100)
        if total_discount < cart_total_discount:
            total_discount += self.apply_coupon_remainder(
                code, items_to_apply, cart_total_discount - total_discount
            )
        return total_discount

    def apply_coupon_fixed_product(
        self, code: str, items_to_apply: list[DiscountItem], amount: Decimal
    ) -> Decimal:
        """``amount`` öre off each unit, never more than is left of the line."""
        total_discount = ZERO
        for item in items_to_apply:
            discounted_price = self.get_discounted_price_in_cents(item)
            discount = min(discounted_price, amount * item.quantity)
            total_discount += discount
            self.discounts[code][item.key] += discount
        return total_discount

    def apply_coupon_fixed_cart(
        self, code: str, items_to_apply: list[DiscountItem], amount: Decimal
    ) -> Decimal:
        """The amount split evenly per unit, rounded down to whole öre (``absint( $amount / $item_count )``);
        what that leaves goes round again, and once it is less than one öre per unit
        ``apply_coupon_remainder`` hands it out one öre at a time."""
        total_discount = ZERO
        items_to_apply = [item for item in items_to_apply if self.get_discounted_price_in_cents(item) > 0]
        item_count = sum(item.quantity for item in items_to_apply)
        if not item_count:
            return total_discount
        if not amount:
            # "If there is no amount we still send it through so filters are fired."
            return self.apply_coupon_fixed_product(code, items_to_apply, ZERO)
        per_item_discount = (amount / item_count).to_integral_value(rounding=ROUND_DOWN)
        if per_item_discount > 0:
            total_discount = self.apply_coupon_fixed_product(code, items_to_apply, per_item_discount)
            # "If there is still discount remaining, repeat the process."
            if 0 < total_discount < amount:
                total_discount += self.apply_coupon_fixed_cart(code, items_to_apply, amount - total_discount)
        elif amount > 0:
            total_discount += self.apply_coupon_remainder(code, items_to_apply, amount)
        return total_discount

    def apply_coupon_remainder(
        self, code: str, items_to_apply: list[DiscountItem], amount: Decimal
    ) -> Decimal:
        """One öre per unit, item after item in sorted order, each unit of an item before the next item,
        until ``amount`` is given: the first items in ``sort_by_price`` order take the extra öre."""
        total_discount = ZERO
        for item in items_to_apply:
            for _ in range(item.quantity):
                discount = min(self.get_discounted_price_in_cents(item), Decimal(1))
                total_discount += discount
                self.discounts[code][item.key] += discount
                if total_discount >= amount:
                    return total_discount
        return total_discount


class CouponsMixin:
    """``WC_Discounts`` applied to an order, and the read-only coupons list."""

    def _apply_coupons(self, store: Store, order: dict, posted: list, keep: bool = False) -> None:
        codes = []
        for entry in posted:
            code = str((entry or {}).get("code") or "").strip().lower()
            if not code:
                continue
            if code not in store.coupons:
                raise WooError(
                    "woocommerce_rest_invalid_coupon",
                    f'Coupon "{code}" cannot be applied because it does not exist.',
                    400,
                )
            if code not in codes:
                codes.append(code)
        include = store.prices_include_tax
        items = []
        for li in order["line_items"]:
            # set_items_from_order: the line subtotal in öre, plus its subtotal tax when prices include tax.
            price = _add_number_precision(_dec(li["__subtotal"]))
            if include:
                price += _add_number_precision(_dec(li["subtotal_tax"]))
            items.append(DiscountItem(key=li["id"], quantity=int(li.get("quantity") or 0), price=price))
        wc_discounts = WcDiscounts(items)
        for code in codes:
            coupon = store.coupons[code]
            wc_discounts.apply_coupon(
                code, coupon.get("discount_type", "fixed_cart"), _dec(coupon.get("amount"))
            )
        discounts = wc_discounts.discounts
        country = self._tax_country(order)
        by_item: dict[int, Decimal] = {}
        for code_discounts in discounts.values():
            for key, cents in code_discounts.items():
                by_item[key] = by_item.get(key, ZERO) + cents / 100
        for li in order["line_items"]:
            amount = by_item.get(li["id"], ZERO)
            taxable = li.get("__tax_status", "taxable") == "taxable"
            if include and taxable:
                amount -= sum(
                    self._inclusive_taxes(amount, store.rates(li.get("tax_class", ""), country)).values(),
                    ZERO,
                )
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
            info = wp_json(
                [coupon.get("id", 0), code, None if kind == "fixed_cart" else kind, nominal]
            ).decode()
            line = old.get(code) or {
                "id": store.next_id("item"),
                "meta_data": [self._item_meta(store, "coupon_info", info)],
            }
            line.update({"code": code, "discount": _php_str(amount), "discount_tax": _php_str(discount_tax)})
            coupon_lines.append(
                {
                    "id": line["id"],
                    "code": code,
                    "discount": line["discount"],
                    "discount_tax": line["discount_tax"],
                    "meta_data": line["meta_data"],
                    "discount_type": kind,
                    "nominal_amount": nominal,
                    "free_shipping": bool(coupon.get("free_shipping", False)),
                }
            )
        self._calculate_totals(store, order)
        order["coupon_lines"] = coupon_lines

    # -- coupons (read only) --
    def _coupons_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        coupons = sorted(
            store.coupons.values(), key=lambda c: c.get("id", 0), reverse=self._order_dir(request)
        )
        by_id = {c.get("id", 0): c for c in coupons}
        return self._paged_response(
            store,
            request,
            [c.get("id", 0) for c in coupons],
            lambda i: {**_public(by_id[i]), "_links": self._links(store, f"/coupons/{i}", "/coupons")},
            "coupons",
            paging,
        )
