"""Read-only questions other apps ask billing (what a customer's package includes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.dates import local_midnight, month_end, month_start
from billing.models import (
    Customer,
    Feature,
    MonthlyOrderVolume,
    OrderUsage,
    Package,
    ServiceHourEntry,
    ShopCount,
    Subscription,
)
from billing.statements import (
    History,
    HourPackBought,
    Installation,
    MonthStatement,
    MonthUsage,
    Term,
    next_month,
    statement_build,
    term_in_force,
)

ZERO = Decimal("0.00")
DEFAULT_HOURLY_RATE = "950"


def subscription_current(
    *, customer: Customer, on: date | None = None, leaving_out: Subscription | None = None
) -> Subscription | None:
    """The subscription in force on a day: the newest one that has started by then.

    ``leaving_out``: as if that subscription did not exist (one being changed on a form).
    """
    if customer.pk is None:  # a customer being added on the admin page has nothing saved yet
        return None
    day = on or timezone.localdate()
    subscriptions = Subscription.objects.filter(customer=customer, start_date__lte=day)
    if leaving_out is not None and leaving_out.pk is not None:
        subscriptions = subscriptions.exclude(pk=leaving_out.pk)
    return subscriptions.select_related("package").order_by("-start_date", "-id").first()


def subscriptions_from(*, customer: Customer, on: date | None = None) -> list[Subscription]:
    """The subscription in force on a day and every one starting after it, in date order."""
    if customer.pk is None:
        return []
    day = on or timezone.localdate()
    current = subscription_current(customer=customer, on=day)
    later = list(
        Subscription.objects.filter(customer=customer, start_date__gt=day)
        .select_related("package")
        .order_by("start_date", "id")
    )
    return ([current] if current else []) + later


def subscription_next(
    *, customer: Customer, after: date, leaving_out: Subscription | None = None
) -> Subscription | None:
    """The first subscription starting after a day: the one that takes over from it."""
    if customer.pk is None:
        return None
    subscriptions = Subscription.objects.filter(customer=customer, start_date__gt=after)
    if leaving_out is not None and leaving_out.pk is not None:
        subscriptions = subscriptions.exclude(pk=leaving_out.pk)
    return subscriptions.select_related("package").order_by("start_date", "id").first()


def subscription_same_start(
    *, customer: Customer, start_date: date, leaving_out: Subscription | None = None
) -> Subscription | None:
    """A subscription of the customer starting on that day, other than ``leaving_out``."""
    if customer.pk is None:
        return None
    others = Subscription.objects.filter(customer=customer, start_date=start_date)
    if leaving_out is not None and leaving_out.pk is not None:
        others = others.exclude(pk=leaving_out.pk)
    return others.select_related("package").first()


def customer_package(*, customer: Customer, on: date | None = None) -> Package | None:
    subscription = subscription_current(customer=customer, on=on)
    return subscription.package if subscription else None


def package_smallest_with(*, feature: Feature | str) -> Package | None:
    """The cheapest package sold that includes a feature (for "needs package 400" messages)."""
    return Package.objects.filter(is_active=True, **{Feature(feature).value: True}).order_by("rank").first()


def feature_refusal(*, customer: Customer, feature: Feature | str, what: str) -> str | None:
    """Why a customer may not use a feature, in words for support; None when it may.

    ``what`` names the setting being refused, e.g. "Flow 3 (Combo)".
    """
    package = customer_package(customer=customer)
    if package is not None and package.includes(feature):
        return None
    needed = package_smallest_with(feature=feature)
    needs = (
        _("package %(code)s or larger") % {"code": needed.code} if needed else _("a package that includes it")
    )
    has = _("package %(code)s") % {"code": package.code} if package else _("no package yet")
    return _("%(what)s needs %(needs)s (%(feature)s); %(customer)s has %(has)s.") % {
        "what": what,
        "needs": needs,
        "feature": Feature(feature).label,
        "customer": customer.name,
        "has": has,
    }


def multishop_refusal(*, customer: Customer, shop_count: int) -> str | None:
    """Refusal for connecting ``shop_count`` active shops, or None when the package allows it."""
    if shop_count <= 1:
        return None
    return feature_refusal(
        customer=customer,
        feature=Feature.MULTISHOP,
        what=_("Connecting %(count)d active shops (multishop)") % {"count": shop_count},
    )


# -- subscriptions in force, quota -------------------------------------------------------------


def subscription_in_force(*, customer: Customer, on: date | None = None) -> Subscription | None:
    """Like ``subscription_current`` but None once a cancelled subscription has ended."""
    day = on or timezone.localdate()
    subscription = subscription_current(customer=customer, on=day)
    if (
        subscription is not None
        and subscription.effective_end_date is not None
        and day > subscription.effective_end_date
    ):
        return None
    return subscription


def package_in_force(*, customer: Customer, on: date | None = None) -> Package | None:
    subscription = subscription_in_force(customer=customer, on=on)
    return subscription.package if subscription else None


@dataclass(frozen=True)
class QuotaStatus:
    month: date
    package_code: str
    limit: int | None  # None: no limit (Premium)
    used: int  # places taken: orders counted plus places reserved for orders on their way
    held: int  # held orders waiting now, whatever month they arrived in
    percent: Decimal | None  # used / limit in percent, one decimal; None without a limit

    @property
    def unlimited(self) -> bool:
        return self.limit is None and bool(self.package_code)


def quota_counted(*, customer: Customer, month: date) -> int:
    return OrderUsage.objects.filter(
        customer=customer, status=OrderUsage.Status.COUNTED, month=month_start(month)
    ).count()


def quota_taken(*, customer: Customer, month: date) -> int:
    """Places taken in the month: orders counted plus places reserved for orders on their way."""
    return OrderUsage.objects.filter(
        customer=customer,
        month=month_start(month),
        status__in=[OrderUsage.Status.COUNTED, OrderUsage.Status.RESERVED],
    ).count()


def quota_has_room(*, customer: Customer, on: date | None = None) -> bool:
    """Whether the month of ``on`` has a place left (read only: a cheap look before locking)."""
    day = on or timezone.localdate()
    package = package_in_force(customer=customer, on=day)
    if package is None:
        return False
    limit = package.monthly_order_limit
    return limit is None or quota_taken(customer=customer, month=day) < limit


def quota_usage(*, customer: Customer, order_keys) -> dict[str, str]:
    """Order key -> its quota status (counted, reserved, held); orders without a row are absent."""
    return dict(
        OrderUsage.objects.filter(customer=customer, order_key__in=list(order_keys)).values_list(
            "order_key", "status"
        )
    )


def quota_waiting_keys(*, customer: Customer) -> list[str]:
    """Order keys with a held or reserved place: orders billing expects to hear of again."""
    return list(
        OrderUsage.objects.filter(
            customer=customer, status__in=[OrderUsage.Status.HELD, OrderUsage.Status.RESERVED]
        ).values_list("order_key", flat=True)
    )


def customers_with_waiting_places():
    """Customers with held or reserved places (a queryset)."""
    return Customer.objects.filter(
        order_usage__status__in=[OrderUsage.Status.HELD, OrderUsage.Status.RESERVED]
    ).distinct()


def quota_held(*, customer: Customer) -> int:
    return OrderUsage.objects.filter(customer=customer, status=OrderUsage.Status.HELD).count()


VolumeKey = tuple  # (customer id, month, package id or None)


def order_volume_recount(
    *, customer_id: int | None = None, usage_model=None
) -> dict[VolumeKey, tuple[int, int]]:
    """(counted, held) per customer, month and package, counted from ``OrderUsage`` itself.

    What ``MonthlyOrderVolume`` must hold (see its docstring); ``usage_model`` lets a
    migration pass its historical model. Keys with both figures zero are left out.
    """
    usage = (usage_model or OrderUsage).objects.all()
    if customer_id is not None:
        usage = usage.filter(customer_id=customer_id)
    counts: dict[VolumeKey, list[int]] = {}
    for cid, month, package_id, n in (
        usage.filter(status=OrderUsage.Status.COUNTED)
        .values("customer_id", "month", "package_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("customer_id", "month", "package_id", "n")
    ):
        counts.setdefault((cid, month, package_id), [0, 0])[0] = n
    for cid, month, package_id, n in (
        usage.filter(held_month__isnull=False)
        .values("customer_id", "held_month", "package_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("customer_id", "held_month", "package_id", "n")
    ):
        counts.setdefault((cid, month, package_id), [0, 0])[1] = n
    return {key: (c, h) for key, (c, h) in counts.items() if c or h}


def order_volume_differences(*, customer: Customer | None = None) -> dict[VolumeKey, tuple]:
    """Where ``MonthlyOrderVolume`` disagrees with a recount: {key: (summary, recount)}; {} when in step."""
    rows = MonthlyOrderVolume.objects.all()
    if customer is not None:
        rows = rows.filter(customer=customer)
    summary: dict[VolumeKey, tuple[int, int]] = {}
    for cid, month, package_id, counted, held in rows.values_list(
        "customer_id", "month", "package_id", "counted", "held"
    ):
        if counted or held:
            summary[(cid, month, package_id)] = (counted, held)
    recount = order_volume_recount(customer_id=customer.pk if customer else None)
    return {
        key: (summary.get(key, (0, 0)), recount.get(key, (0, 0)))
        for key in summary.keys() | recount.keys()
        if summary.get(key) != recount.get(key)
    }


def quota_percent(*, used: int, limit: int | None) -> Decimal | None:
    if limit is None:
        return None
    if limit == 0:
        return Decimal("100.0") if used else Decimal("0.0")
    return (Decimal(used) * 100 / limit).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def quota_status(*, customer: Customer, month: date) -> QuotaStatus:
    """The month's taken places (counted and reserved orders) against the package's limit.

    The package is the one in force at the month's end, or today for the running month.
    """
    first = month_start(month)
    day = min(month_end(first), max(first, timezone.localdate()))
    package = package_in_force(customer=customer, on=day)
    limit = package.monthly_order_limit if package else 0
    used = quota_taken(customer=customer, month=first)
    return QuotaStatus(
        month=first,
        package_code=package.code if package else "",
        limit=limit,
        used=used,
        held=quota_held(customer=customer),
        percent=quota_percent(used=used, limit=limit),
    )


# -- service account ---------------------------------------------------------------------------


def service_hours_balance(*, customer: Customer, before: datetime | None = None) -> Decimal:
    """The service account's balance: the sum of its ledger (entries before ``before`` if given)."""
    entries = ServiceHourEntry.objects.filter(customer=customer)
    if before is not None:
        entries = entries.filter(occurred_at__lt=before)
    return entries.aggregate(total=Coalesce(Sum("hours"), Decimal("0")))["total"].quantize(ZERO)


@dataclass(frozen=True)
class LedgerRow:
    entry: ServiceHourEntry
    balance: Decimal  # after this entry


def service_hours_ledger(*, customer: Customer) -> list[LedgerRow]:
    """The ledger, newest first, with the balance after each entry (one query)."""
    entries = list(
        ServiceHourEntry.objects.filter(customer=customer)
        .select_related("staff")
        .order_by("occurred_at", "id")
    )
    rows, balance = [], ZERO
    for entry in entries:
        balance += entry.hours
        rows.append(LedgerRow(entry=entry, balance=balance))
    return rows[::-1]


def hourly_rate() -> Decimal:
    """The ordinary hourly rate (SEK, excl. VAT): setting ``BILLING_HOURLY_RATE``, default 950."""
    return Decimal(str(getattr(settings, "BILLING_HOURLY_RATE", DEFAULT_HOURLY_RATE)))


# -- statements --------------------------------------------------------------------------------


def statement_histories(*, customer_ids: list[int] | None = None) -> dict[int, History]:
    """Each customer's subscription and shop-count history, in two queries for any number."""
    subscriptions = Subscription.objects.select_related("package", "customer").order_by(
        "customer_id", "start_date", "id"
    )
    shop_counts = ShopCount.objects.order_by("customer_id", "effective_from")
    if customer_ids is not None:
        subscriptions = subscriptions.filter(customer_id__in=customer_ids)
        shop_counts = shop_counts.filter(customer_id__in=customer_ids)
    terms: dict[int, list[Term]] = {}
    names: dict[int, str] = {}
    installations: dict[int, Installation] = {}
    for sub in subscriptions:
        names[sub.customer_id] = sub.customer.name
        installations.setdefault(
            sub.customer_id,
            Installation(on=sub.start_date, fee=sub.installation_fee, package_name=sub.package.name),
        )
        terms.setdefault(sub.customer_id, []).append(
            Term(
                start=sub.start_date,
                end=sub.effective_end_date,
                package_code=sub.package.code,
                package_name=sub.package.name,
                monthly_fee=sub.monthly_fee,
                extra_shop_fee=sub.extra_shop_fee,
                order_limit=sub.package.monthly_order_limit,
            )
        )
    counts: dict[int, list[tuple[date, int]]] = {}
    for customer_id, effective_from, active in shop_counts.values_list(
        "customer_id", "effective_from", "active_shops"
    ):
        counts.setdefault(customer_id, []).append((effective_from, active))
    return {
        cid: History(
            customer_id=cid,
            customer_name=names[cid],
            terms=tuple(cid_terms),
            installation=installations.get(cid),
            shop_counts=tuple(counts.get(cid, ())),
        )
        for cid, cid_terms in terms.items()
    }


def statement_usage(*, customer: Customer, month: date, history: History) -> MonthUsage:
    """The month's recorded usage for one customer's statement."""
    first = month_start(month)
    start, after = local_midnight(first), local_midnight(next_month(first))
    month_entries = ServiceHourEntry.objects.filter(
        customer=customer, occurred_at__gte=start, occurred_at__lt=after
    )
    moves = month_entries.aggregate(
        credited=Coalesce(Sum("hours", filter=Q(hours__gt=0)), Decimal("0")),
        spent=Coalesce(Sum("hours", filter=Q(hours__lt=0)), Decimal("0")),
    )
    packs = tuple(
        HourPackBought(
            on=timezone.localdate(entry.occurred_at),
            name=entry.hour_pack.name if entry.hour_pack else _("Hour pack"),
            hours=entry.hours,
            price=entry.price or ZERO,
            package_code=_code_on(history, timezone.localdate(entry.occurred_at)),
        )
        for entry in month_entries.filter(kind=ServiceHourEntry.Kind.HOUR_PACK)
        .select_related("hour_pack")
        .order_by("occurred_at", "id")
    )
    rate = (
        ServiceHourEntry.objects.filter(customer=customer, occurred_at__lt=after, hourly_rate__isnull=False)
        .exclude(below_zero_reason="")
        .order_by("-occurred_at", "-id")
        .values_list("hourly_rate", flat=True)
        .first()
    )
    usage = OrderUsage.objects.filter(customer=customer).aggregate(
        counted=Count("id", filter=Q(status=OrderUsage.Status.COUNTED, month=first)),
        held=Count("id", filter=Q(held_month=first)),
    )
    return MonthUsage(
        hour_packs=packs,
        hours_opening=service_hours_balance(customer=customer, before=start),
        hours_credited=moves["credited"].quantize(ZERO),
        hours_spent=moves["spent"].quantize(ZERO),
        owed_hourly_rate=rate if rate is not None else hourly_rate(),
        orders_counted=usage["counted"],
        orders_held=usage["held"],
    )


def _code_on(history: History, day: date) -> str:
    term = term_in_force(history.terms, day)
    return term.package_code if term else ""


def statement_compute(*, customer: Customer, month: date) -> MonthStatement:
    """The statement for a month, computed from recorded history (same figures every time)."""
    first = month_start(month)
    history = statement_histories(customer_ids=[customer.pk]).get(customer.pk) or History(
        customer_id=customer.pk, customer_name=customer.name, terms=(), installation=None
    )
    return statement_build(
        history=history, month=first, usage=statement_usage(customer=customer, month=first, history=history)
    )


# -- the customer's own pages ------------------------------------------------------------------


def quota_forecast(*, used: int, today: date) -> int:
    """Orders by the month's last day at the pace so far (whole days; today counts as begun)."""
    days = month_end(today).day
    return round(used * days / today.day) if used else 0


@dataclass(frozen=True)
class PackageOffer:
    """What the customer's package includes, and what the next larger one sold would add."""

    includes: list[str]
    next_package: Package | None
    next_adds: list[str]


def package_offer(*, package: Package | None) -> PackageOffer:
    if package is None:
        return PackageOffer(includes=[], next_package=None, next_adds=[])
    includes = [str(label) for value, label in Feature.choices if package.includes(value)]
    larger = Package.objects.filter(is_active=True, rank__gt=package.rank).order_by("rank").first()
    if larger is None:
        return PackageOffer(includes=includes, next_package=None, next_adds=[])
    adds = [
        str(label)
        for value, label in Feature.choices
        if larger.includes(value) and not package.includes(value)
    ]
    if larger.monthly_order_limit is None and package.monthly_order_limit is not None:
        adds.insert(0, str(_("no limit on orders per month")))
    elif (larger.monthly_order_limit or 0) > (package.monthly_order_limit or 0):
        adds.insert(0, str(_("%(count)s orders a month") % {"count": larger.monthly_order_limit}))
    return PackageOffer(includes=includes, next_package=larger, next_adds=adds)


@dataclass(frozen=True)
class AccountOverview:
    customer: Customer
    package: Package | None
    quota: QuotaStatus
    hours_balance: Decimal
    ledger: list[LedgerRow]
    key_account_manager: object | None  # a staff user, shown only while the package includes it
    forecast: int = 0  # orders expected by the month's end at this month's pace
    offer: PackageOffer | None = None


def customer_account(*, customer: Customer) -> AccountOverview:
    package = package_in_force(customer=customer)
    ledger = service_hours_ledger(customer=customer)
    kam = (
        customer.key_account_manager
        if (package is not None and package.includes(Feature.KEY_ACCOUNT_MANAGER))
        else None
    )
    today = timezone.localdate()
    quota = quota_status(customer=customer, month=today)
    return AccountOverview(
        customer=customer,
        package=package,
        quota=quota,
        forecast=quota_forecast(used=quota.used, today=today),
        offer=package_offer(package=package),
        hours_balance=ledger[0].balance if ledger else ZERO,
        ledger=ledger,
        key_account_manager=kam,
    )
