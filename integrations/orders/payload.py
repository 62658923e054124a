"""Is this WooCommerce order something the portal can take? Checked before anything is stored.

A signed webhook or the poll's answer is trusted to come from the shop, not to be sane:
plugins, hand edits and broken stores send totals beyond what the portal stores, ids
beyond 64 bits, strings where objects belong. ``order_payload_problems`` looks at every
field the order flow (``order_seen``), the invoice mapping (``invoice_from_order``,
``credit_from_refund``) and the contacts mapping read, so that a bad order is turned
away with a reason support can act on instead of failing later as a ``KeyError``, a
``TypeError`` or a row that breaks every page showing it. Whether the order can become an
invoice (SKUs, VAT rates, totals that add up) stays the mapping's business.

The check takes the order as parsed JSON with numbers as ``Decimal``
(``json.loads(text, parse_float=Decimal)``); a float is refused, since it has already
lost the öre.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.utils.dateparse import parse_datetime

from integrations.models import Shop, SyncLogEntry
from integrations.services import sync_log

logger = logging.getLogger(__name__)

# The widest the columns that hold WooCommerce ids are (BigIntegerField, signed 64 bits).
MAX_ID = 2**63 - 1
# OrderTransfer.total is DecimalField(max_digits=14, decimal_places=2).
MONEY_PLACES = 2
MAX_STORED_MONEY = Decimal("999999999999.99")
# Amounts the portal does not store (lines, taxes, refunds) get the same ceiling: nothing
# real comes near it, and it keeps the mapping's Decimal arithmetic within its 28 digits.
MAX_AMOUNT = MAX_STORED_MONEY
MAX_QUANTITY = Decimal(10) ** 9
# WooCommerce writes amounts in the store's decimals (0 to 4 or so); more than this is not an
# amount, and a tiny divisor would overflow the mapping's arithmetic.
MAX_AMOUNT_PLACES = 12
# A reason lists this many problems at most: a broken order can have thousands.
MAX_PROBLEMS = 10
# Column widths of OrderTransfer: order_number, woo_status.
MAX_NUMBER_CHARS = 40
MAX_STATUS_CHARS = 40
# A date the database and the pages can convert to any time zone without leaving the calendar.
FIRST_YEAR, LAST_YEAR = 1970, 9998

DATE_FIELDS = ("date_created_gmt", "date_modified_gmt")
ADDRESS_FIELDS = ("billing", "shipping")
# Line arrays and the amounts on each of their lines that the mapping reads.
LINE_ARRAYS = {
    "line_items": ("subtotal", "subtotal_tax", "total", "total_tax"),
    "fee_lines": ("total", "total_tax"),
    "shipping_lines": ("total", "total_tax"),
}
# Titles the mapping reads as text (a shipping line's is method_title, the others' name).
LINE_TEXTS = ("name", "method_title", "sku")
TAX_LINE_AMOUNTS = ("tax_total", "shipping_tax_total", "rate_percent")
COUPON_LINE_AMOUNTS = ("discount", "discount_tax")

_CURRENCY = re.compile(r"[A-Za-z]{3}")
# Plain decimal notation, ASCII digits only: what WooCommerce's wc_format_decimal writes.
# (Decimal() alone would also take "1_000", "1e3", "NaN" and other scripts' digits.)
_DECIMAL_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)", re.ASCII)
# An amount that passes every check of ``_number`` whatever its ceiling (at most 9 digits before
# the point, at most MAX_AMOUNT_PLACES after it): most of them, taken without the checks.
_PLAIN_AMOUNT = re.compile(r"-?\d{1,9}(\.\d{0,12})?", re.ASCII)


class OrderPayloadInvalid(ValueError):
    """The order cannot be taken; ``reason`` says why in sentences support can act on."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        self.reason = " ".join(problems)
        super().__init__(self.reason)


def order_payload_check(order: object) -> None:
    """Raise ``OrderPayloadInvalid`` unless the order flow can take ``order`` as it is."""
    problems = order_payload_problems(order)
    if problems:
        raise OrderPayloadInvalid(problems)


def order_payload_problems(order: object) -> list[str]:
    """Every reason the order flow cannot take ``order``, as sentences; empty when it can.

    Pure: no I/O, never raises for any input a JSON parser can produce.
    """
    if not isinstance(order, dict):
        return [f"The order is {_shown(order)}, not a JSON object."]
    problems: list[str] = []
    _check_id(order, "id", problems, what="id", required=True)
    _check_number(order.get("number"), problems)
    _check_status(order, problems)
    _check_currency(order.get("currency"), problems)
    _check_stored_money(order.get("total"), "total", problems)
    if "customer_id" in order and order["customer_id"] is not None:
        _check_id(order, "customer_id", problems, what="customer_id", minimum=0)
    for field in DATE_FIELDS:
        _check_date(order.get(field), field, problems)
    for field in ADDRESS_FIELDS:
        _check_address(order.get(field), field, problems)
    _check_meta_data(order.get("meta_data"), "meta_data", problems)
    _check_refunds(order.get("refunds"), problems)
    for field, amounts in LINE_ARRAYS.items():
        for index, line in _objects(order, field, problems):
            _check_line(line, f"{field}[{index}]", amounts, problems)
    for index, line in _objects(order, "tax_lines", problems):
        where = f"tax_lines[{index}]"
        _check_rate_id(line.get("rate_id"), f"{where}.rate_id", problems)
        for key in ("label", "rate_code"):
            _check_optional_text(line.get(key), f"{where}.{key}", problems)
        for key in TAX_LINE_AMOUNTS:
            _check_amount(line.get(key), f"{where}.{key}", problems)
    for index, line in _objects(order, "coupon_lines", problems):
        where = f"coupon_lines[{index}]"
        _check_optional_text(line.get("code"), f"{where}.code", problems)
        for key in COUPON_LINE_AMOUNTS:
            _check_amount(line.get(key), f"{where}.{key}", problems)
    if len(problems) > MAX_PROBLEMS:
        problems[MAX_PROBLEMS:] = [f"And {len(problems) - MAX_PROBLEMS} more problems."]
    return problems


def refund_payload_problems(refund: object) -> list[str]:
    """The same check for one refund as ``GET orders/<id>/refunds`` answers it (the credit
    invoice is made from it and its amount stored); empty when it can be used."""
    if not isinstance(refund, dict):
        return [f"A refund is {_shown(refund)}, not a JSON object."]
    problems: list[str] = []
    _check_id(refund, "id", problems, what="refund id", required=True)
    where = f"refund {_shown(refund.get('id'))}"
    _check_stored_money(refund.get("amount"), f"{where} amount", problems)
    for field, amounts in LINE_ARRAYS.items():
        for index, line in _objects(refund, field, problems):
            _check_line(line, f"{where} {field}[{index}]", amounts, problems)
            _list_of_objects(line.get("meta_data"), f"{where} {field}[{index}].meta_data", problems)
    for index, line in _objects(refund, "tax_lines", problems):
        _check_rate_id(line.get("rate_id"), f"{where} tax_lines[{index}].rate_id", problems)
    if len(problems) > MAX_PROBLEMS:
        problems[MAX_PROBLEMS:] = [f"And {len(problems) - MAX_PROBLEMS} more problems."]
    return problems


def order_usable(*, shop: Shop, order: object, via: str) -> bool:
    """True when the order flow can take ``order``; otherwise log why for support and say False.

    For callers that go on with the next order (the poll): the shop's order is skipped,
    and the sync log names it and the reason, so that support can have it corrected.
    """
    problems = order_payload_problems(order)
    if not problems:
        return True
    order_id = order.get("id") if isinstance(order, dict) else None
    ref = _shown(order_id) if order_id is not None else "without an id"
    reason = " ".join(problems)
    logger.warning("shop %s: order %s from the %s skipped: %s", shop.pk, ref, via, reason)
    sync_log(
        customer=shop.customer,
        shop=shop,
        level=SyncLogEntry.Level.WARNING,
        message=f"Order {ref} from the shop ({via}) was skipped: {reason} Correct the order in "
        f"WooCommerce; the next {via} takes it then.",
        object_type="order",
        object_ref=ref,
    )
    return False


# -- the checks -------------------------------------------------------------------------------


def _check_id(
    container: dict, key: str, problems: list[str], *, what: str, required: bool = False, minimum: int = 1
) -> None:
    value = container.get(key)
    if value is None:
        if required:
            problems.append(f"The {what} is missing: every WooCommerce order has one.")
        return
    if not _is_int(value):
        problems.append(f"{what} is {_shown(value)}, not a whole number.")
    elif value < minimum:
        problems.append(f"{what} {_shown(value)} is not a WooCommerce id (it must be {minimum} or more).")
    elif value > MAX_ID:
        problems.append(
            f"{what} {_shown(value)} is larger than the largest 64-bit id the portal stores ({MAX_ID})."
        )


def _check_number(value: object, problems: list[str]) -> None:
    # order_seen falls back to the id for an empty number.
    if value is None or value == "":
        return
    if _is_int(value):
        if not 0 <= value < 10**MAX_NUMBER_CHARS:
            problems.append(
                f"number {_shown(value)} is not an order number the portal can show "
                f"(a positive number of at most {MAX_NUMBER_CHARS} digits)."
            )
        return
    if not isinstance(value, str):
        problems.append(f"number is {_shown(value)}, not an order number (text or a whole number).")
        return
    _check_text(value, "number", problems, max_chars=MAX_NUMBER_CHARS)


def _check_status(order: dict, problems: list[str]) -> None:
    value = order.get("status")
    if not isinstance(value, str) or not value.strip():
        problems.append(f'status is {_shown(value)}, not an order status such as "processing".')
        return
    _check_text(value, "status", problems, max_chars=MAX_STATUS_CHARS)


def _check_currency(value: object, problems: list[str]) -> None:
    if value is None or value == "":
        return
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        problems.append(f"currency is {_shown(value)}, not a three-letter currency code such as SEK.")


def _check_stored_money(value: object, what: str, problems: list[str]) -> None:
    """An amount the portal stores in a DecimalField(14, 2): absent, or fits it exactly."""
    number = _number(value, what, problems, ceiling=MAX_STORED_MONEY, verb="stores")
    if number is not None and number != number.quantize(Decimal(1).scaleb(-MONEY_PLACES)):
        problems.append(
            f"{what} {_shown_number(value)} has more than {MONEY_PLACES} decimals; the "
            "portal stores amounts in öre (cents)."
        )


def _check_amount(value: object, what: str, problems: list[str]) -> None:
    _number(value, what, problems, ceiling=MAX_AMOUNT)


def _check_quantity(value: object, what: str, problems: list[str]) -> None:
    _number(value, what, problems, ceiling=MAX_QUANTITY, example="2")


def _number(
    value: object,
    what: str,
    problems: list[str],
    *,
    ceiling: Decimal,
    verb: str = "takes",
    example: str = "79.99",
) -> Decimal | None:
    """``value`` as an exact Decimal within ±ceiling; None (and a problem, unless blank) otherwise.

    Blank ("" or null) is allowed: WooCommerce leaves amounts empty, and the mapping reads
    them as zero.
    """
    if value is None or value == "":
        return None
    if type(value) is str and _PLAIN_AMOUNT.fullmatch(value):
        return Decimal(value)  # what nearly every amount is: within every ceiling, few decimals
    if isinstance(value, float):
        problems.append(
            f"{what} is the binary fraction {_shown(value)}, which has lost the exact "
            "value; the order must carry amounts as text or exact numbers."
        )
        return None
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value.strip()):
            problems.append(f'{what} {_shown(value)} is not a number (such as "{example}").')
            return None
        number = Decimal(value.strip())
    elif _is_int(value) or isinstance(value, Decimal):
        number = Decimal(value)
    else:
        problems.append(f'{what} is {_shown(value)}, not a number (such as "{example}").')
        return None
    if not number.is_finite():  # Decimal NaN and Infinity, from a caller that made them
        problems.append(f'{what} {_shown(value)} is not a number (such as "{example}").')
        return None
    if number > ceiling:
        problems.append(
            f"{what} {_shown_number(value)} is larger than the portal {verb} (up to {_grouped(ceiling)})."
        )
        return None
    if number < -ceiling:
        problems.append(
            f"{what} {_shown_number(value)} is further below zero than the portal {verb} "
            f"(down to -{_grouped(ceiling)})."
        )
        return None
    if number.as_tuple().exponent < -MAX_AMOUNT_PLACES and number != number.quantize(
        Decimal(1).scaleb(-MAX_AMOUNT_PLACES)
    ):
        problems.append(
            f"{what} {_shown_number(value)} has more than {MAX_AMOUNT_PLACES} decimals; "
            "it is not an amount WooCommerce writes."
        )
        return None
    return number


def _check_date(value: object, what: str, problems: list[str]) -> None:
    if value is None or value == "":
        return
    if not isinstance(value, str):
        problems.append(f'{what} is {_shown(value)}, not a date and time such as "2026-11-27T03:41:21".')
        return
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        problems.append(f'{what} {_shown(value)} is not a date and time such as "2026-11-27T03:41:21".')
        return
    try:
        utc = parsed.astimezone(dt_timezone.utc) if parsed.tzinfo else parsed
        earliest, latest = utc - timedelta(days=1), utc + timedelta(days=1)
    except OverflowError:
        earliest = latest = None
    if earliest is None or not (FIRST_YEAR <= earliest.year and latest.year <= LAST_YEAR):
        problems.append(f"{what} {_shown(value)} is not between the years {FIRST_YEAR} and {LAST_YEAR}.")


def _check_address(value: object, what: str, problems: list[str]) -> None:
    # PHP encodes an empty address array as [], and order_seen reads a falsy one as no address.
    if value is None or value == [] or value == "":
        return
    if not isinstance(value, dict):
        problems.append(f"{what} is {_shown(value)}, not an address object.")
        return
    for key, field_value in value.items():
        if field_value is not None and not isinstance(field_value, str):
            problems.append(f"{what}.{_shown_key(key)} is {_shown(field_value)}, not text.")
        elif field_value and not _plain_text(field_value):
            _check_text(field_value, f"{what}.{_shown_key(key)}", problems)


def _check_meta_data(value: object, what: str, problems: list[str]) -> None:
    """Meta entries are read as {key: value}: each an object whose key is text."""
    for index, entry in _list_of_objects(value, what, problems):
        key = entry.get("key")
        if key is not None and not isinstance(key, str):
            problems.append(f"{what}[{index}].key is {_shown(key)}, not text.")


def _check_refunds(value: object, problems: list[str]) -> None:
    for index, refund in _list_of_objects(value, "refunds", problems, noun="refunds"):
        _check_id(refund, "id", problems, what=f"refunds[{index}].id", required=True)
        _check_amount(refund.get("total"), f"refunds[{index}].total", problems)


def _check_line(line: dict, where: str, amounts: tuple[str, ...], problems: list[str]) -> None:
    # Each field's name for a reason (f"{where}.{key}") is made only for a value that is not
    # plainly fine: a delivery's order has dozens of them, and this check runs on every one.
    if line.get("id") is not None:
        _check_id(line, "id", problems, what=f"{where}.id", minimum=0)
    for key in LINE_TEXTS:
        value = line.get(key)
        if not _plain_text(value):
            _check_optional_text(value, f"{where}.{key}", problems)
    for key in amounts:
        value = line.get(key)
        if not _plain_amount(value):
            _check_amount(value, f"{where}.{key}", problems)
    # A missing quantity is the mapping's to block (with the line's name); a broken one is ours.
    _check_quantity(line.get("quantity"), f"{where}.quantity", problems)
    for index, tax in _list_of_objects(line.get("taxes"), f"{where}.taxes", problems):
        _check_rate_id(tax.get("id"), f"{where}.taxes[{index}].id", problems)
        for key in ("total", "subtotal"):
            value = tax.get(key)
            if not _plain_amount(value):
                _check_amount(value, f"{where}.taxes[{index}].{key}", problems)
    # Line meta values may be anything (variation attributes, plugin data); entries are objects.
    _list_of_objects(line.get("meta_data"), f"{where}.meta_data", problems)


def _check_rate_id(value: object, what: str, problems: list[str]) -> None:
    # Rate ids are looked up in a dict: a number or a text, never a list or an object.
    if value is not None and not _is_int(value) and not isinstance(value, str):
        problems.append(f"{what} is {_shown(value)}, not a tax rate id.")


def _check_optional_text(value: object, what: str, problems: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        problems.append(f"{what} is {_shown(value)}, not text.")
        return
    _check_text(value, what, problems)


def _plain_text(value: object) -> bool:
    """Absent, or text ``_check_text`` finds nothing wrong with when no length is set."""
    return value is None or (type(value) is str and "\x00" not in value and _encodable(value))


def _plain_amount(value: object) -> bool:
    """Absent, or an amount ``_number`` takes under any ceiling (the common case, cheaply)."""
    return value is None or value == "" or (type(value) is str and _PLAIN_AMOUNT.fullmatch(value) is not None)


def _check_text(value: str, what: str, problems: list[str], *, max_chars: int | None = None) -> None:
    """Text the portal stores or sends on: no NUL (PostgreSQL refuses it), no lone surrogate
    (not encodable as UTF-8), and short enough for its column when it has one."""
    if "\x00" in value:
        problems.append(f"{what} {_shown(value)} contains a NUL character.")
    elif not _encodable(value):
        problems.append(f"{what} {_shown(value)} contains a broken character (a lone UTF-16 surrogate).")
    elif max_chars is not None and len(value) > max_chars:
        problems.append(
            f"{what} {_shown(value)} is longer than the {max_chars} characters the portal stores."
        )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a JSON escape such as \ud800
        return False
    return True


def _objects(order: dict, field: str, problems: list[str]):
    return _list_of_objects(order.get(field), field, problems)


def _list_of_objects(
    value: object, what: str, problems: list[str], noun: str = "objects"
) -> list[tuple[int, dict]]:
    """(index, entry) for each entry of a JSON array of objects; absent (null) is an empty one."""
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{what} is {_shown(value)}, not a list of {noun}.")
        return []
    entries = []
    for index, entry in enumerate(value):
        if isinstance(entry, dict):
            entries.append((index, entry))
        else:
            problems.append(f"{what}[{index}] is {_shown(entry)}, not an object.")
    return entries


# -- showing values in reasons ----------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not 1


def _shown(value: object) -> str:
    """A value as a reason shows it: short, and never a walk through a nested structure."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if _is_int(value):
        if value.bit_length() > 128:  # str() of a huge int is slow, and limited in Python
            return f"a whole number of about {int(value.bit_length() * 0.30103) + 1} digits"
        text = str(value)
    elif isinstance(value, (Decimal, float)):
        text = str(value)
    elif isinstance(value, str):
        text = repr(value[:61])  # escapes control characters and lone surrogates
    else:
        return f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _shown_number(value: object) -> str:
    """A number as written in the order: "1000000000000.00" reads better without quotes."""
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value.strip()):
        shown = value.strip()
        return shown if len(shown) <= 60 else shown[:57] + "..."
    return _shown(value)


def _shown_key(key: object) -> str:
    """An object key in a path such as billing.email; quoted when it is not plain text."""
    text = key[:41] if isinstance(key, str) else str(key)
    if not text.isprintable():  # control characters, lone surrogates
        text = repr(text)
    return text if len(text) <= 40 else text[:37] + "..."


def _grouped(amount: Decimal) -> str:
    """999999999999.99 as 999 999 999 999.99, the way support reads amounts."""
    whole, _, fraction = f"{amount:f}".partition(".")
    return f"{int(whole):,}".replace(",", " ") + (f".{fraction}" if fraction else "")
