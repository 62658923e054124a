"""Amounts and hours as people read them on every page and report: "1 303,90 kr".

Swedish form in both languages (``portal/formats``): decimal comma, a non-breaking space
between thousands and before the unit, whole öre. Templates use the ``money`` filter
(``{% load money %}``), Python text the functions.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils import formats

ORE = Decimal("0.01")
NBSP = "\xa0"


def _number(value, places: int) -> str:
    return formats.number_format(value, decimal_pos=places, use_l10n=True, force_grouping=True)


def money_text(value, currency: str = "SEK") -> str:
    """``1303.9`` -> "1 303,90 kr"; another currency keeps its code: "12,50 EUR". Empty for None."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value)).quantize(ORE, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return str(value)
    unit = "kr" if (currency or "SEK").upper() == "SEK" else currency.upper()
    return f"{_number(amount, 2)}{NBSP}{unit}"


def hours_text(value, *, signed: bool = False) -> str:
    """``Decimal("-2.5")`` -> "-2,50 h"; ``signed`` writes "+" before a positive number."""
    if value is None or value == "":
        return ""
    hours = Decimal(str(value)).quantize(ORE, rounding=ROUND_HALF_UP)
    sign = "+" if signed and hours > 0 else ""
    return f"{sign}{_number(hours, 2)}{NBSP}h"
