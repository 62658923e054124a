"""How each shop is doing, in one word (green, amber, red) and the reasons behind it.

Shown on the shop list, the customer's admin page and the customer's own page. The facts
come as annotations on the shop queryset (``shops_with_health``), so a page of shops costs
one query whatever the number of orders and runs behind them:

- red: the last connection test failed, the last sync run failed, or orders need a person;
- amber: never tested, no webhooks registered (orders then come by the poll only, minutes
  late), orders held by the quota, or prices and stock waiting for acceptance (flows 2, 3);
- green otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from integrations.models import Flow, OrderTransfer, Shop, SyncRun

GREEN, AMBER, RED = "green", "amber", "red"
LABELS = {GREEN: _("working"), AMBER: _("needs a look"), RED: _("needs action")}


@dataclass(frozen=True)
class ShopHealth:
    level: str
    reasons: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(LABELS[self.level])


def _count(state: str):
    return Coalesce(Subquery(
        OrderTransfer.objects.filter(shop=OuterRef("pk"), state=state).order_by()
        .values("shop").annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField()), Value(0))


def shops_with_health(shops: QuerySet[Shop]) -> QuerySet[Shop]:
    """The shops with what ``shop_health`` reads, in the same query."""
    last_run = SyncRun.objects.filter(shop=OuterRef("pk")).order_by("-started_at", "-id")
    return shops.annotate(
        health_last_order_at=Subquery(OrderTransfer.objects.filter(shop=OuterRef("pk"))
                                      .order_by("-created_at").values("created_at")[:1]),
        health_attention=_count(OrderTransfer.State.NEEDS_ATTENTION),
        health_held=_count(OrderTransfer.State.HELD),
        health_run_outcome=Subquery(last_run.values("outcome")[:1]),
        health_run_at=Subquery(last_run.values("started_at")[:1]),
        health_run_error=Subquery(last_run.values("error")[:1]),
        health_flow=F("customer__flow_settings__flow"),
        health_accepted_at=F("catalog__overwrite_accepted_at"),
    )


def shop_health(shop: Shop) -> ShopHealth:
    """The shop's health from the annotations of ``shops_with_health``."""
    red: list[str] = []
    amber: list[str] = []
    if shop.last_check_ok is False:
        red.append(str(_("The last connection test failed: %(message)s")
                       % {"message": shop.last_check_message or _("no details")}))
    elif shop.last_check_ok is None:
        amber.append(str(_("The connection has not been tested yet.")))
    if getattr(shop, "health_run_outcome", None) == SyncRun.Outcome.FAILED:
        red.append(str(_("The last sync failed: %(error)s")
                       % {"error": (shop.health_run_error or "")[:200] or _("no details")}))
    attention = getattr(shop, "health_attention", 0) or 0
    if attention:
        red.append(ngettext("%(count)d order needs attention.", "%(count)d orders need attention.",
                            attention) % {"count": attention})
    held = getattr(shop, "health_held", 0) or 0
    if held:
        amber.append(ngettext("%(count)d order is held: the monthly quota is reached.",
                              "%(count)d orders are held: the monthly quota is reached.", held) % {"count": held})
    if shop.is_active and not shop.registered_webhooks:
        amber.append(str(_("No webhooks registered: orders arrive by the poll only, minutes later.")))
    if (getattr(shop, "health_flow", None) in (Flow.ERP, Flow.COMBO)
            and getattr(shop, "health_accepted_at", None) is None):
        amber.append(str(_("Prices and stock wait until the initial sync's differences are accepted.")))
    if not shop.is_active:
        return ShopHealth(AMBER, [str(_("The shop is switched off."))])
    if red:
        return ShopHealth(RED, red + amber)
    if amber:
        return ShopHealth(AMBER, amber)
    return ShopHealth(GREEN, [])
