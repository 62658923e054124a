"""WooCommerce order (or refund) -> Hogia Smart customer invoice (or credit invoice).

Pure functions on the parsed order JSON (numbers as ``Decimal``: ``json.loads(text,
parse_float=Decimal)``); no I/O. The flow calls ``invoice_from_order`` /
``credit_from_refund``, shows ``InvoiceBlocked.reason`` to support when the invoice
would not add up, and otherwise posts ``hogia_invoice_body(draft, …)`` with
``HogiaSmartClient.invoice_create``.

How the invoice is made to equal the order, to the öre:

* Every line is posted **net** (``pricesIncludeVat: false``), also for shops whose
  prices include VAT, because WooCommerce's REST line amounts are always net. The
  invoice's net per VAT rate then equals the shop's exactly.
* Hogia Smart computes VAT per rate on the sum of the nets; WooCommerce sums
  per-line taxes. The two can differ by an öre or so per rate (A3: 43.21 in the shop,
  43.22 in Hogia). ``hogia_invoice_totals`` predicts Hogia's figures, and a VAT-free
  rounding line makes the invoice total equal the order total; a difference larger
  than ``max_rounding`` blocks the invoice instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
UNIT_PRICE_STEP = Decimal("0.0001")  # the contract: unitPrice has at most 4 decimals
QUANTITY_STEP = Decimal("0.001")  # quantity at most 3
DISCOUNT_STEP = Decimal("0.01")  # discountPercent at most 2
HUNDRED = Decimal(100)
ZERO = Decimal("0.00")

SWEDISH_VAT_RATES = (Decimal(25), Decimal(12), Decimal(6), Decimal(0))
# A rate derived from amounts (older stores without rate_percent) is trusted only this
# close to a Swedish rate; further away it is some other tax and must not be guessed.
RATE_SNAP_TOLERANCE = Decimal("0.5")

ITEM, SHIPPING, FEE, DISCOUNT, ROUNDING, LINE_ROUNDING = (
    "item",
    "shipping",
    "fee",
    "discount",
    "rounding",
    "line_rounding",
)

_PERCENT_IN_NAME = re.compile(r"(\d+(?:[.,]\d+)?)\s*%")


@dataclass(frozen=True)
class InvoiceArticles:
    """Article numbers (from the customer's flow settings) for lines that are not products."""

    freight: str = "fraktavg"
    fee: str = "expavg"
    discount: str = "rabatt"
    rounding_description: str = "Öresavrundning"


@dataclass(kw_only=True)
class InvoiceLine:
    """One invoice line. ``article_number`` None makes it a free line (no article, no stock)."""

    article_number: str | None
    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_percent: Decimal
    kind: str  # item | shipping | fee | discount | rounding | line_rounding
    unit: str = "st"
    discount_percent: Decimal = Decimal("0")
    source_id: int | None = None  # the WooCommerce item id the line comes from


@dataclass
class RateTotals:
    """Net and VAT per VAT rate (percent, e.g. ``Decimal("25")``), highest rate first, and totals."""

    by_rate: dict[Decimal, tuple[Decimal, Decimal]]
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass
class InvoiceDraft:
    """An invoice ready to post, with what the order says and what Hogia Smart will compute.

    For a credit (``is_credit``), ``order_totals`` are the refund's amounts, negative, and
    every line has a negative quantity, as the contract requires.
    """

    lines: list[InvoiceLine]
    currency: str
    prices_include_vat: bool  # always False: lines are posted net, see the module docstring
    customer_order_number: str
    your_reference: str
    order_totals: RateTotals
    invoice_totals: RateTotals
    rounding: Decimal
    warnings: list[str]
    shop_prices_include_tax: bool = False  # the shop's setting, for the record only
    is_credit: bool = False
    # Names of the items posted as text lines, for want of a SKU in the shop (one warning each).
    without_sku: list[str] = field(default_factory=list)


class InvoiceBlocked(Exception):
    """The order cannot become an invoice that adds up to it; a person has to act.

    ``reason`` is plain words for support. ``diff`` (empty when the block is not about
    amounts) has one dict per VAT rate ``{rate, order_net, order_vat, invoice_net,
    invoice_vat}`` and a last one with ``rate: "total"`` that adds ``order_gross`` and
    ``invoice_gross``. ``as_text()`` renders the reason and that table.
    """

    def __init__(
        self, reason: str, *, order_totals: RateTotals | None = None, invoice_totals: RateTotals | None = None
    ):
        super().__init__(reason)
        self.reason = reason
        self.order_totals = order_totals
        self.invoice_totals = invoice_totals
        self.diff = _diff_rows(order_totals, invoice_totals) if order_totals and invoice_totals else []

    def as_text(self) -> str:
        if not self.diff:
            return self.reason
        rows = [f"{'VAT rate':<8}{'order net':>12}{'order VAT':>12}{'invoice net':>14}{'invoice VAT':>14}"]
        for row in self.diff:
            label = "total" if row["rate"] == "total" else f"{_plain(row['rate'])} %"
            line = (
                f"{label:<8}{row['order_net']:>12}{row['order_vat']:>12}"
                f"{row['invoice_net']:>14}{row['invoice_vat']:>14}"
            )
            if row["rate"] == "total":
                line += f"   (order total {row['order_gross']}, invoice {row['invoice_gross']})"
            rows.append(line)
        return self.reason + "\n" + "\n".join(rows)


# -- totals ------------------------------------------------------------------------------------


def order_vat_totals(order: dict) -> RateTotals:
    """What the order says, per VAT rate.

    Net per rate is the sum of the net ``total`` of the items, fees and shipping lines
    carrying that rate (0 % for lines without taxes); VAT per rate comes from
    ``tax_lines`` (``tax_total + shipping_tax_total``), never from the lines, whose
    taxes can be an öre off; gross is the order's ``total``. Raises ``InvoiceBlocked``
    when a rate cannot be told or is not a Swedish VAT rate.
    """
    rates = _RateBook(order.get("tax_lines") or [], _order_lines(order))
    totals, problems = _document_totals(
        rates,
        _order_lines(order),
        order.get("tax_lines") or [],
        gross=_money(order.get("total"), "order total"),
    )
    if rates.problems or problems:
        raise InvoiceBlocked(_sentences(rates.problems + problems))
    return totals


def hogia_invoice_totals(lines: list[InvoiceLine], *, prices_include_vat: bool = False) -> RateTotals:
    """Hogia Smart's amounts for these lines, exactly as the contract computes them.

    Line net = round(quantity x unitPrice x (1 - discount/100), 2), half up; per rate the
    nets are summed and VAT = round(net x rate/100, 2). Raises ``ValueError`` for a line
    Hogia Smart would refuse (more than 4 decimals in the unit price, 3 in the quantity,
    2 in the discount).
    """
    net_by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        _check_places(line.unit_price, UNIT_PRICE_STEP, "unit price", line)
        _check_places(line.quantity, QUANTITY_STEP, "quantity", line)
        _check_places(line.discount_percent, DISCOUNT_STEP, "discount percent", line)
        rate = _percent(line.vat_percent)
        amount = _round(line.quantity * line.unit_price * (1 - line.discount_percent / HUNDRED))
        net = _round(amount / (1 + rate / HUNDRED)) if prices_include_vat else amount
        net_by_rate[rate] = net_by_rate.get(rate, ZERO) + net
    by_rate = {
        rate: (net_by_rate[rate], _round(net_by_rate[rate] * rate / HUNDRED))
        for rate in sorted(net_by_rate, reverse=True)
    }
    net = sum((n for n, _ in by_rate.values()), ZERO)
    vat = sum((v for _, v in by_rate.values()), ZERO)
    return RateTotals(by_rate=by_rate, net=net, vat=vat, gross=net + vat)


# -- invoice and credit ------------------------------------------------------------------------


def invoice_from_order(
    order: dict,
    *,
    articles: InvoiceArticles = InvoiceArticles(),
    max_rounding: Decimal = Decimal("1.00"),
    text_lines_without_sku: bool = False,
) -> InvoiceDraft:
    """The invoice for a WooCommerce order, predicted to total exactly the order's ``total``.

    Lines: one per item (article = SKU, unit price = net ``subtotal`` / quantity), one
    discount line per VAT rate for coupons, shipping on ``articles.freight``, fees on
    ``articles.fee``, and, when Hogia's per-rate VAT rounding differs from the shop's,
    one VAT-free rounding line of at most ``max_rounding``. Raises ``InvoiceBlocked``
    (with every problem found, in plain words) when an item has no SKU, a VAT rate is
    unknown or not Swedish, or the invoice would differ from the order by more than that.
    With ``text_lines_without_sku`` an item without a SKU becomes a text line instead
    (no article: its name, quantity, net price and VAT), with a warning on the draft.
    """
    tax_lines = order.get("tax_lines") or []
    rates = _RateBook(tax_lines, _order_lines(order))
    problems: list[str] = []
    warnings: list[str] = []
    lines: list[InvoiceLine] = []
    discount_by_rate: dict[Decimal, Decimal] = {}

    without_sku: list[str] = []
    for item in order.get("line_items") or []:
        name = _name(item.get("name"), f"order line {item.get('id')}")
        rate = _line_rate(item, rates, name, problems)
        sku = (item.get("sku") or "").strip()
        if not sku and text_lines_without_sku:
            without_sku.append(name)
            warnings.append(
                f"{name} has no SKU (article number) in the shop: posted as a text line "
                "without an article, so Hogia Smart's stock does not change for it."
            )
        elif not sku:
            problems.append(
                f"{name} has no SKU (article number) in the shop: give the product a SKU "
                "that exists as an article in Hogia Smart, then retry."
            )
        subtotal = _money(item.get("subtotal"), f"subtotal of {name}")
        total = _money(item.get("total"), f"total of {name}")
        quantity = _quantity(item.get("quantity"), name, problems)
        if quantity is not None and quantity <= 0:
            problems.append(f"{name} has quantity {quantity}; an invoice line needs a positive quantity.")
            quantity = None
        if rate is None or (not sku and not text_lines_without_sku) or quantity is None:
            continue
        lines += _priced_lines(
            article_number=sku or None,
            description=name,
            quantity=quantity,
            net=subtotal,
            rate=rate,
            kind=ITEM,
            source_id=item.get("id"),
            articles=articles,
        )
        if total != subtotal:
            discount_by_rate[rate] = discount_by_rate.get(rate, ZERO) + (total - subtotal)

    codes = [c.get("code") for c in order.get("coupon_lines") or [] if c.get("code")]
    description = f"Rabatt ({', '.join(codes)})" if codes else "Rabatt"
    for rate in sorted(discount_by_rate, reverse=True):
        if discount_by_rate[rate]:
            lines.append(
                InvoiceLine(
                    article_number=articles.discount,
                    description=description,
                    quantity=Decimal(1),
                    unit_price=discount_by_rate[rate],
                    vat_percent=rate,
                    kind=DISCOUNT,
                )
            )

    lines += _charge_lines(order, rates, articles, problems, sign=1)

    if rates.problems or problems:
        raise InvoiceBlocked(_sentences(rates.problems + problems))
    order_totals, total_problems = _document_totals(
        rates, _order_lines(order), tax_lines, gross=_money(order.get("total"), "order total")
    )
    if total_problems:
        raise InvoiceBlocked(_sentences(total_problems))
    number = str(order.get("number") or order.get("id"))
    draft = _balanced_draft(
        lines,
        order_totals,
        articles=articles,
        max_rounding=max_rounding,
        credit=False,
        currency=order.get("currency") or "SEK",
        customer_order_number=number,
        your_reference=f"WooCommerce order {number}",
        shop_prices_include_tax=bool(order.get("prices_include_tax")),
    )
    draft.warnings = warnings + draft.warnings
    draft.without_sku = without_sku
    return draft


def credit_from_refund(
    order: dict,
    refund: dict,
    *,
    articles: InvoiceArticles = InvoiceArticles(),
    max_rounding: Decimal = Decimal("1.00"),
    text_lines_without_sku: bool = False,
) -> InvoiceDraft:
    """The credit invoice for one WooCommerce refund of ``order``.

    Lines carry negative quantities and positive unit prices (the contract's credit
    invoice), on the refunded item's SKU, ``articles.freight`` and ``articles.fee``.
    A refunded amount on an item without a quantity is a price reduction: it goes on
    ``articles.discount`` rather than the product's article, so that Hogia Smart does
    not take goods back into stock that never came back. VAT rates are resolved through
    the order's ``tax_lines`` (then the refund's). The credit totals ``-refund.amount``;
    a rounding line covers up to ``max_rounding``. A refund by amount only has no VAT
    split and raises ``InvoiceBlocked``. ``text_lines_without_sku`` as for the invoice, so
    that a credit mirrors what the invoice did with the same item.
    """
    currency = order.get("currency") or "SEK"
    amount = _money(refund.get("amount"), "refund amount")
    refund_lines = _order_lines(refund)
    if not refund_lines:
        raise InvoiceBlocked(
            f"refund of {amount} {currency} has no lines, so its VAT cannot be split; book a credit "
            "invoice by hand in Hogia Smart or refund per line in WooCommerce"
        )
    rates = _RateBook(
        (order.get("tax_lines") or []) + (refund.get("tax_lines") or []), _order_lines(order) + refund_lines
    )
    originals = {item.get("id"): item for item in order.get("line_items") or []}
    problems: list[str] = []
    lines: list[InvoiceLine] = []

    for item in refund.get("line_items") or []:
        original_id = _refunded_item_id(item)
        original = originals.get(original_id) or {}
        name = _name(item.get("name") or original.get("name"), f"refunded line {item.get('id')}")
        rate = _line_rate(item, rates, name, problems)
        total = _money(item.get("total"), f"refunded total of {name}")
        quantity = _quantity(item.get("quantity"), name, problems)
        if rate is None or quantity is None:
            continue
        if quantity == 0:
            # Money back without goods back: a price reduction, not a return to stock.
            if total:
                lines.append(
                    InvoiceLine(
                        article_number=articles.discount,
                        description=f"Prisavdrag {name}",
                        quantity=Decimal(-1),
                        unit_price=-total,
                        vat_percent=rate,
                        kind=DISCOUNT,
                        source_id=original_id,
                    )
                )
            continue
        sku = (item.get("sku") or original.get("sku") or "").strip()
        if not sku and not text_lines_without_sku:
            problems.append(
                f"{name} has no SKU (article number) in the shop: give the product a SKU "
                "that exists as an article in Hogia Smart, then retry."
            )
            continue
        lines += _priced_lines(
            article_number=sku or None,
            description=name,
            quantity=-abs(quantity),
            net=total,
            rate=rate,
            kind=ITEM,
            source_id=original_id,
            articles=articles,
        )

    lines += _charge_lines(refund, rates, articles, problems, sign=-1)

    if rates.problems or problems:
        raise InvoiceBlocked(_sentences(rates.problems + problems))
    refund_totals, total_problems = _document_totals(
        rates, refund_lines, refund.get("tax_lines") or [], gross=-amount
    )
    if total_problems:
        raise InvoiceBlocked(_sentences(total_problems))
    number = str(order.get("number") or order.get("id"))
    return _balanced_draft(
        lines,
        refund_totals,
        articles=articles,
        max_rounding=max_rounding,
        credit=True,
        currency=currency,
        customer_order_number=number,
        your_reference=f"WooCommerce refund {refund.get('id')} of order {number}",
        shop_prices_include_tax=bool(order.get("prices_include_tax")),
    )


def hogia_invoice_body(
    draft: InvoiceDraft,
    *,
    customer_number: str,
    invoice_date: date,
    due_date: date,
    result_unit: str | None,
    credited_invoice_id: str | None = None,
) -> tuple[dict, list[dict]]:
    """``(customerInvoice, invoiceLines)`` for ``HogiaSmartClient.invoice_create``.

    Amounts stay ``Decimal`` (the client sends them as exact JSON numbers). A credit
    draft needs ``credited_invoice_id`` (the Hogia id of the invoice it credits), and
    only a credit may have one. ``result_unit`` books the invoice on that result unit.
    """
    if draft.is_credit and not credited_invoice_id:
        raise ValueError("a credit invoice needs credited_invoice_id: the Hogia Smart invoice it credits")
    if credited_invoice_id and not draft.is_credit:
        raise ValueError("credited_invoice_id is only for a credit draft (from credit_from_refund)")
    if due_date < invoice_date:
        raise ValueError(f"due date {due_date} is before invoice date {invoice_date}")
    invoice: dict = {
        "customerNumber": customer_number,
        "invoiceDate": invoice_date.isoformat(),
        "dueDate": due_date.isoformat(),
        "currency": {"code": draft.currency},
        "pricesIncludeVat": draft.prices_include_vat,
        "yourReference": draft.your_reference,
        "customerOrderNumber": draft.customer_order_number,
        # Our rounding line already makes the total equal the shop's; Hogia's own rounding
        # to whole kronor would move it away again.
        "useRounding": False,
    }
    if result_unit:
        invoice["dimensions"] = [{"type": "One", "number": result_unit}]
    if credited_invoice_id:
        invoice["creditedInvoiceId"] = credited_invoice_id
    lines = []
    for line in draft.lines:
        body: dict = {}
        if line.article_number:
            body["articleNumber"] = line.article_number
        body.update(
            {
                "description": line.description,
                "quantity": line.quantity,
                "unitPrice": line.unit_price,
                "vatPercent": line.vat_percent,
                "discountPercent": line.discount_percent,
                "unitType": line.unit,
            }
        )
        lines.append(body)
    return invoice, lines


# -- building blocks ---------------------------------------------------------------------------


class _RateBook:
    """WooCommerce tax rate id -> VAT percent, resolved once per document.

    ``rate_percent`` (WooCommerce 8+) wins; older stores only name the rate ("Moms 25%",
    "SE-MOMS 25%-1"); failing that the lines' tax over their net, snapped to a Swedish
    rate. Anything else lands in ``problems`` rather than being guessed.
    """

    def __init__(self, tax_lines: list[dict], lines: list[dict]):
        self.percents: dict[object, Decimal] = {}
        self.seen: set[object] = set()  # rate ids with a tax line, usable or not
        self.problems: list[str] = []
        for tax_line in tax_lines:
            rate_id = tax_line.get("rate_id")
            if rate_id in self.seen:
                continue  # a refund's tax lines repeat the order's rate ids; the order's come first
            self.seen.add(rate_id)
            label = f'"{tax_line.get("label") or tax_line.get("rate_code") or rate_id}"'
            percent = self._stated_percent(tax_line)
            if percent is None:
                percent = self._percent_from_amounts(rate_id, lines)
                if percent is None and not self._matters(tax_line, lines):
                    continue  # an unnamed rate no line uses and that taxed nothing changes no amount
                if percent is None:
                    self.problems.append(
                        f"the VAT rate of tax line {label} (rate id {rate_id}) cannot be told: the shop "
                        "does not state it, and its amounts do not match a Swedish VAT rate "
                        "(25, 12, 6 or 0 %)."
                    )
                    continue
            if percent not in SWEDISH_VAT_RATES:
                self.problems.append(
                    f"tax line {label} is {_plain(percent)} %, which is not a Swedish "
                    "VAT rate (25, 12, 6 or 0 %); Hogia Smart has no VAT code for it."
                )
                continue
            self.percents[rate_id] = percent

    def percent(self, rate_id: object) -> Decimal | None:
        return self.percents.get(rate_id)

    @staticmethod
    def _stated_percent(tax_line: dict) -> Decimal | None:
        if tax_line.get("rate_percent") not in (None, ""):
            return _percent(_decimal(tax_line["rate_percent"], "rate_percent"))
        for text in (tax_line.get("label"), tax_line.get("rate_code")):
            match = _PERCENT_IN_NAME.search(text or "")
            if match:
                return _percent(Decimal(match.group(1).replace(",", ".")))
        return None

    @staticmethod
    def _matters(tax_line: dict, lines: list[dict]) -> bool:
        rate_id = tax_line.get("rate_id")
        return bool(
            _money(tax_line.get("tax_total"), "tax_total")
            or _money(tax_line.get("shipping_tax_total"), "shipping_tax_total")
            or any(entry.get("id") == rate_id for line in lines for entry in line.get("taxes") or [])
        )

    @staticmethod
    def _percent_from_amounts(rate_id: object, lines: list[dict]) -> Decimal | None:
        tax = base = tax_before = base_before = ZERO
        for line in lines:
            for entry in line.get("taxes") or []:
                if entry.get("id") != rate_id or _blank(entry.get("total")):
                    continue
                # Magnitudes: a credit reads the order's lines and the refund's negative ones
                # together, and they must not cancel out.
                tax += abs(_money(entry["total"], "tax"))
                base += abs(_money(line.get("total"), "line total"))
                if not _blank(entry.get("subtotal")) and not _blank(line.get("subtotal")):
                    tax_before += abs(_money(entry["subtotal"], "tax"))
                    base_before += abs(_money(line["subtotal"], "line subtotal"))
        # A line discounted to zero says nothing after coupons; its subtotal still does.
        if not base:
            tax, base = tax_before, base_before
        if not base:
            return None
        ratio = tax / base * HUNDRED
        nearest = min(SWEDISH_VAT_RATES, key=lambda rate: abs(rate - ratio))
        return nearest if abs(nearest - ratio) <= RATE_SNAP_TOLERANCE else None


def _line_rate(line: dict, rates: _RateBook, name: str, problems: list[str]) -> Decimal | None:
    """The one VAT percent of an item, fee or shipping line; None (and a problem) if there is none."""
    entries = [entry for entry in line.get("taxes") or [] if not _blank(entry.get("total"))]
    if not entries:
        return Decimal(0)  # not taxable (tax_status none) or an export order
    charged = [entry for entry in entries if _money(entry["total"], "tax")] or entries
    percents = set()
    for entry in charged:
        percent = rates.percent(entry.get("id"))
        if percent is None:
            # A tax line the rate book could not read is reported there, once.
            if entry.get("id") not in rates.seen:
                problems.append(
                    f"{name} is taxed with rate id {entry.get('id')}, which has no usable tax "
                    "line in the order."
                )
            return None
        percents.add(percent)
    if len(percents) > 1:
        problems.append(
            f"{name} carries more than one VAT rate "
            f"({', '.join(_plain(p) + ' %' for p in sorted(percents, reverse=True))}); "
            "compound or stacked taxes cannot go on a Swedish invoice line."
        )
        return None
    return percents.pop()


def _priced_lines(
    *,
    article_number: str | None,
    description: str,
    quantity: Decimal,
    net: Decimal,
    rate: Decimal,
    kind: str,
    source_id: int | None,
    articles: InvoiceArticles,
) -> list[InvoiceLine]:
    """A product line whose net rounds back to ``net`` exactly, plus a free correction line if needed.

    The unit price is rounded to the 4 decimals Hogia accepts; for large quantities that
    rounding can move the line's net, and the correction keeps the rate's net exact.
    """
    unit_price = _round(net / quantity, UNIT_PRICE_STEP)
    lines = [
        InvoiceLine(
            article_number=article_number,
            description=description,
            quantity=quantity,
            unit_price=unit_price,
            vat_percent=rate,
            kind=kind,
            source_id=source_id,
        )
    ]
    rest = net - _round(quantity * unit_price)
    if rest:
        # On a credit every quantity must be negative, so the correction flips both signs.
        sign = Decimal(-1) if quantity < 0 else Decimal(1)
        lines.append(
            InvoiceLine(
                article_number=None,
                description=f"{articles.rounding_description} ({description})",
                quantity=sign,
                unit_price=rest * sign,
                vat_percent=rate,
                kind=LINE_ROUNDING,
                source_id=source_id,
            )
        )
    return lines


def _charge_lines(
    document: dict, rates: _RateBook, articles: InvoiceArticles, problems: list[str], *, sign: int
) -> list[InvoiceLine]:
    """Shipping and fee lines (quantity ``sign``): net total as the price, VAT from their taxes.

    A zero line is kept when it has a title (free shipping is worth showing) and
    dropped otherwise.
    """
    lines = []
    for kind, key, article, title_key, fallback in (
        (SHIPPING, "shipping_lines", articles.freight, "method_title", "Frakt"),
        (FEE, "fee_lines", articles.fee, "name", "Avgift"),
    ):
        for charge in document.get(key) or []:
            title = (charge.get(title_key) or "").strip()
            total = _money(charge.get("total"), f"total of {title or fallback}")
            if not total and not title:
                continue
            rate = _line_rate(charge, rates, title or fallback, problems)
            if rate is None:
                continue
            source_id = _refunded_item_id(charge) if sign < 0 else charge.get("id")
            lines.append(
                InvoiceLine(
                    article_number=article,
                    description=title or fallback,
                    quantity=Decimal(sign),
                    unit_price=total * sign,
                    vat_percent=rate,
                    kind=kind,
                    source_id=source_id,
                )
            )
    return lines


def _document_totals(
    rates: _RateBook, lines: list[dict], tax_lines: list[dict], *, gross: Decimal
) -> tuple[RateTotals, list[str]]:
    """Net per rate from the lines, VAT per rate from ``tax_lines`` (order or refund)."""
    problems: list[str] = []
    net_by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        name = _name(line.get("name") or line.get("method_title"), f"line {line.get('id')}")
        rate = _line_rate(line, rates, name, problems)
        if rate is not None:
            net_by_rate[rate] = net_by_rate.get(rate, ZERO) + _money(line.get("total"), f"total of {name}")
    vat_by_rate: dict[Decimal, Decimal] = {}
    for tax_line in tax_lines:
        rate = rates.percent(tax_line.get("rate_id"))
        if rate is None:
            continue  # already reported by the rate book
        vat = _money(tax_line.get("tax_total"), "tax_total") + _money(
            tax_line.get("shipping_tax_total"), "shipping_tax_total"
        )
        vat_by_rate[rate] = vat_by_rate.get(rate, ZERO) + vat
    by_rate = {
        rate: (net_by_rate.get(rate, ZERO), vat_by_rate.get(rate, ZERO))
        for rate in sorted(set(net_by_rate) | set(vat_by_rate), reverse=True)
    }
    totals = RateTotals(
        by_rate=by_rate,
        net=sum((n for n, _ in by_rate.values()), ZERO),
        vat=sum((v for _, v in by_rate.values()), ZERO),
        gross=gross,
    )
    return totals, problems


def _balanced_draft(
    lines: list[InvoiceLine],
    target: RateTotals,
    *,
    articles: InvoiceArticles,
    max_rounding: Decimal,
    credit: bool,
    currency: str,
    customer_order_number: str,
    your_reference: str,
    shop_prices_include_tax: bool,
) -> InvoiceDraft:
    """Compare Hogia's predicted totals with the shop's and add the rounding line, or block."""
    predicted = hogia_invoice_totals(lines)
    rates = sorted(set(target.by_rate) | set(predicted.by_rate), reverse=True)

    def amounts(totals: RateTotals, rate: Decimal) -> tuple[Decimal, Decimal]:
        return totals.by_rate.get(rate, (ZERO, ZERO))

    what = "credit invoice" if credit else "invoice"
    source = "refund" if credit else "order"
    if any(amounts(target, rate)[0] != amounts(predicted, rate)[0] for rate in rates):
        raise InvoiceBlocked(
            f"the {what} lines do not add up to the {source}'s net amount per VAT rate.",
            order_totals=target,
            invoice_totals=predicted,
        )
    vat_differences = [
        (rate, amounts(target, rate)[1], amounts(predicted, rate)[1])
        for rate in rates
        if amounts(target, rate)[1] != amounts(predicted, rate)[1]
    ]
    # The rounding line can only even out the total; a VAT amount far from the shop's per
    # rate means the order's taxes are wrong, not rounded, and the VAT return would be too.
    too_far = [rate for rate, shop, hogia in vat_differences if abs(shop - hogia) > max_rounding]
    difference = target.gross - predicted.gross
    if too_far or abs(difference) > max_rounding:
        raise InvoiceBlocked(
            f"the {what} would differ from the {source} by more than {max_rounding} {currency} "
            f"(total {source} {target.gross}, {what} {predicted.gross}); check the {source}'s taxes "
            "and totals in WooCommerce.",
            order_totals=target,
            invoice_totals=predicted,
        )

    warnings = []
    if vat_differences:
        warnings.append(
            "Hogia Smart computes VAT on each rate's total, the shop per line: "
            + "; ".join(
                f"{_plain(rate)} %: shop {shop}, Hogia Smart {hogia}" for rate, shop, hogia in vat_differences
            )
            + "."
        )
    if difference:
        sign = Decimal(-1) if credit else Decimal(1)
        lines = lines + [
            InvoiceLine(
                article_number=None,
                description=articles.rounding_description,
                quantity=sign,
                unit_price=difference * sign,
                vat_percent=Decimal(0),
                kind=ROUNDING,
            )
        ]
        warnings.append(
            f"A rounding line of {difference} {currency} makes the {what} total "
            f"{target.gross}, as in the {source}."
        )
    final = hogia_invoice_totals(lines)
    if final.gross != target.gross:
        # Only when the shop's total has more decimals than Hogia's öre (3-decimal currencies).
        raise InvoiceBlocked(
            f"the {what} cannot reach the {source} total {target.gross} in whole öre.",
            order_totals=target,
            invoice_totals=final,
        )
    return InvoiceDraft(
        lines=lines,
        currency=currency,
        prices_include_vat=False,
        customer_order_number=customer_order_number,
        your_reference=your_reference,
        order_totals=target,
        invoice_totals=final,
        rounding=difference,
        warnings=warnings,
        shop_prices_include_tax=shop_prices_include_tax,
        is_credit=credit,
    )


def _diff_rows(order: RateTotals, invoice: RateTotals) -> list[dict]:
    rows = []
    for rate in sorted(set(order.by_rate) | set(invoice.by_rate), reverse=True):
        order_net, order_vat = order.by_rate.get(rate, (ZERO, ZERO))
        invoice_net, invoice_vat = invoice.by_rate.get(rate, (ZERO, ZERO))
        rows.append(
            {
                "rate": rate,
                "order_net": order_net,
                "order_vat": order_vat,
                "invoice_net": invoice_net,
                "invoice_vat": invoice_vat,
            }
        )
    rows.append(
        {
            "rate": "total",
            "order_net": order.net,
            "order_vat": order.vat,
            "invoice_net": invoice.net,
            "invoice_vat": invoice.vat,
            "order_gross": order.gross,
            "invoice_gross": invoice.gross,
        }
    )
    return rows


def _order_lines(document: dict) -> list[dict]:
    return [
        *(document.get("line_items") or []),
        *(document.get("fee_lines") or []),
        *(document.get("shipping_lines") or []),
    ]


def _refunded_item_id(line: dict) -> int | None:
    for meta in line.get("meta_data") or []:
        if isinstance(meta, dict) and meta.get("key") == "_refunded_item_id":
            value = meta.get("value")
            # Only an id as WooCommerce writes it: int() of a Decimal like 1E+999999999 never ends.
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 19:
                return int(value)
            return None
    return None


def _quantity(value: object, name: str, problems: list[str]) -> Decimal | None:
    quantity = _decimal(value, f"quantity of {name}")
    if quantity != quantity.quantize(QUANTITY_STEP):
        problems.append(f"{name} has quantity {quantity}; Hogia Smart takes at most 3 decimals.")
        return None
    return quantity


def _money(value: object, what: str) -> Decimal:
    """A WooCommerce amount ("79.99", "50", "12.5", Decimal) as Decimal; "" and None are 0."""
    if _blank(value):
        return ZERO
    return _decimal(value, what)


def _decimal(value: object, what: str) -> Decimal:
    if isinstance(value, float):
        # A float has already lost the öre; the caller parsed without parse_float=Decimal.
        raise TypeError(f"{what} is a float ({value!r}); parse the JSON with parse_float=Decimal")
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise InvoiceBlocked(f"{what} is {value!r}, not a number.")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvoiceBlocked(f"{what} is {value!r}, not a number.") from None
    if not number.is_finite():
        raise InvoiceBlocked(f"{what} is {value!r}, not a number.")
    return number


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _round(value: Decimal, step: Decimal = CENT) -> Decimal:
    """Half away from zero, as Hogia Smart rounds."""
    return value.quantize(step, rounding=ROUND_HALF_UP)


def _percent(value: Decimal) -> Decimal:
    """A VAT percent in one canonical form (25, 12.5), so that rates compare and print alike."""
    value = Decimal(value)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _plain(value: Decimal) -> str:
    return str(_percent(value))


def _name(value: object, fallback: str) -> str:
    return str(value).strip() if value and str(value).strip() else fallback


def _check_places(value: Decimal, step: Decimal, what: str, line: InvoiceLine) -> None:
    if value != value.quantize(step):
        raise ValueError(
            f"{what} {value} of line {line.description!r} has more decimals than Hogia "
            f"Smart accepts ({-step.as_tuple().exponent})"
        )


def _sentences(problems: list[str]) -> str:
    unique = list(dict.fromkeys(problems))
    return " ".join(p[0].upper() + p[1:] for p in unique)
