"""One catalogue sync of a customer, in the directions its flow has; one at a time per customer.

Work is cut into chunks that each end well inside the task's time limit (``seconds``):
the Hogia Smart feed is read a page at a time, each page is recorded and brought to every
shop, and only then does the watermark move past it. A run cut short (its time was up, or
the worker was killed) leaves the watermark at the last page written, and the task queues
the next chunk at once (``CatalogReport.more``). A shop whose push failed keeps its own
mark (``ShopCatalog.behind_from``) and is brought up to date from the portal's copy of
the articles, so one shop that is down holds back neither the feed nor the other shops.
A full sync (nightly) walks the whole feed from the start with its own cursor.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from billing.models import Customer, Feature
from billing.selectors import feature_refusal
from integrations.catalog.bindings import shop_catalog
from integrations.catalog.hogia_feed import hogia_feed_pages, recorded_after, shop_lagging_numbers
from integrations.catalog.overwrite import shop_overwrite_allowed, shop_overwrite_held_note
from integrations.catalog.stock import stock_changed_skus
from integrations.catalog.to_hogia import articles_to_hogia
from integrations.catalog.to_shop import ShopPush, ToShopPlan, to_shop_plan
from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.clients.woocommerce import WooCommerceClient
from integrations.connections import hogia_client, woocommerce_client
from integrations.logcontext import log_context
from integrations.models import (
    CatalogState,
    Flow,
    FlowSettings,
    HogiaArticle,
    HogiaConnection,
    Shop,
    SyncLogEntry,
    SyncRun,
)
from integrations.services import RECORDED_FAILURES, failure_reason, sync_log

logger = logging.getLogger(__name__)

Level = SyncLogEntry.Level

CLAIM_SECONDS = 900
# Orders' stock changes are looked at again from this much before the last run's start:
# an order recorded while that run ran is not missed.
STOCK_OVERLAP = timedelta(minutes=2)


@dataclass
class CatalogReport:
    """What one catalogue sync did; ``writes`` counts records written in either system.

    ``more``: the run stopped at its time limit with work left; the caller runs it again.
    """

    runs: list[SyncRun] = field(default_factory=list)
    writes_woo: int = 0
    writes_hogia: int = 0
    skipped: list[str] = field(default_factory=list)
    more: bool = False

    @property
    def writes(self) -> int:
        return self.writes_woo + self.writes_hogia


class _Clock:
    def __init__(self, seconds: float | None):
        self.until = None if seconds is None else time.monotonic() + seconds

    @property
    def up(self) -> bool:
        return self.until is not None and time.monotonic() >= self.until


def _flow_settings(customer: Customer) -> FlowSettings | None:
    return FlowSettings.objects.filter(customer=customer).select_related("customer").first()


# -- claim ------------------------------------------------------------------------------------


def _claim(customer: Customer) -> CatalogState | None:
    state, _created = CatalogState.objects.get_or_create(customer=customer)
    now = timezone.now()
    claimed = (
        CatalogState.objects.filter(pk=state.pk)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + timedelta(seconds=CLAIM_SECONDS))
    )
    if not claimed:
        return None
    state.refresh_from_db()
    return state


def catalog_claims_release(*, tasks: list[tuple[int, datetime]], now: datetime | None = None) -> list[int]:
    """Free the catalogue claims that a dead host's sync tasks held (each: the customer's id, and
    when its task started), so that the next sync (every 5 minutes) runs instead of waiting out
    the claim's ``CLAIM_SECONDS``. Returns the customers' ids.

    Only the dead task's own claim is freed: taken after the task started and within its time
    limit, so it runs out between ``CLAIM_SECONDS`` and that plus the time limit after the start.
    Another worker's claim could only be taken once that one ran out: it ends later still.
    """
    from django.conf import settings

    now = now or timezone.now()
    lease = timedelta(seconds=CLAIM_SECONDS)
    longest = timedelta(seconds=settings.CATALOG_SYNC_TIME_LIMIT + 60)
    released = []
    for customer_id, started_at in tasks:
        if CatalogState.objects.filter(
            customer_id=customer_id,
            locked_until__gte=started_at + lease,
            locked_until__lt=started_at + lease + longest,
            locked_until__gt=now,
        ).update(locked_until=now):
            released.append(customer_id)
    return released


def _release(state: CatalogState) -> None:
    state.locked_until = None
    state.last_sync_at = timezone.now()
    state.save(update_fields=["locked_until", "last_sync_at"])


# -- the sync -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Obstacle:
    reason: str
    warn: bool = False  # support has to act (logged as a warning); otherwise a state chosen on purpose


def catalog_sync_obstacle(*, customer: Customer) -> Obstacle | None:
    """Why a catalogue sync of the customer would do nothing now, in words for support; None when
    it would run. The periodic sync leaves out the same customers (``customers_due``)."""
    if not customer.is_active:
        return Obstacle(gettext("the customer is not active"))
    settings = _flow_settings(customer)
    if settings is None:
        return Obstacle(gettext("the customer has no flow settings"))
    if settings.paused:
        return Obstacle(gettext("the integration is paused"))
    if not HogiaConnection.objects.filter(customer=customer).exists():
        return Obstacle(gettext("the customer has no Hogia Smart connection"))
    if not Shop.objects.filter(customer=customer, is_active=True).exists():
        return Obstacle(gettext("the customer has no active shop"))
    if settings.flow == Flow.COMBO:
        refusal = feature_refusal(customer=customer, feature=Feature.COMBO_FLOW, what="Flow 3 (Combo)")
        if refusal:
            return Obstacle(refusal, warn=True)
    return None


def catalog_sync(
    *,
    customer: Customer,
    full: bool = False,
    triggered_by: str = "",
    woo_for: Callable[[Shop], WooCommerceClient] | None = None,
    hogia: HogiaSmartClient | None = None,
    seconds: float | None = None,
) -> CatalogReport:
    """One catalogue sync of a customer in the directions its flow has.

    ``full`` reads every product and article instead of the changes (the nightly
    reconciliation); unchanged ones are still not written. ``seconds``: stop starting new
    work after this long and report ``more`` (None: run to the end).

    A failure nobody foresaw fails the runs it stopped, is logged on the customer with its
    reason, and is raised again (the task queue keeps the traceback).
    """
    with log_context(customer=customer.pk):
        try:
            return _catalog_sync(
                customer=customer,
                full=full,
                triggered_by=triggered_by,
                woo_for=woo_for,
                hogia=hogia,
                seconds=seconds,
            )
        except RECORDED_FAILURES as exc:
            sync_log(
                customer=customer,
                level=Level.ERROR,
                object_type="catalogue",
                message=f"Catalogue sync failed: {failure_reason(exc)}. It runs again at the next interval.",
            )
            raise


def _run_logged(run: SyncRun, *, to: str) -> None:
    """The batch's summary for the log: one line for a run that wrote, or failed to write, anything."""
    if run.created_count or run.updated_count or run.failed_count or run.error:
        with log_context(shop=run.shop_id, run=run.pk):
            logger.info(
                "articles written to %s: %d created, %d updated, %d failed%s",
                to,
                run.created_count,
                run.updated_count,
                run.failed_count,
                f"; stopped: {run.error}" if run.error else "",
            )


def _catalog_sync(
    *,
    customer: Customer,
    full: bool,
    triggered_by: str,
    woo_for: Callable[[Shop], WooCommerceClient] | None,
    hogia: HogiaSmartClient | None,
    seconds: float | None,
) -> CatalogReport:
    report = CatalogReport()
    obstacle = catalog_sync_obstacle(customer=customer)
    if obstacle is not None:
        if obstacle.warn:
            sync_log(
                customer=customer,
                level=Level.WARNING,
                object_type="catalogue",
                message=f"Catalogue sync skipped: {obstacle.reason}",
            )
        report.skipped.append(obstacle.reason)
        return report
    settings = _flow_settings(customer)
    connection = HogiaConnection.objects.get(customer=customer)
    state = _claim(customer)
    if state is None:
        report.skipped.append("another catalogue sync of the customer is running")
        return report
    clock = _Clock(seconds)
    try:
        hogia = hogia or hogia_client(connection=connection)
        woo_for = woo_for or (lambda shop: woocommerce_client(shop=shop))
        shops = list(Shop.objects.filter(customer=customer, is_active=True).select_related("customer"))
        if settings.flow in (Flow.ECOM, Flow.COMBO):
            if settings.sync_articles:
                for shop in shops:
                    with log_context(shop=shop.pk):
                        run = articles_to_hogia(
                            shop=shop,
                            woo=woo_for(shop),
                            hogia=hogia,
                            full=full,
                            flow=settings.flow,
                            triggered_by=triggered_by,
                            stop=lambda: clock.up,
                        )
                    _run_logged(run, to="Hogia Smart")
                    report.runs.append(run)
                    report.writes_hogia += run.created_count + run.updated_count
                    report.more |= bool(run.details.get("more"))
            else:
                report.skipped.append("article sync is switched off")
        if settings.flow in (Flow.ERP, Flow.COMBO):
            # At least one page even when the shop → Hogia direction used the time up: each
            # chunk moves both directions forward.
            plan = to_shop_plan(settings)
            if plan.switches.any or plan.create:
                _hogia_to_shops(
                    customer=customer,
                    state=state,
                    hogia=hogia,
                    woo_for=woo_for,
                    shops=shops,
                    plan=plan,
                    full=full,
                    clock=clock,
                    report=report,
                    triggered_by=triggered_by,
                )
            report.skipped.extend(plan.skipped)
    finally:
        _release(state)
    return report


def _hogia_to_shops(
    *,
    customer: Customer,
    state: CatalogState,
    hogia: HogiaSmartClient,
    woo_for: Callable[[Shop], WooCommerceClient],
    shops: list[Shop],
    plan: ToShopPlan,
    full: bool,
    clock: _Clock,
    report: CatalogReport,
    triggered_by: str,
) -> None:
    started = timezone.now()
    if full and state.full_row_version is None:
        state.full_row_version = 0
        state.save(update_fields=["full_row_version"])
    walking_all = state.full_row_version is not None
    pushes: list[ShopPush] = []
    try:
        for shop in shops:
            shop_plan, catalog = plan, shop_catalog(shop=shop)
            if not shop_overwrite_allowed(catalog=catalog):
                report.skipped.append(shop_overwrite_held_note(shop=shop))
                if not plan.create:
                    continue
                # Creating a product the shop does not have overwrites nothing: flow 2 goes on creating
                # new ones while the existing products wait for acceptance.
                shop_plan = replace(plan, update_existing=False)
            pushes.append(
                ShopPush(
                    shop=shop,
                    woo=woo_for(shop),
                    plan=shop_plan,
                    triggered_by=triggered_by,
                    whole_shop=walking_all,
                    catalog=catalog,
                )
            )
        # 1. Shops a failed push left behind catch up from the portal's copy of the articles.
        for push in pushes:
            mark = push.catalog.behind_from
            if mark is None:
                continue
            caught_up = True
            for page in recorded_after(customer=customer, row_version=mark):
                if not push.push(page.numbers):
                    caught_up = False
                    break
                _shop_behind(push, after=page.highest)
                if clock.up:
                    caught_up = False
                    report.more = True
                    break
            if caught_up:
                _shop_behind(push, after=None)
        # 2. The feed, a page at a time; the watermark moves past a page once it is in the shops.
        cursor = state.full_row_version if walking_all else state.hogia_row_version
        for page in hogia_feed_pages(customer=customer, hogia=hogia, after=cursor):
            for push in pushes:
                if push.error is None and not push.push(page.numbers):
                    _shop_behind(push, after=cursor, keep_older=True)
            cursor = max(cursor, page.highest)
            _feed_moved(state, cursor, walking_all=walking_all)
            if clock.up:
                report.more = True
                return
        if walking_all:
            state.full_row_version = None
            state.last_full_sync_at = timezone.now()
            state.save(update_fields=["full_row_version", "last_full_sync_at"])
        # 3. Articles whose stock the shops' orders changed since the last run, and articles a
        #    shop has an older version of than recorded (a push cut short).
        again = set()
        if plan.switches.stock:
            since = state.stock_lines_until - STOCK_OVERLAP if state.stock_lines_until else None
            skus = stock_changed_skus(customer=customer, since=since)
            again = (
                set(
                    HogiaArticle.objects.filter(customer=customer, number__in=list(skus)).values_list(
                        "number", flat=True
                    )
                )
                if skus
                else set()
            )
        for push in pushes:
            numbers = sorted(again | set(shop_lagging_numbers(shop=push.shop)))
            if numbers and push.error is None:
                push.push(numbers)
        if plan.switches.stock:
            state.stock_lines_until = started
            state.save(update_fields=["stock_lines_until"])
    except RECORDED_FAILURES as exc:
        for push in pushes:
            push.error = push.error or failure_reason(exc)  # every shop's run stopped here
        raise
    finally:
        for push in pushes:
            run = push.finish()
            _run_logged(run, to="the shop")
            report.runs.append(run)
            report.writes_woo += run.created_count + run.updated_count


def _feed_moved(state: CatalogState, cursor: int, *, walking_all: bool) -> None:
    if walking_all:
        state.full_row_version = cursor
        fields = ["full_row_version"]
        if cursor > state.hogia_row_version:
            # The full walk has read every change up to here: the change feed need not again.
            state.hogia_row_version = cursor
            fields.append("hogia_row_version")
    else:
        state.hogia_row_version = cursor
        fields = ["hogia_row_version"]
    state.save(update_fields=fields)


def _shop_behind(push: ShopPush, *, after: int | None, keep_older: bool = False) -> None:
    catalog = push.catalog
    if keep_older and catalog.behind_from is not None and catalog.behind_from <= (after or 0):
        return
    catalog.behind_from = after
    catalog.save(update_fields=["behind_from"])


def customers_due() -> list[int]:
    """Customers whose catalogue the periodic sync looks at."""
    return list(
        Customer.objects.filter(
            is_active=True, flow_settings__paused=False, hogia_connection__isnull=False, shops__is_active=True
        )
        .distinct()
        .values_list("pk", flat=True)
    )
