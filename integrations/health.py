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
    """``reasons`` are for support (with the remote system's own words); ``customer_reasons`` say
    the same in plain words for the shop owner, never an error text."""

    level: str
    reasons: list[str] = field(default_factory=list)
    customer_reasons: list[str] = field(default_factory=list)
    # What the customer's page shows: only what the customer is told counts (an untested
    # connection is support's business, not an amber light without a reason).
    customer_level: str = GREEN

    @property
    def label(self) -> str:
        return str(LABELS[self.level])

    @property
    def customer_label(self) -> str:
        return str(LABELS[self.customer_level])


def _count(state: str):
    return Coalesce(
        Subquery(
            OrderTransfer.objects.filter(shop=OuterRef("pk"), state=state)
            .order_by()
            .values("shop")
            .annotate(n=Count("pk"))
            .values("n")[:1],
            output_field=IntegerField(),
        ),
        Value(0),
    )


def shops_with_health(shops: QuerySet[Shop]) -> QuerySet[Shop]:
    """The shops with what ``shop_health`` reads, in the same query."""
    last_run = SyncRun.objects.filter(shop=OuterRef("pk")).order_by("-started_at", "-id")
    return shops.annotate(
        health_last_order_at=Subquery(
            OrderTransfer.objects.filter(shop=OuterRef("pk")).order_by("-created_at").values("created_at")[:1]
        ),
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
    red: list[tuple[str | None, str | None]] = []  # (for support, for the customer); None: not said there
    amber: list[tuple[str | None, str | None]] = []
    if shop.last_check_ok is False:
        red.append(
            (
                str(
                    _("The last connection test failed: %(message)s")
                    % {"message": shop.last_check_message or _("no details")}
                ),
                str(_("The portal could not reach the shop at the last test; our support has been told.")),
            )
        )
    elif shop.last_check_ok is None:
        amber.append((str(_("The connection has not been tested yet.")), None))
    if getattr(shop, "health_run_outcome", None) == SyncRun.Outcome.FAILED:
        red.append(
            (
                str(
                    _("The last sync failed: %(error)s")
                    % {"error": (shop.health_run_error or "")[:200] or _("no details")}
                ),
                str(_("The last update failed; it is tried again automatically.")),
            )
        )
    attention = getattr(shop, "health_attention", 0) or 0
    if attention:
        said = ngettext("%(count)d order needs attention.", "%(count)d orders need attention.", attention) % {
            "count": attention
        }
        red.append((said, said + " " + str(_("Our support has been told."))))
    held = getattr(shop, "health_held", 0) or 0
    if held:
        said = ngettext(
            "%(count)d order is held: the monthly quota is reached.",
            "%(count)d orders are held: the monthly quota is reached.",
            held,
        ) % {"count": held}
        amber.append((said, said))
    if shop.is_active and not shop.registered_webhooks:
        amber.append((str(_("No webhooks registered: orders arrive by the poll only, minutes later.")), None))
    if (
        getattr(shop, "health_flow", None) in (Flow.ERP, Flow.COMBO)
        and getattr(shop, "health_accepted_at", None) is None
    ):
        # Support's pages say this in their own "prices and stock" column, with the link to accept.
        amber.append(
            (
                None,
                str(
                    _(
                        "Prices and stock are not written to this shop until the initial sync's "
                        "differences are accepted."
                    )
                ),
            )
        )
    if not shop.is_active:
        said = str(_("The shop is switched off."))
        return ShopHealth(AMBER, [said], [said], AMBER)
    found = red + amber
    level = RED if red else AMBER if amber else GREEN
    told = [c for _s, c in red if c], [c for _s, c in amber if c]
    return ShopHealth(
        level,
        [support for support, _customer in found if support],
        [customer for _support, customer in found if customer],
        RED if told[0] else AMBER if told[1] else GREEN,
    )
