"""Calendar arithmetic for contracts and monthly statements (pure functions, no ORM)."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta

from django.utils import timezone


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def days_in_month(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    """First days of every month from ``first``'s month to ``last``'s, both included."""
    months, current = [], month_start(first)
    while current <= last:
        months.append(current)
        current = add_months(current, 1)
    return months


def term_last_day(start: date, months: int) -> date:
    """The last day of a term of ``months`` months starting on ``start``.

    The term ends the day before the same date ``months`` later (1 Jan + 3 -> 31 Mar,
    15 Jan + 3 -> 14 Apr). When that date does not exist (a start on the 29th-31st
    running into a shorter month), the term ends on that month's last day
    (30 Nov + 3 -> 28 Feb), so a term is never shorter than the months it names.
    """
    target = add_months(start, months)
    if start.day > days_in_month(target):
        return month_end(target)
    return target.replace(day=start.day) - timedelta(days=1)


def local_midnight(day: date) -> datetime:
    """The aware datetime at which ``day`` begins in the portal's time zone (Europe/Stockholm)."""
    return timezone.make_aware(datetime.combine(day, time.min))
