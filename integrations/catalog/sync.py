"""One catalogue sync of a customer, in the directions its flow has; one at a time per customer."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Callable

from django.db.models import Q
from django.utils import timezone

from billing.models import Customer, Feature
from billing.selectors import feature_refusal
from integrations.catalog.bindings import shop_catalog
from integrations.catalog.hogia_feed import hogia_changes_read, shop_lagging_numbers
from integrations.catalog.overwrite import shop_caught_up, shop_overwrite_allowed, shop_overwrite_held_note
from integrations.catalog.stock import reserved_quantities
from integrations.catalog.to_hogia import articles_to_hogia
from integrations.catalog.to_shop import hogia_to_shop, to_shop_plan
from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.clients.woocommerce import WooCommerceClient
from integrations.connections import hogia_client, woocommerce_client
from integrations.models import (CatalogState, Flow, FlowSettings, HogiaArticle, HogiaConnection, Shop,
                                 SyncLogEntry, SyncRun)
from integrations.services import sync_log

logger = logging.getLogger(__name__)

Level = SyncLogEntry.Level

CLAIM_SECONDS = 900


@dataclass
class CatalogReport:
    """What one catalogue sync did; ``writes`` counts records written in either system."""

    runs: list[SyncRun] = field(default_factory=list)
    writes_woo: int = 0
    writes_hogia: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return self.writes_woo + self.writes_hogia


def _flow_settings(customer: Customer) -> FlowSettings | None:
    return FlowSettings.objects.filter(customer=customer).select_related("customer").first()


def _claim(customer: Customer) -> CatalogState | None:
    state, _ = CatalogState.objects.get_or_create(customer=customer)
    now = timezone.now()
    claimed = (CatalogState.objects.filter(pk=state.pk)
               .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
               .update(locked_until=now + timedelta(seconds=CLAIM_SECONDS)))
    if not claimed:
        return None
    state.refresh_from_db()
    return state


def _release(state: CatalogState, *, full: bool) -> None:
    now = timezone.now()
    state.locked_until = None
    state.last_sync_at = now
    fields = ["locked_until", "last_sync_at"]
    if full:
        state.last_full_sync_at = now
        fields.append("last_full_sync_at")
    state.save(update_fields=fields)


def catalog_sync(*, customer: Customer, full: bool = False, triggered_by: str = "",
                 woo_for: Callable[[Shop], WooCommerceClient] | None = None,
                 hogia: HogiaSmartClient | None = None) -> CatalogReport:
    """One catalogue sync of a customer in the directions its flow has.

    ``full`` reads every product and article instead of the changes (a nightly
    reconciliation and the benchmark's second run); unchanged ones are still not written.
    """
    report = CatalogReport()
    settings = _flow_settings(customer)
    if settings is None:
        report.skipped.append("the customer has no flow settings")
        return report
    if settings.paused:
        report.skipped.append("the integration is paused")
        return report
    connection = HogiaConnection.objects.filter(customer=customer).first()
    if connection is None:
        report.skipped.append("the customer has no Hogia Smart connection")
        return report
    if settings.flow == Flow.COMBO:
        refusal = feature_refusal(customer=customer, feature=Feature.COMBO_FLOW, what="Flow 3 (Combo)")
        if refusal:
            sync_log(customer=customer, level=Level.WARNING, object_type="catalogue",
                     message=f"Catalogue sync skipped: {refusal}")
            report.skipped.append(refusal)
            return report
    state = _claim(customer)
    if state is None:
        report.skipped.append("another catalogue sync of the customer is running")
        return report
    try:
        hogia = hogia or hogia_client(connection=connection)
        woo_for = woo_for or (lambda shop: woocommerce_client(shop=shop))
        shops = list(Shop.objects.filter(customer=customer, is_active=True).select_related("customer"))
        if settings.flow in (Flow.ECOM, Flow.COMBO):
            if settings.sync_articles:
                for shop in shops:
                    run = articles_to_hogia(shop=shop, woo=woo_for(shop), hogia=hogia, full=full,
                                            flow=settings.flow, triggered_by=triggered_by)
                    report.runs.append(run)
                    report.writes_hogia += run.created_count + run.updated_count
            else:
                report.skipped.append("article sync is switched off")
        if settings.flow in (Flow.ERP, Flow.COMBO):
            plan = to_shop_plan(settings)
            if plan.switches.any or plan.create:
                numbers = hogia_changes_read(customer=customer, hogia=hogia, state=state, full=full)
                reserved = (reserved_quantities(customer=customer, woo_for=woo_for)
                            if plan.switches.stock else {})
                for shop in shops:
                    catalog = shop_catalog(shop=shop)
                    shop_plan = plan
                    if not shop_overwrite_allowed(catalog=catalog):
                        report.skipped.append(shop_overwrite_held_note(shop=shop))
                        if not plan.create:
                            continue
                        # Creating a product the shop does not have overwrites nothing: flow 2 goes on
                        # creating new ones while the existing products wait for acceptance.
                        shop_plan = replace(plan, update_existing=False)
                    # Accepted since the last sync: what the feed brought while the shop was held is
                    # behind its mark, so every recorded article goes to the shop once.
                    whole = shop_plan.update_existing and catalog.catch_up_due
                    # Otherwise a shop that missed a push (it was down) catches up here, not only nightly.
                    behind = _recorded_numbers(customer) if whole else shop_lagging_numbers(shop=shop)
                    run = hogia_to_shop(shop=shop, numbers=list(dict.fromkeys(numbers + behind)),
                                        woo=woo_for(shop), plan=shop_plan, reserved=reserved,
                                        triggered_by=triggered_by)
                    if whole:
                        shop_caught_up(catalog=catalog, run=run)
                    report.runs.append(run)
                    report.writes_woo += run.created_count + run.updated_count
            for reason in plan.skipped:
                report.skipped.append(reason)
    finally:
        _release(state, full=full)
    return report


def _recorded_numbers(customer: Customer) -> list[str]:
    return list(HogiaArticle.objects.filter(customer=customer).order_by("number").values_list("number", flat=True))


def customers_due() -> list[int]:
    """Customers whose catalogue the periodic sync looks at."""
    return list(Customer.objects.filter(
        is_active=True, flow_settings__paused=False, hogia_connection__isnull=False,
        shops__is_active=True).distinct().values_list("pk", flat=True))
