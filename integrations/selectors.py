"""Reads of the integrations app for pages and reports (no writes here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from billing.models import Customer
from integrations.catalog.overwrite import shops_overwrite_held
from integrations.health import ShopHealth, shop_health, shops_with_health
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
    health: ShopHealth | None = None

    @property
    def invoiced(self) -> int:
        return self.counts.get(State.INVOICED, 0)

    @property
    def waiting(self) -> int:
        return sum(self.counts.get(s, 0) for s in (State.RECEIVED, State.QUEUED, State.TRANSFERRING))


def customer_shop_statuses(*, customer: Customer, month: date) -> list[ShopStatus]:
    """Per shop: this month's orders by state, what waits, its health and the last sync run (few queries)."""
    shops = list(shops_with_health(customer.shops.order_by("name")))
    # From the month's first moment: a range on the column itself uses its index (a date of it would not).
    since = timezone.make_aware(datetime.combine(month, time.min))
    rows = (
        OrderTransfer.objects.filter(shop__customer=customer, created_at__gte=since)
        .values("shop_id", "state")
        .annotate(n=Count("id"))
    )
    counts: dict[int, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["shop_id"], {})[row["state"]] = row["n"]
    last_runs = {}
    for run in SyncRun.objects.filter(customer=customer, shop__isnull=False).order_by("-started_at")[:200]:
        last_runs.setdefault(run.shop_id, run)
    overwrite_held = shops_overwrite_held(customer=customer)
    return [
        ShopStatus(
            shop=shop,
            counts=counts.get(shop.pk, {}),
            needs_attention=shop.health_attention,
            held=shop.health_held,
            last_run=last_runs.get(shop.pk),
            overwrite_held=shop.pk in overwrite_held,
            health=shop_health(shop),
        )
        for shop in shops
    ]


def customer_orders(*, customer: Customer, state: str = "", search: str = "") -> QuerySet[OrderTransfer]:
    """The customer's orders, newest first, unevaluated: the page slices it (LIMIT/OFFSET).

    ``search`` finds an order number exactly (with or without a leading #) or part of a buyer's
    name.
    """
    queryset = (
        OrderTransfer.objects.filter(shop__customer=customer)
        .select_related("shop")
        .order_by("-created_at", "-id")
    )
    if state:
        queryset = queryset.filter(state=state)
    search = search.strip()
    if search:
        queryset = queryset.filter(
            Q(order_number__iexact=search.removeprefix("#").strip()) | Q(buyer__icontains=search)
        )
    return queryset


def customer_order(*, customer: Customer, transfer_id: int) -> OrderTransfer | None:
    """One order with its timeline, only if it belongs to the customer."""
    return (
        OrderTransfer.objects.filter(shop__customer=customer, pk=transfer_id)
        .select_related("shop", "capture")
        .prefetch_related("events", "credits")
        .first()
    )


@dataclass(frozen=True)
class Failures:
    since: datetime
    sync_runs: int
    initial_syncs: int


def failures_since(*, since: datetime) -> Failures:
    """Sync runs started since then that failed, and initial syncs that stopped since then and
    have not been resumed (a stopped job's last sign of life is its failure)."""
    return Failures(
        since=since,
        sync_runs=SyncRun.objects.filter(outcome=SyncRun.Outcome.FAILED, started_at__gte=since).count(),
        initial_syncs=InitialSync.objects.filter(
            state=InitialSync.State.FAILED, heartbeat_at__gte=since
        ).count(),
    )
