"""Billing reports: the data, built here; rendered by ``billing.views`` (HTML, SVG chart, CSV).

Order volume and quota utilisation are aggregated in the database over the monthly
summary ``MonthlyOrderVolume`` (a row per customer, month and package, kept in step by
the quota services), not over every recorded order. Revenue runs the statement engine's
amounts (``statement_amounts``, the same helpers as ``statement_build``) over history
loaded in bulk: proration by day is computed in Python from a fixed number of queries
whatever the number of customers, so a report's revenue always equals the sum of the
statements.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Case, Count, IntegerField, Max, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.dates import local_midnight, month_start, months_between
from billing.models import Customer, MonthlyOrderVolume, Package, ServiceHourEntry
from billing.selectors import hourly_rate, quota_percent, statement_histories
from billing.statements import ZERO, HourPackBought, MonthUsage, next_month, statement_amounts, term_in_force

NEAR_LIMIT_PERCENT = Decimal("90")
REVENUE_KINDS = ("monthly_fee", "installation", "extra_shops", "hour_pack", "owed_hours")
REVENUE_KIND_LABELS = {
    "monthly_fee": gettext_lazy("monthly fees"),
    "installation": gettext_lazy("installation"),
    "extra_shops": gettext_lazy("extra shops"),
    "hour_pack": gettext_lazy("hour packs"),
    "owed_hours": gettext_lazy("hours owed"),
}


@dataclass(frozen=True)
class ReportFilter:
    first_month: date
    last_month: date
    package_codes: tuple[str, ...] = ()

    @property
    def months(self) -> list[date]:
        return months_between(self.first_month, self.last_month)


@dataclass(frozen=True)
class VolumeRow:
    month: date
    package_code: str
    package_name: str
    orders: int
    customers: int


@dataclass(frozen=True)
class CustomerRow:
    customer_id: int
    name: str
    package_code: str  # of the last month with usage in the range
    limit: int | None
    months_active: int
    orders: int
    average: Decimal
    peak_month: date | None
    peak_orders: int
    peak_percent: Decimal | None
    months_near_limit: int  # months at or above NEAR_LIMIT_PERCENT
    held: int  # orders the quota held in the range (released since or not)
    suggestion: str  # a larger package to offer, or ""


@dataclass(frozen=True)
class RevenueRow:
    month: date
    package_code: str
    amounts: dict[str, Decimal]  # by REVENUE_KINDS
    total: Decimal


@dataclass
class BillingReport:
    filter: ReportFilter
    packages: list[tuple[str, str]]  # (code, name), smallest first
    volume: list[VolumeRow]
    customers: list[CustomerRow]
    revenue: list[RevenueRow]
    volume_by_month: dict[date, dict[str, int]] = field(default_factory=dict)
    revenue_by_month: dict[date, Decimal] = field(default_factory=dict)


def report_filter(
    *,
    first_month: date | None = None,
    last_month: date | None = None,
    package_codes: list[str] | tuple[str, ...] = (),
) -> ReportFilter:
    """Defaults: the twelve months up to and including the running one, all packages."""
    last = month_start(last_month or timezone.localdate())
    first = (
        month_start(first_month)
        if first_month
        else months_between(date(last.year - 1, last.month, 1), last)[1]
    )
    if first > last:
        first, last = last, first
    return ReportFilter(first_month=first, last_month=last, package_codes=tuple(package_codes))


def billing_report(*, report_filter: ReportFilter) -> BillingReport:
    catalogue = list(
        Package.objects.order_by("rank").values_list(
            "code", "name", "rank", "monthly_order_limit", "is_active"
        )
    )
    packages = [(code, name) for code, name, *_rest in catalogue]
    volume = _volume(report_filter, dict(packages))
    by_month: dict[date, dict[str, int]] = {m: {} for m in report_filter.months}
    for row in volume:
        by_month.setdefault(row.month, {})[row.package_code] = row.orders
    revenue = _revenue(report_filter, catalogue)
    revenue_by_month = {m: ZERO for m in report_filter.months}
    for row in revenue:
        revenue_by_month[row.month] = revenue_by_month.get(row.month, ZERO) + row.total
    return BillingReport(
        filter=report_filter,
        packages=packages,
        volume=volume,
        customers=_customers(report_filter, catalogue),
        revenue=revenue,
        volume_by_month=by_month,
        revenue_by_month=revenue_by_month,
    )


def _summary(report_filter: ReportFilter):
    """The monthly order-volume summary in the range (a row per customer, month and package)."""
    rows = MonthlyOrderVolume.objects.filter(
        month__range=(report_filter.first_month, report_filter.last_month)
    )
    if report_filter.package_codes:
        rows = rows.filter(package__code__in=report_filter.package_codes)
    return rows


def _volume(report_filter: ReportFilter, names: dict[str, str]) -> list[VolumeRow]:
    # One summary row per customer, month and package: Count counts customers.
    rows = (
        _summary(report_filter)
        .filter(counted__gt=0)
        .values("month", "package__code")
        .annotate(orders=Sum("counted"), customers=Count("customer_id"))
        .order_by("month", "package__rank")
    )
    return [
        VolumeRow(
            month=r["month"],
            package_code=r["package__code"] or "",
            package_name=names.get(r["package__code"], "–"),
            orders=r["orders"],
            customers=r["customers"],
        )
        for r in rows
    ]


def _customers(report_filter: ReportFilter, catalogue: list[tuple]) -> list[CustomerRow]:
    counting = Q(counted__gt=0)  # the package of a month is that of its counted orders
    monthly = (
        _summary(report_filter)
        .values("customer_id", "month")
        .annotate(
            orders=Sum("counted"),
            held=Sum("held"),
            limit=Max("package__monthly_order_limit", filter=counting),
            rank=Max("package__rank", filter=counting),
        )
        .order_by("customer_id", "month")
    )
    held_by: dict[int, dict[date, int]] = defaultdict(dict)
    months_by: dict[int, list[dict]] = defaultdict(list)
    for r in monthly:
        if r["held"]:
            held_by[r["customer_id"]][r["month"]] = r["held"]
        if r["orders"]:
            months_by[r["customer_id"]].append(r)
    # Names in a query of their own: joining the customer table per summary row costs more.
    names = dict(
        Customer.objects.filter(pk__in=set(months_by) | set(held_by))
        .order_by("name")
        .values_list("pk", "name")
    )
    limits = {code: limit for code, _name, _rank, limit, sold in catalogue if sold}
    rank_code = {rank: code for code, _name, rank, _limit, _sold in catalogue}

    rows = []
    for customer_id, name in names.items():
        months = months_by.get(customer_id, [])
        held_months = held_by.get(customer_id, {})
        last = months[-1] if months else None
        limit = last["limit"] if last else None
        code = rank_code.get(last["rank"], "") if last else ""
        orders = sum(m["orders"] for m in months)
        peak = max(months, key=lambda m: m["orders"], default=None)
        near = sum(
            1
            for m in months
            if m["limit"] is not None
            and quota_percent(used=m["orders"], limit=m["limit"]) >= NEAR_LIMIT_PERCENT
        )
        held_total = sum(held_months.values())
        demand = max(
            [m["orders"] + held_months.get(m["month"], 0) for m in months] + list(held_months.values()) + [0]
        )
        suggestion = ""
        if limit is not None and (held_total or near >= 2):
            larger = [c for c, lim in limits.items() if lim is None or (lim > limit and lim >= demand)]
            suggestion = larger[0] if larger else ""
        rows.append(
            CustomerRow(
                customer_id=customer_id,
                name=name,
                package_code=code,
                limit=limit,
                months_active=len(months),
                orders=orders,
                average=(Decimal(orders) / len(months)).quantize(Decimal("0.1")) if months else Decimal(0),
                peak_month=peak["month"] if peak else None,
                peak_orders=peak["orders"] if peak else 0,
                peak_percent=quota_percent(used=peak["orders"], limit=peak["limit"]) if peak else None,
                months_near_limit=near,
                held=held_total,
                suggestion=suggestion,
            )
        )
    # Those closest to (or over) their limit first: they are whom billing should call.
    rows.sort(key=lambda r: (-(r.held > 0), -(r.peak_percent or Decimal(-1)), r.name))
    return rows


def _month_index(field: str, months: list[date]) -> Case:
    """0 for ``months[0]`` (and before), 1 for the next, ...: by local midnights, in SQL."""
    return Case(
        *(
            When(**{f"{field}__lt": local_midnight(next_month(month))}, then=Value(index))
            for index, month in enumerate(months)
        ),
        default=Value(len(months)),
        output_field=IntegerField(),
    )


def _revenue(report_filter: ReportFilter, catalogue: list[tuple]) -> list[RevenueRow]:
    months = report_filter.months
    start, after = local_midnight(months[0]), local_midnight(next_month(months[-1]))
    histories = statement_histories()
    packs: dict[tuple[int, date], list[HourPackBought]] = defaultdict(list)
    for customer_id, occurred_at, name, hours, price in (
        ServiceHourEntry.objects.filter(
            kind=ServiceHourEntry.Kind.HOUR_PACK, occurred_at__gte=start, occurred_at__lt=after
        )
        .order_by("occurred_at", "id")
        .values_list("customer_id", "occurred_at", "hour_pack__name", "hours", "price")
    ):
        day = timezone.localdate(occurred_at)
        history = histories.get(customer_id)
        term = term_in_force(history.terms, day) if history else None
        packs[(customer_id, month_start(day))].append(
            HourPackBought(
                on=day,
                name=name or _("Hour pack"),
                hours=hours,
                price=price or ZERO,
                package_code=term.package_code if term else "",
            )
        )
    opening = dict(
        ServiceHourEntry.objects.filter(occurred_at__lt=start)
        .values("customer_id")
        .annotate(total=Sum("hours"))
        .order_by()
        .values_list("customer_id", "total")
    )
    # Months as an index computed in SQL: SQLite's TruncMonth calls Python for every row.
    in_month = _month_index("occurred_at", months)
    moves: dict[tuple[int, date], tuple[Decimal, Decimal]] = {}
    for customer_id, index, credited, spent in (
        ServiceHourEntry.objects.filter(occurred_at__gte=start, occurred_at__lt=after)
        .annotate(m=in_month)
        .values("customer_id", "m")
        .annotate(
            credited=Coalesce(Sum("hours", filter=Q(hours__gt=0)), Decimal(0)),
            spent=Coalesce(Sum("hours", filter=Q(hours__lt=0)), Decimal(0)),
        )
        .order_by()
        .values_list("customer_id", "m", "credited", "spent")
    ):
        moves[(customer_id, months[index])] = (credited, spent)
    # The rate owed hours are charged at: the newest recorded by the month's end (index 0
    # also takes those before the range).
    rates: dict[int, dict[int, Decimal]] = defaultdict(dict)
    for customer_id, index, rate in (
        ServiceHourEntry.objects.filter(occurred_at__lt=after, hourly_rate__isnull=False)
        .exclude(below_zero_reason="")
        .annotate(m=in_month)
        .order_by("occurred_at", "id")
        .values_list("customer_id", "m", "hourly_rate")
    ):
        rates[customer_id][index] = rate
    default_rate = hourly_rate()

    totals: dict[tuple[date, str], dict[str, Decimal]] = defaultdict(
        lambda: dict.fromkeys(REVENUE_KINDS, ZERO)
    )
    wanted = set(report_filter.package_codes)
    for customer_id, history in histories.items():
        balance = Decimal(opening.get(customer_id) or 0)
        customer_rates = rates.get(customer_id, {})
        rate = default_rate
        for index, month in enumerate(months):
            credited, spent = moves.get((customer_id, month), (ZERO, ZERO))
            rate = customer_rates.get(index, rate)
            usage = MonthUsage(
                hour_packs=tuple(packs.get((customer_id, month), ())),
                hours_opening=balance,
                hours_credited=credited,
                hours_spent=spent,
                owed_hourly_rate=rate,
            )
            # The amounts of statement_build's lines, without their text (the same helpers).
            for kind, code, amount in statement_amounts(history=history, month=month, usage=usage):
                if wanted and code not in wanted:
                    continue
                totals[(month, code)][kind] += amount
            balance = usage.hours_opening + usage.hours_credited + usage.hours_spent  # closing
    rank = {code: rank for code, _name, rank, _limit, _sold in catalogue}
    return [
        RevenueRow(month=month, package_code=code, amounts=amounts, total=sum(amounts.values(), ZERO))
        for (month, code), amounts in sorted(totals.items(), key=lambda i: (i[0][0], rank.get(i[0][1], 99)))
    ]


# -- CSV ---------------------------------------------------------------------------------------

CSV_TABLES = ("volume", "customers", "revenue")
CSV_TABLE_LABELS = {
    "volume": gettext_lazy("order volume"),
    "customers": gettext_lazy("quota utilisation"),
    "revenue": gettext_lazy("revenue"),
}


def report_rows(*, report: BillingReport, table: str) -> tuple[list[str], list[list]]:
    """One table of the report as a header and rows of plain values (for CSV)."""
    if table == "volume":
        return (
            [_("month"), _("package"), _("orders"), _("customers")],
            [[f"{r.month:%Y-%m}", r.package_code, r.orders, r.customers] for r in report.volume],
        )
    if table == "customers":
        return (
            [
                _("customer"),
                _("package"),
                _("limit"),
                _("months"),
                _("orders"),
                _("average per month"),
                _("peak month"),
                _("peak orders"),
                _("peak utilisation %"),
                _("months >= 90 %"),
                _("held"),
                _("offer package"),
            ],
            [
                [
                    r.name,
                    r.package_code,
                    "" if r.limit is None else r.limit,
                    r.months_active,
                    r.orders,
                    r.average,
                    f"{r.peak_month:%Y-%m}" if r.peak_month else "",
                    r.peak_orders,
                    "" if r.peak_percent is None else r.peak_percent,
                    r.months_near_limit,
                    r.held,
                    r.suggestion,
                ]
                for r in report.customers
            ],
        )
    if table == "revenue":
        return (
            [
                _("month"),
                _("package"),
                *(str(REVENUE_KIND_LABELS[k]) for k in REVENUE_KINDS),
                _("total (SEK, excl. VAT)"),
            ],
            [
                [f"{r.month:%Y-%m}", r.package_code, *(r.amounts[k] for k in REVENUE_KINDS), r.total]
                for r in report.revenue
            ],
        )
    raise ValueError(f"unknown table {table!r}; one of {', '.join(CSV_TABLES)}")


def report_csv(
    *, report: BillingReport, table: str, separator: str = ";", decimal_comma: bool = True, bom: bool = True
) -> str:
    """A table as CSV text for a spreadsheet: ``;`` and decimal comma suit Swedish Excel.

    Encode the result as UTF-8; with ``bom`` it starts with U+FEFF so Excel reads it as UTF-8.
    """
    header, rows = report_rows(report=report, table=table)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=separator, lineterminator="\r\n")
    writer.writerow([csv_text_cell(str(title)) for title in header])
    for row in rows:
        writer.writerow([_csv_cell(v, decimal_comma=decimal_comma) for v in row])
    return ("\ufeff" if bom else "") + out.getvalue()


# A spreadsheet runs a cell starting with one of these as a formula (=HYPERLINK(...) sends data
# away, a DDE payload starts programs): OWASP's list, tab and carriage return included.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: one that would start a formula gets a leading
    apostrophe (OWASP's advice for CSV injection; Excel hides the apostrophe)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_cell(value, *, decimal_comma: bool):
    """Numbers stay numbers (a negative amount keeps its minus); text from customers and
    packages, which support or a customer typed, is neutralised."""
    if isinstance(value, Decimal):
        return str(value).replace(".", ",") if decimal_comma else value
    if isinstance(value, (int, float)):
        return value
    return csv_text_cell(str(value))
