"""``{{ amount|money }}`` -> "1 303,90 kr", ``{{ total|money:order.currency }}``, ``{{ balance|hours }}``."""

from django import template

from billing.money import hours_text, money_text

register = template.Library()


@register.filter
def money(value, currency: str = "SEK") -> str:
    return money_text(value, currency)


@register.filter
def hours(value) -> str:
    return hours_text(value)
