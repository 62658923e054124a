"""Articles between WooCommerce and Hogia Smart: pure functions, no I/O.

- A WooCommerce product or variation becomes a Hogia Smart article: number = SKU, name
  ("Product - S, Red" for a variation: no variant structure on the Hogia side), VAT
  rate from the product's tax class through the shop's own tax rates, unit "st".
- A Hogia Smart article becomes the fields of a WooCommerce product or variation that
  the customer's switches allow: name (flow 2), regular price from the ordinary price,
  sale price and its dates from the campaign price, stock.

Campaigns: a campaign whose last day (Swedish date) has passed is no campaign; one that
starts later is written with its dates, and WooCommerce starts the sale on its first day.
WooCommerce applies only the fields a request sets (PHP's ``isset``, false for null): a
date sent as null leaves an old sale window in place, so a date to clear is sent as "".

Prices: Hogia Smart keeps article prices **excluding VAT** (its article register). A
shop that enters prices including VAT (Swedish B2C shops do) gets ``net x (1 + VAT)``,
rounded half up to whole öre, and the other way ``gross / (1 + VAT)``.

Hashes: ``content_hash`` is sha256 over canonical JSON of a mapped payload; the flows
write only when it differs from the hash of what they last wrote.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Mapping

from django.utils import formats, timezone
from django.utils.translation import gettext as _

UNIT = "st"
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
# Used only when the shop's /taxes cannot be read: WooCommerce's Swedish set-up.
DEFAULT_TAX_CLASS_RATES: dict[str, Decimal] = {
    "standard": Decimal(25),
    "reduced-rate": Decimal(12),
    "books": Decimal(6),
    "zero-rate": Decimal(0),
}
# WooCommerce stock statuses the portal sets; "onbackorder" is the shop's own business.
IN_STOCK, OUT_OF_STOCK = "instock", "outofstock"
NO_CAMPAIGN = {"sale_price": "", "date_on_sale_from": "", "date_on_sale_to": ""}


def content_hash(payload: Mapping[str, Any]) -> str:
    """sha256 of the payload as canonical JSON (sorted keys, Decimals as their text)."""
    text = json.dumps(
        payload,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=lambda value: format(value, "f") if isinstance(value, Decimal) else str(value),
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decimal_or_none(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def round_ore(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def gross_from_net(net: Decimal, vat_percent: Decimal) -> Decimal:
    return round_ore(net * (1 + vat_percent / HUNDRED))


def net_from_gross(gross: Decimal, vat_percent: Decimal) -> Decimal:
    # Hogia takes four decimals on prices: keep them, so that the way back rounds to the same öre.
    return (gross / (1 + vat_percent / HUNDRED)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def shop_price(net: Decimal, *, vat_percent: Decimal, prices_include_tax: bool) -> str:
    """A Hogia (net) price as WooCommerce wants it: a string with two decimals."""
    value = gross_from_net(net, vat_percent) if prices_include_tax else round_ore(net)
    return format(value, "f")


# -- taxes --------------------------------------------------------------------------------------


@dataclass
class ShopTaxes:
    """A shop's tax classes and their rate (for the shop's base country)."""

    rate_by_class: dict[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_TAX_CLASS_RATES))
    from_shop: bool = False

    @classmethod
    def from_rates(cls, rates: list[Mapping[str, Any]], *, country: str = "SE") -> "ShopTaxes":
        """From ``GET /taxes``: the first rate per class for the country (or for all countries)."""
        found: dict[str, Decimal] = {}
        for rate in sorted(rates, key=lambda r: (int(r.get("priority") or 1), int(r.get("order") or 0))):
            if rate.get("country") not in (country, "", None):
                continue
            slug = str(rate.get("class") or "standard")
            percent = decimal_or_none(rate.get("rate"))
            if percent is not None and slug not in found:
                found[slug] = percent.normalize() if percent == percent.to_integral() else percent
        if not found:
            return cls()
        return cls(rate_by_class=found, from_shop=True)

    def vat_percent(self, product: Mapping[str, Any]) -> Decimal | None:
        """The VAT rate of a product; None when its tax class has no rate in the shop."""
        if product.get("tax_status") == "none":
            return Decimal(0)
        slug = str(product.get("tax_class") or "standard")
        if slug == "parent":  # a variation that takes its parent's class (resolved by the caller)
            slug = "standard"
        rate = self.rate_by_class.get(slug)
        return None if rate is None else Decimal(int(rate)) if rate == rate.to_integral() else rate

    def tax_class(self, vat_percent: Decimal) -> str | None:
        """The shop's tax class for a rate ("" for standard), None when the shop has none."""
        for slug, rate in self.rate_by_class.items():
            if rate == vat_percent:
                return "" if slug == "standard" else slug
        return None


# -- WooCommerce -> Hogia Smart ----------------------------------------------------------------


class NotMappable(ValueError):
    """A product that cannot become an article; ``reason`` is for support."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def variation_name(parent: Mapping[str, Any], variation: Mapping[str, Any]) -> str:
    """ "Product - S, Red": the parent's name and the variation's attribute values."""
    values = [str(a.get("option")) for a in variation.get("attributes") or [] if a.get("option")]
    base = str(parent.get("name") or variation.get("name") or "").strip()
    return f"{base} - {', '.join(values)}" if values else base


def _stock_keeper(
    product: Mapping[str, Any], parent: Mapping[str, Any] | None = None
) -> Mapping[str, Any] | None:
    """The product whose stock a product or variation sells from, None when the shop keeps none.

    A variation's ``manage_stock`` is "parent" when it sells from its parent's stock
    (``WC_Product_Variation::get_manage_stock``); that counts only while the parent keeps stock.
    """
    manage = product.get("manage_stock")
    if manage is True:
        return product
    if manage == "parent" and parent is not None and parent.get("manage_stock") is True:
        return parent
    return None


def article_from_product(
    product: Mapping[str, Any],
    *,
    taxes: ShopTaxes,
    parent: Mapping[str, Any] | None = None,
    prices_include_tax: bool | None = None,
) -> dict:
    """The Hogia article for a simple product, or for a variation of ``parent``.

    Always number, name, VAT, unit and whether it is a stock article. ``prices_include_tax``
    given (the article is created from the shop: flows 1 and 3, initial sync case 1): the
    ordinary price and the stock balance to start from too.
    """
    sku = str(product.get("sku") or "").strip()
    if not sku:
        raise NotMappable(_("The product has no SKU (article number): give it one in the shop."))
    if len(sku) > 40:
        raise NotMappable(
            _("The SKU %(sku)r is longer than the 40 characters Hogia Smart takes.") % {"sku": sku}
        )
    if product.get("type") == "variable":
        raise NotMappable(_("A variable product is not an article; its variations are."))
    source = dict(product)
    if parent is not None and product.get("tax_class") in ("parent", None):
        source["tax_class"] = parent.get("tax_class")
    vat = taxes.vat_percent(source)
    if vat is None:
        raise NotMappable(
            _("The shop has no rate for tax class %(tax_class)r.") % {"tax_class": source.get("tax_class")}
        )
    name = variation_name(parent, product) if parent is not None else str(product.get("name") or "").strip()
    keeper = _stock_keeper(product, parent)
    # Said either way: an article created without it is a stock article in Hogia Smart.
    article: dict[str, Any] = {
        "number": sku,
        "name": name or sku,
        "unit": UNIT,
        "vatPercent": vat,
        "isStockArticle": keeper is not None,
    }
    if prices_include_tax is not None:
        regular = decimal_or_none(product.get("regular_price"))
        if regular is not None:
            net = net_from_gross(regular, vat) if prices_include_tax else regular
            article["prices"] = {"ordinary": net}
        if keeper is not None:
            article["stockBalance"] = Decimal(int(keeper.get("stock_quantity") or 0))
    return article


# -- Hogia Smart -> WooCommerce ----------------------------------------------------------------


@dataclass(frozen=True)
class Switches:
    """What a flow may write to the shop for an article (from the customer's flow settings)."""

    name: bool = False
    prices: bool = False
    campaign: bool = False
    stock: bool = False

    @property
    def any(self) -> bool:
        return self.name or self.prices or self.campaign or self.stock


def campaign_fields(
    prices: Mapping[str, Any], *, vat_percent: Decimal, prices_include_tax: bool, today: date
) -> dict:
    """``sale_price`` and its dates from a Hogia campaign; all three cleared when there is none."""
    campaign = decimal_or_none(prices.get("campaign"))
    starts, ends = _day(prices.get("campaignFrom")), _day(prices.get("campaignTo"))
    # Days as ISO text compare as dates; a malformed one is the shop's to refuse, per product.
    if campaign is None or (ends is not None and ends < today.isoformat()):
        return dict(NO_CAMPAIGN)
    return {
        "sale_price": shop_price(campaign, vat_percent=vat_percent, prices_include_tax=prices_include_tax),
        # WooCommerce's sale ends at the end of its "to" day; Hogia's campaign includes it.
        "date_on_sale_from": f"{starts}T00:00:00" if starts else "",
        "date_on_sale_to": f"{ends}T23:59:59" if ends else "",
    }


def _day(value: Any) -> str | None:
    text = str(value or "")[:10]
    return text or None


def stock_fields(article: Mapping[str, Any], *, quantity: int | None = None) -> dict:
    """``manage_stock`` and ``stock_quantity`` for a Hogia stock article; a non-stock article
    makes the product sellable without a count.

    ``quantity`` is what the stock rule (``integrations.catalog.stock``) says the shop
    shows; None: Hogia's balance as it is, in whole pieces (WooCommerce counts pieces).
    WooCommerce derives the stock status from the quantity and the product's backorder
    setting, so it is not sent for a counted product.
    """
    if not article.get("isStockArticle", True):
        return {"manage_stock": False, "stock_status": IN_STOCK}
    if quantity is None:
        balance = decimal_or_none(article.get("stockBalance")) or Decimal(0)
        quantity = int(balance.to_integral_value(rounding=ROUND_FLOOR))
    return {"manage_stock": True, "stock_quantity": quantity}


def shop_fields_from_article(
    article: Mapping[str, Any],
    *,
    switches: Switches,
    prices_include_tax: bool,
    stock_quantity: int | None = None,
    today: date | None = None,
) -> dict:
    """The product/variation fields the switches allow, as WooCommerce takes them.

    ``today`` (default: today in the portal's time zone, Europe/Stockholm) decides whether
    a campaign has ended.
    """
    fields: dict[str, Any] = {}
    vat = decimal_or_none(article.get("vatPercent")) or Decimal(0)
    prices = article.get("prices") or {}
    if switches.name:
        fields["name"] = str(article.get("name") or article.get("number"))
    if switches.prices:
        ordinary = decimal_or_none(prices.get("ordinary"))
        fields["regular_price"] = (
            ""
            if ordinary is None
            else shop_price(ordinary, vat_percent=vat, prices_include_tax=prices_include_tax)
        )
    if switches.campaign:
        fields.update(
            campaign_fields(
                prices,
                vat_percent=vat,
                prices_include_tax=prices_include_tax,
                today=today or timezone.localdate(),
            )
        )
    if switches.stock:
        fields.update(stock_fields(article, quantity=stock_quantity))
    return fields


def new_product_from_article(
    article: Mapping[str, Any],
    *,
    taxes: ShopTaxes,
    switches: Switches,
    prices_include_tax: bool,
    stock_quantity: int | None = None,
    today: date | None = None,
) -> dict:
    """A new simple product for an article marked "send to webshop" (flow 2, initial sync case 2)."""
    vat = decimal_or_none(article.get("vatPercent")) or Decimal(0)
    tax_class = taxes.tax_class(vat)
    if tax_class is None:
        raise NotMappable(
            _("The shop has no tax class with %(vat)s %% VAT.") % {"vat": formats.localize(vat)}
        )
    product = {
        "type": "simple",
        "status": "publish",
        "sku": str(article["number"]),
        "name": str(article.get("name") or article["number"]),
        "tax_class": tax_class,
    }
    product.update(
        shop_fields_from_article(
            article,
            switches=Switches(name=False, prices=True, campaign=switches.campaign, stock=switches.stock),
            prices_include_tax=prices_include_tax,
            stock_quantity=stock_quantity,
            today=today,
        )
    )
    return product
