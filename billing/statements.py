"""The monthly statement, computed from recorded history only (pure: no ORM, no clock).

``billing.selectors`` loads the history (subscriptions with their agreed prices, the
shop-count rows, the service-account ledger, the order usage) and calls
``statement_build``; the revenue report calls the same function for every customer
and month from history it loaded in bulk. Nothing here reads today's package prices,
so a past month gives the same figures whenever it is recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing.dates import add_months, days_in_month, month_end
from billing.money import hours_text, money_text

VAT_RATE = Decimal("0.25")
ORE = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value: Decimal) -> Decimal:
    """Round to whole öre, half up (as on a Swedish invoice)."""
    return value.quantize(ORE, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Term:
    """One subscription: from ``start`` to ``end`` (its cancellation's last day, or open)."""

    start: date
    end: date | None
    package_code: str
    package_name: str
    monthly_fee: Decimal | None
    extra_shop_fee: Decimal | None
    order_limit: int | None


@dataclass(frozen=True)
class Installation:
    on: date
    fee: Decimal | None
    package_name: str


@dataclass(frozen=True)
class HourPackBought:
    on: date
    name: str
    hours: Decimal
    price: Decimal
    package_code: str = ""


@dataclass(frozen=True)
class History:
    """What a statement is computed from; ``terms`` in the order they were made (start, id)."""

    customer_id: int
    customer_name: str
    terms: tuple[Term, ...]
    installation: Installation | None
    shop_counts: tuple[tuple[date, int], ...] = ()  # (effective from, active shops), ascending


@dataclass(frozen=True)
class MonthUsage:
    """The month's recorded usage: hour packs, the service-account movements and the orders."""

    hour_packs: tuple[HourPackBought, ...] = ()
    hours_opening: Decimal = ZERO
    hours_credited: Decimal = ZERO
    hours_spent: Decimal = ZERO  # negative or zero
    owed_hourly_rate: Decimal = ZERO
    orders_counted: int = 0
    orders_held: int = 0


@dataclass(frozen=True)
class Line:
    kind: str  # monthly_fee, extra_shops, installation, hour_pack, owed_hours
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal | None
    amount: Decimal
    package_code: str = ""


@dataclass(frozen=True)
class MonthStatement:
    customer_id: int
    customer_name: str
    month: date
    lines: tuple[Line, ...]
    net: Decimal
    vat: Decimal
    gross: Decimal
    hours_opening: Decimal
    hours_credited: Decimal
    hours_spent: Decimal
    hours_closing: Decimal
    hours_owed: Decimal
    orders_counted: int
    orders_held: int
    order_limit: int | None
    package_code: str
    notes: tuple[str, ...] = field(default_factory=tuple)


def term_in_force(terms: tuple[Term, ...], day: date) -> Term | None:
    """The newest term started by ``day``; None before the first or after a cancelled one ends."""
    current = None
    for term in terms:
        if term.start <= day:
            current = term
    if current is not None and current.end is not None and day > current.end:
        return None
    return current


def shops_on(shop_counts: tuple[tuple[date, int], ...], day: date) -> int:
    count = 1  # no row recorded: one shop (or none), which costs nothing extra
    for effective_from, active in shop_counts:
        if effective_from <= day:
            count = active
    return count


def segments(history: History, month: date) -> list[tuple[date, int, Term | None, int]]:
    """The month cut where the package or the shop count changes: (first day, days, term, shops)."""
    last = month_end(month)
    cuts = {month, last + timedelta(days=1)}
    for term in history.terms:
        cuts.add(term.start)
        if term.end is not None:
            cuts.add(term.end + timedelta(days=1))
    cuts.update(effective_from for effective_from, _active in history.shop_counts)
    points = sorted(day for day in cuts if month <= day <= last + timedelta(days=1))
    return [
        (
            first,
            (after - first).days,
            term_in_force(history.terms, first),
            shops_on(history.shop_counts, first),
        )
        for first, after in zip(points, points[1:])
    ]


def _days_text(days: int, in_month: int) -> str:
    return (
        _("whole month")
        if days == in_month
        else _("%(days)d/%(in_month)d days") % {"days": days, "in_month": in_month}
    )


def _days_unit(in_month: int) -> str:
    return _("days of %(in_month)d") % {"in_month": in_month}


def _days_by_term_and_shops(history: History, month: date) -> tuple[dict, dict]:
    """Days of the month per term in force, and per (extra shops, fee, package code)."""
    fee_days: dict[Term, int] = {}
    shop_days: dict[tuple[int, Decimal, str], int] = {}
    for _first, days, term, shops in segments(history, month):
        if term is None:
            continue
        fee_days[term] = fee_days.get(term, 0) + days
        if shops > 1:
            key = (shops - 1, term.extra_shop_fee or ZERO, term.package_code)
            shop_days[key] = shop_days.get(key, 0) + days
    return fee_days, shop_days


def _installation_in(history: History, month: date) -> tuple[Installation, str] | None:
    """The installation charged this month, with the package code it is reported under."""
    installation = history.installation
    if installation is None or not month <= installation.on <= month_end(month):
        return None
    return installation, (term_in_force(history.terms, installation.on) or history.terms[0]).package_code


def _prorated(amount: Decimal, days: int, in_month: int) -> Decimal:
    return money(amount * days / in_month)


def statement_amounts(*, history: History, month: date, usage: MonthUsage) -> list[tuple[str, str, Decimal]]:
    """(kind, package code, amount) of each line ``statement_build`` makes, without its text.

    For the revenue report, which needs only the amounts of every customer and month;
    the same helpers compute them, so the report equals the sum of the statements.
    """
    in_month = days_in_month(month)
    fee_days, shop_days = _days_by_term_and_shops(history, month)
    amounts = [
        ("monthly_fee", term.package_code, _prorated(term.monthly_fee or ZERO, days, in_month))
        for term, days in fee_days.items()
    ]
    amounts += [
        ("extra_shops", code, _prorated(fee * extra, days, in_month))
        for (extra, fee, code), days in shop_days.items()
    ]
    installed = _installation_in(history, month)
    if installed is not None:
        amounts.append(("installation", installed[1], money(installed[0].fee or ZERO)))
    amounts += [("hour_pack", pack.package_code, money(pack.price)) for pack in usage.hour_packs]
    closing = usage.hours_opening + usage.hours_credited + usage.hours_spent
    if closing < 0:
        last_term = term_in_force(history.terms, month_end(month))
        amounts.append(
            (
                "owed_hours",
                last_term.package_code if last_term else "",
                money(-closing * usage.owed_hourly_rate),
            )
        )
    return amounts


def statement_build(*, history: History, month: date, usage: MonthUsage) -> MonthStatement:
    """The statement for ``month`` (its first day) under ``PRORATION_RULE``."""
    in_month = days_in_month(month)
    fee_days, shop_days = _days_by_term_and_shops(history, month)

    lines: list[Line] = []
    notes: list[str] = []
    for term, days in fee_days.items():
        if term.monthly_fee is None:
            notes.append(
                _("%(package)s: monthly fee by quote, none agreed yet.") % {"package": term.package_name}
            )
        fee = term.monthly_fee or ZERO
        lines.append(
            Line(
                "monthly_fee",
                _("%(package)s, monthly fee (%(days)s)")
                % {"package": term.package_name, "days": _days_text(days, in_month)},
                Decimal(days),
                _days_unit(in_month),
                fee,
                _prorated(fee, days, in_month),
                term.package_code,
            )
        )
    for (extra, fee, code), days in shop_days.items():
        lines.append(
            Line(
                "extra_shops",
                ngettext(
                    "%(count)d extra shop x %(fee)s/month (%(days)s)",
                    "%(count)d extra shops x %(fee)s/month (%(days)s)",
                    extra,
                )
                % {"count": extra, "fee": money_text(fee), "days": _days_text(days, in_month)},
                Decimal(days),
                _days_unit(in_month),
                money(fee * extra),
                _prorated(fee * extra, days, in_month),
                code,
            )
        )
    installed = _installation_in(history, month)
    if installed is not None:
        installation, code = installed
        if installation.fee is None:
            notes.append(
                _("%(package)s: installation by quote, none agreed yet.")
                % {"package": installation.package_name}
            )
        fee = installation.fee or ZERO
        lines.append(
            Line(
                "installation",
                _("Installation, %(package)s") % {"package": installation.package_name},
                Decimal(1),
                _("once"),
                fee,
                money(fee),
                code,
            )
        )
    for pack in usage.hour_packs:
        lines.append(
            Line(
                "hour_pack",
                f"{pack.name} ({hours_text(pack.hours)}), {pack.on:%Y-%m-%d}",
                Decimal(1),
                _("pack"),
                pack.price,
                money(pack.price),
                pack.package_code,
            )
        )

    closing = usage.hours_opening + usage.hours_credited + usage.hours_spent
    owed = -closing if closing < 0 else ZERO
    last_term = term_in_force(history.terms, month_end(month))
    if owed:
        lines.append(
            Line(
                "owed_hours",
                _("Service hours owed (balance below zero at month end)"),
                owed,
                "h",
                usage.owed_hourly_rate,
                money(owed * usage.owed_hourly_rate),
                last_term.package_code if last_term else "",
            )
        )

    net = sum((line.amount for line in lines), ZERO)
    vat = money(net * VAT_RATE)
    return MonthStatement(
        customer_id=history.customer_id,
        customer_name=history.customer_name,
        month=month,
        lines=tuple(lines),
        net=net,
        vat=vat,
        gross=net + vat,
        hours_opening=usage.hours_opening,
        hours_credited=usage.hours_credited,
        hours_spent=usage.hours_spent,
        hours_closing=closing,
        hours_owed=owed,
        orders_counted=usage.orders_counted,
        orders_held=usage.orders_held,
        order_limit=last_term.order_limit if last_term else None,
        package_code=last_term.package_code if last_term else "",
        notes=tuple(notes),
    )


def next_month(month: date) -> date:
    return add_months(month, 1)
