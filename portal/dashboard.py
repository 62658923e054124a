"""The admin home: what needs a person now, each a count that links to the list behind it.

Every figure is one indexed query whatever the size of the tables (the page is opened
all day), so the home costs a fixed number of queries: ``benchmark pages`` measures it
with a million log rows and 100,000 order transfers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.dates import month_start
from billing.models import OrderUsage, Subscription
from integrations.models import (
    InitialSync,
    OrderTransfer,
    PaymentCapture,
    Shop,
    StatusPush,
    SyncLogEntry,
    SyncRun,
)
from integrations.selectors import failures_since
from portal.cluster import hosts_seen, stale_after

# A customer is "near the quota" from this share of the month's orders.
NEAR_QUOTA = 0.9
RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class Tally:
    key: str
    label: str
    count: int
    url: str
    level: str  # "red": someone must act; "amber": look at it; "ok": nothing to do
    permission: str = "integrations.view_ordertransfer"  # who may open the list behind it
    alarm_when_zero: bool = False  # a count of good things (fresh hosts): none is the alarm

    @property
    def css(self) -> str:
        return self.level if bool(self.count) != self.alarm_when_zero else "ok"


def _link(name: str, **filters) -> str:
    url = reverse(name)
    return f"{url}?{urlencode(filters)}" if filters else url


def support_tallies(*, now=None) -> list[Tally]:
    """The counts on the admin home, most urgent first."""
    now = now or timezone.now()
    since = now - RECENT
    failures = failures_since(since=since)
    stamp = since.isoformat(timespec="seconds")  # the list shows exactly what was counted
    transfers = OrderTransfer.objects.filter(
        state__in=[OrderTransfer.State.NEEDS_ATTENTION, OrderTransfer.State.HELD]
    )
    by_state = dict(transfers.order_by().values_list("state").annotate(n=Count("pk")))
    near = customers_near_quota(today=timezone.localdate(now))
    # One row per active shop (hundreds, not millions): JSON emptiness is not portable SQL.
    active = list(Shop.objects.filter(is_active=True).values_list("last_check_ok", "registered_webhooks"))
    shops = {
        "failing": sum(1 for ok, _hooks in active if ok is False),
        "without_webhooks": sum(1 for _ok, hooks in active if not hooks),
    }
    changelist = "admin:integrations_ordertransfer_changelist"
    return [
        cluster_hosts_tally(now=now),
        Tally(
            "attention",
            str(_("Orders needing attention")),
            by_state.get(OrderTransfer.State.NEEDS_ATTENTION, 0),
            _link(changelist, state__exact=OrderTransfer.State.NEEDS_ATTENTION),
            "red",
        ),
        Tally(
            "status_attention",
            str(_("Invoice statuses the shop did not get (needs attention)")),
            StatusPush.objects.filter(state=StatusPush.State.NEEDS_ATTENTION).count(),
            _link("admin:integrations_statuspush_changelist", state__exact=StatusPush.State.NEEDS_ATTENTION),
            "red",
            "integrations.view_statuspush",
        ),
        Tally(
            "captures_failed",
            str(_("Payments the shop's payment plugin did not capture")),
            PaymentCapture.objects.filter(state=PaymentCapture.State.FAILED).count(),
            _link("admin:integrations_paymentcapture_changelist", state__exact=PaymentCapture.State.FAILED),
            "red",
            "integrations.view_paymentcapture",
        ),
        Tally(
            "failing_shops",
            str(_("Shops whose connection test failed")),
            shops["failing"],
            _link("admin:integrations_shop_changelist", is_active__exact=1, last_check_ok__exact=0),
            "red",
            "integrations.view_shop",
        ),
        Tally(
            "failed_runs",
            str(_("Sync runs that failed in the last 24 hours")),
            failures.sync_runs,
            _link(
                "admin:integrations_syncrun_changelist",
                outcome__exact=SyncRun.Outcome.FAILED,
                started_at__gte=stamp,
            ),
            "red",
            "integrations.view_syncrun",
        ),
        Tally(
            "failed_initial_syncs",
            str(_("Initial syncs that stopped in the last 24 hours")),
            failures.initial_syncs,
            _link(
                "admin:integrations_initialsync_changelist",
                state__exact=InitialSync.State.FAILED,
                heartbeat_at__gte=stamp,
            ),
            "red",
            "integrations.view_initialsync",
        ),
        Tally(
            "held",
            str(_("Orders held by the monthly quota")),
            by_state.get(OrderTransfer.State.HELD, 0),
            _link(changelist, state__exact=OrderTransfer.State.HELD),
            "amber",
        ),
        Tally(
            "near_quota",
            # Not a format string (the text is shown as it is): "% o" is no placeholder.
            # xgettext:no-python-format
            str(_("Customers at 90 % or more of their quota")),
            len(near),
            _link("admin:billing_customer_changelist", id__in=",".join(str(pk) for pk in near[:200])),
            "amber",
            "billing.view_customer",
        ),
        Tally(
            "webhooks",
            str(_("Active shops without registered webhooks")),
            shops["without_webhooks"],
            _link("admin:integrations_shop_changelist", is_active__exact=1),
            "amber",
            "integrations.view_shop",
        ),
        Tally(
            "webhooks_disabled",
            str(_("Webhooks WooCommerce disabled in the last 24 hours")),
            SyncLogEntry.objects.filter(
                created_at__gte=since, object_type="webhook", level=SyncLogEntry.Level.WARNING
            ).count(),
            _link(
                "admin:integrations_synclogentry_changelist",
                object_type__exact="webhook",
                level__exact=SyncLogEntry.Level.WARNING,
            ),
            "amber",
            "integrations.view_synclogentry",
        ),
    ]


def cluster_hosts_tally(*, now=None) -> Tally:
    """The task cluster's hosts whose workers beat lately, named with their ages; red when none
    does (then nothing is transferred, and /health/ fails)."""
    hosts = [host for host in hosts_seen(now=now) if not host.stopped]
    fresh = [host for host in hosts if host.fresh]
    ages = ", ".join(
        f"{host.name} {round(host.workers_beat_seconds_ago)} s"
        if host.workers_beat_seconds_ago is not None
        else f"{host.name} –"
        for host in hosts[:6]
    )
    label = _("Task cluster hosts running (workers seen within %(seconds)d s)") % {
        "seconds": stale_after().total_seconds()
    }
    return Tally(
        "cluster_hosts",
        f"{label}: {ages}" if ages else str(label),
        len(fresh),
        reverse("health"),
        "red",
        "portal.view_clusterhost",
        alarm_when_zero=True,
    )


def customers_near_quota(*, today) -> list[int]:
    """Active customers whose places taken this month are at least ``NEAR_QUOTA`` of their limit."""
    limits: dict[int, int | None] = {}
    for customer_id, limit in (
        Subscription.objects.filter(customer__is_active=True, start_date__lte=today)
        .order_by("customer_id", "-start_date", "-id")
        .values_list("customer_id", "package__monthly_order_limit")
    ):
        limits.setdefault(customer_id, limit)  # the newest started subscription is in force
    used = dict(
        OrderUsage.objects.filter(
            month=month_start(today), status__in=[OrderUsage.Status.COUNTED, OrderUsage.Status.RESERVED]
        )
        .order_by()
        .values_list("customer_id")
        .annotate(n=Count("pk"))
    )
    return sorted(pk for pk, limit in limits.items() if limit and used.get(pk, 0) >= NEAR_QUOTA * limit)
