"""Reads of the integrations app for pages and reports (no writes here)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, Q, QuerySet

from billing.models import Customer
from integrations.catalog.overwrite import shops_overwrite_held
from integrations.models import InitialSync, OrderTransfer, Shop, SyncRun

State = OrderTransfer.State


@dataclass
class ShopStatus:
    shop: Shop
    counts: dict[str, int]  # state -> orders first seen this month
    needs_attention: int
    held: int
    last_run: SyncRun | None
    overwrite_held: bool = False  # prices and stock wait for support to accept the initial sync

    @property
    def invoiced(self) -> int:
        return self.counts.get(State.INVOICED, 0)

    @property
    def waiting(self) -> int:
        return sum(self.counts.get(s, 0) for s in (State.RECEIVED, State.QUEUED, State.TRANSFERRING))


def customer_shop_statuses(*, customer: Customer, month: date) -> list[ShopStatus]:
    """Per shop: this month's orders by state, what waits, and the last sync run (few queries)."""
    shops = list(customer.shops.order_by("name"))
    rows = (OrderTransfer.objects.filter(shop__customer=customer, created_at__date__gte=month)
            .values("shop_id", "state").annotate(n=Count("id")))
    counts: dict[int, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["shop_id"], {})[row["state"]] = row["n"]
    waiting = dict(OrderTransfer.objects.filter(shop__customer=customer)
                   .values("shop_id").annotate(n=Count("id", filter=Q(state=State.NEEDS_ATTENTION)))
                   .values_list("shop_id", "n"))
    held = dict(OrderTransfer.objects.filter(shop__customer=customer)
                .values("shop_id").annotate(n=Count("id", filter=Q(state=State.HELD)))
                .values_list("shop_id", "n"))
    last_runs = {}
    for run in SyncRun.objects.filter(customer=customer, shop__isnull=False).order_by("-started_at")[:200]:
        last_runs.setdefault(run.shop_id, run)
    overwrite_held = shops_overwrite_held(customer=customer)
    return [ShopStatus(shop=shop, counts=counts.get(shop.pk, {}), needs_attention=waiting.get(shop.pk, 0),
                       held=held.get(shop.pk, 0), last_run=last_runs.get(shop.pk),
                       overwrite_held=shop.pk in overwrite_held) for shop in shops]


def customer_orders(*, customer: Customer, state: str = "", search: str = "") -> QuerySet[OrderTransfer]:
    """The customer's orders, newest first, unevaluated: the page slices it (LIMIT/OFFSET).

    ``search`` finds an order number exactly (with or without a leading #) or part of a buyer's
    name.
    """
    queryset = (OrderTransfer.objects.filter(shop__customer=customer).select_related("shop")
                .order_by("-created_at", "-id"))
    if state:
        queryset = queryset.filter(state=state)
    search = search.strip()
    if search:
        queryset = queryset.filter(Q(order_number__iexact=search.removeprefix("#").strip())
                                   | Q(buyer__icontains=search))
    return queryset


def customer_order(*, customer: Customer, transfer_id: int) -> OrderTransfer | None:
    """One order with its timeline, only if it belongs to the customer."""
    return (OrderTransfer.objects.filter(shop__customer=customer, pk=transfer_id).select_related("shop")
            .prefetch_related("events", "credits").first())


@dataclass(frozen=True)
class Failures:
    since: datetime
    sync_runs: int
    initial_syncs: int


def failures_since(*, since: datetime) -> Failures:
    """Sync runs started since then that failed, and initial syncs that stopped since then and
    have not been resumed (a stopped job's last sign of life is its failure)."""
    return Failures(since=since,
                    sync_runs=SyncRun.objects.filter(outcome=SyncRun.Outcome.FAILED, started_at__gte=since).count(),
                    initial_syncs=InitialSync.objects.filter(state=InitialSync.State.FAILED,
                                                             heartbeat_at__gte=since).count())
