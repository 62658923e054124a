"""How billing pages write amounts for people: in the reader's language, kronor with grouped thousands."""
from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext

register = template.Library()


@register.filter
def kronor(amount: Decimal | None) -> str:
    """``1303.9`` -> "1 303,90 kr" in Swedish, "1,303.90 kr" in English; None stays empty."""
    if amount is None:
        return ""
    # Grouped whatever USE_THOUSAND_SEPARATOR says: a billing person compares amounts by their size.
    text = gettext("%(amount)s kr") % {"amount": number_format(amount, decimal_pos=2, force_grouping=True)}
    return text.replace(" ", "\xa0")  # an amount never wraps in a table cell
