"""Which settings a customer's flow and package allow.

One place answers "may this customer use X?", so that the admin refuses a setting
with the same words that a flow logs when it skips a switch after the package was
lowered.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.models import Feature
from billing.selectors import feature_refusal, multishop_refusal
from integrations.models import Flow, FlowSettings, Shop
from integrations.orders.identity import store_key

# switch -> (feature it needs or None, flows it applies to, its name for people)
FLOW_SWITCHES: dict[str, tuple[Feature | None, tuple[int, ...], str]] = {
    "sync_prices": (None, (Flow.ERP, Flow.COMBO), gettext_lazy("Price sync")),
    "sync_campaign_prices": (Feature.PRICE_STRUCTURES, (Flow.ERP, Flow.COMBO), gettext_lazy("Campaign prices")),
    "sync_stock": (Feature.STOCK, (Flow.ERP, Flow.COMBO), gettext_lazy("Stock sync")),
    "order_status_to_shop": (Feature.ORDER_STATUS, (Flow.ERP, Flow.COMBO), gettext_lazy("Order status to the shop")),
    "plugins_enabled": (Feature.PLUGIN, (Flow.ECOM, Flow.ERP, Flow.COMBO), gettext_lazy("Customer plugins")),
}


@dataclass
class Refusals:
    """Field name (or None for the whole form) -> messages."""

    by_field: dict[str | None, list[str]] = field(default_factory=dict)

    def add(self, field_name: str | None, message: str) -> None:
        self.by_field.setdefault(field_name, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.by_field)

    def messages(self) -> list[str]:
        return [m for messages in self.by_field.values() for m in messages]

    def raise_if_any(self) -> None:
        if not self:
            return
        errors = {(name or "__all__"): messages for name, messages in self.by_field.items()}
        raise ValidationError(errors)


def flow_settings_refusals(*, settings: FlowSettings) -> Refusals:
    refusals = Refusals()
    customer = settings.customer
    if settings.flow == Flow.COMBO:
        reason = feature_refusal(customer=customer, feature=Feature.COMBO_FLOW, what=_("Flow 3 (Combo)"))
        if reason:
            refusals.add("flow", reason)
    for name, (feature, flows, label) in FLOW_SWITCHES.items():
        if not getattr(settings, name):
            continue
        if settings.flow not in flows:
            refusals.add(name, _not_in_flow(label, settings.flow))
            continue
        if feature is not None:
            reason = feature_refusal(customer=customer, feature=feature, what=label)
            if reason:
                refusals.add(name, reason)
    return refusals


def flow_switch_enabled(*, settings: FlowSettings, name: str) -> tuple[bool, str]:
    """Whether a switch is in effect now, and if not, why (for a flow's skip log).

    A switch ticked when the package allowed it stays ticked after a downgrade; the
    flows then skip it with this reason instead of failing.
    """
    if not getattr(settings, name):
        return False, _("switched off")
    feature, flows, label = FLOW_SWITCHES[name]
    if settings.flow not in flows:
        return False, _not_in_flow(label, settings.flow)
    if feature is not None:
        reason = feature_refusal(customer=settings.customer, feature=feature, what=label)
        if reason:
            return False, reason
    return True, ""


def _not_in_flow(label: str, flow: int) -> str:
    return _("%(switch)s is not part of %(flow)s.") % {"switch": label, "flow": Flow(flow).label}


def shop_refusals(*, shop: Shop) -> Refusals:
    refusals = Refusals()
    known = {slug for slug, _name in shop.order_statuses or []}
    unknown = [s for s in shop.trigger_statuses or [] if s not in known]
    if unknown:
        refusals.add("trigger_statuses",
                     _("The shop has no order status %(statuses)s: choose among its own statuses (test the "
                       "connection to read them again).") % {"statuses": ", ".join(unknown)})
    if shop.url:
        taken = _store_taken_by(shop)
        if taken is not None:
            refusals.add("url", _("This store is already connected as the shop \"%(shop)s\" of %(customer)s: "
                                  "one store can be one shop only, or its orders would be invoiced twice. "
                                  "Change that shop instead.") % {"shop": taken.name, "customer": taken.customer})
    if shop.is_active and shop.customer_id:
        others = Shop.objects.filter(customer_id=shop.customer_id, is_active=True)
        if shop.pk:
            others = others.exclude(pk=shop.pk)
        reason = multishop_refusal(customer=shop.customer, shop_count=others.count() + 1)
        if reason:
            refusals.add("is_active", reason)
    return refusals


def _store_taken_by(shop: Shop) -> Shop | None:
    """Another shop (of any customer) on the same WooCommerce store: same host and path."""
    key = store_key(shop.url)
    others = Shop.objects.select_related("customer").exclude(pk=shop.pk) if shop.pk else \
        Shop.objects.select_related("customer")
    host = key.split("/", 1)[0].split(":", 1)[0]
    return next((other for other in others.filter(url__icontains=host) if store_key(other.url) == key), None)
