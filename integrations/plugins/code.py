"""Code plugins: what rules cannot say, as Python classes in this repository.

Never code typed into the admin: a plugin is a class here, registered by name, reviewed
and tested like the rest of the portal, and enabled per customer by naming it in a plugin
version. Its interface is narrow and works on plain data:

- ``before_map(order) -> order``: the WooCommerce order (a dict) before the standard
  mapping reads it (e.g. move a checkout field where the mapping looks);
- ``after_map(order, invoice, lines) -> (invoice, lines)``: the Hogia Smart invoice body
  after the mapping and the customer's rules.

A plugin returns new dicts and never mutates what it is given. The VAT gate runs after
every plugin, so a plugin cannot post an invoice that does not add up to its order.
"""

from __future__ import annotations

import re
from typing import ClassVar

from django.utils.translation import gettext_lazy


class CodePlugin:
    """Base class: override either hook; the defaults change nothing."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""

    def before_map(self, order: dict) -> dict:
        return order

    def after_map(self, order: dict, invoice: dict, lines: list[dict]) -> tuple[dict, list[dict]]:
        return invoice, lines


CODE_PLUGINS: dict[str, type[CodePlugin]] = {}


def register(plugin: type[CodePlugin]) -> type[CodePlugin]:
    if not plugin.name or plugin.name in CODE_PLUGINS:
        raise ValueError(f"a code plugin needs a unique name, not {plugin.name!r}")
    CODE_PLUGINS[plugin.name] = plugin
    return plugin


def code_plugin_choices() -> list[tuple[str, str]]:
    return [(name, str(plugin.label)) for name, plugin in sorted(CODE_PLUGINS.items())]


def code_plugins_load(names: list[str]) -> list[CodePlugin]:
    """The plugins a version names, in its order; an unknown name (a plugin removed from the
    code) raises KeyError, so that an order is stopped rather than mapped without it."""
    return [CODE_PLUGINS[name]() for name in names]


@register
class GiftWrapArticle(CodePlugin):
    """A gift-wrap fee (a fee line named like "Presentinslagning" or "Gift wrap") is booked on its
    own article ``PRESENT`` instead of the general fee article, so that the shop's gift-wrap income
    shows on its own account in Hogia Smart. Only the article changes: the amount and VAT stay."""

    name = "gift_wrap_article"
    label = gettext_lazy("Gift wrap fee on its own article (PRESENT)")
    ARTICLE = "PRESENT"
    NAMES = re.compile(r"presentinslagning|presentförpackning|gift ?wrap", re.IGNORECASE)

    def after_map(self, order: dict, invoice: dict, lines: list[dict]) -> tuple[dict, list[dict]]:
        gift_fees = {
            str(fee.get("name") or "")
            for fee in order.get("fee_lines") or []
            if self.NAMES.search(str(fee.get("name") or ""))
        }
        if not gift_fees:
            return invoice, lines
        return invoice, [
            dict(line, articleNumber=self.ARTICLE)
            if line.get("description") in gift_fees and line.get("articleNumber")
            else line
            for line in lines
        ]
