"""Server-rendered SVG charts: geometry computed here, drawn by a template (no JavaScript, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.utils.translation import ngettext

# One colour per package, smallest to largest (readable for red-green colour blindness).
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#9c755f", "#76b7b2", "#edc948"]


# Every number the SVG reads is text with a decimal point, made here: a template would localize
# a float, and Swedish formats write 248,0, which SVG reads as a list of two numbers.
SvgNumber = str


def _svg(value: float) -> SvgNumber:
    return f"{value:.1f}".removesuffix(".0")


@dataclass(frozen=True)
class Bar:
    x: SvgNumber
    y: SvgNumber
    width: SvgNumber
    height: SvgNumber
    colour: str
    title: str


@dataclass(frozen=True)
class Chart:
    width: SvgNumber
    height: SvgNumber
    bars: list[Bar]
    labels: list[tuple[SvgNumber, str]]  # x of each month's label, and the month
    ticks: list[tuple[SvgNumber, int]]  # y and value of the axis ticks
    legend: list[tuple[str, str]]  # (colour, package)
    plot_left: SvgNumber
    tick_x: SvgNumber  # right edge of the tick values
    label_y: SvgNumber  # baseline of the month labels


def stacked_bars(
    *,
    months: list[date],
    series: dict[date, dict[str, int]],
    packages: list[tuple[str, str]],
    width: int = 760,
    height: int = 280,
) -> Chart:
    """Orders per month, stacked by package."""
    left, right, top, bottom = 56, 12, 12, 32
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(series.get(m, {}).values()) for m in months]
    peak = max(totals + [1])
    step = _nice_step(peak)
    top_value = ((peak + step - 1) // step) * step
    slot = plot_w / max(len(months), 1)
    bar_w = slot * 0.7
    colours = {code: PALETTE[i % len(PALETTE)] for i, (code, _name) in enumerate(packages)}
    names = dict(packages)
    bars = []
    for index, month in enumerate(months):
        x = left + index * slot + (slot - bar_w) / 2
        base = top + plot_h
        for code, _name in packages:
            value = series.get(month, {}).get(code, 0)
            if not value:
                continue
            h = plot_h * value / top_value
            base -= h
            bars.append(
                Bar(
                    x=_svg(x),
                    y=_svg(base),
                    width=_svg(bar_w),
                    height=_svg(h),
                    colour=colours[code],
                    title=ngettext(
                        "%(month)s %(package)s: %(count)d order",
                        "%(month)s %(package)s: %(count)d orders",
                        value,
                    )
                    % {"month": f"{month:%Y-%m}", "package": names[code], "count": value},
                )
            )
    return Chart(
        width=_svg(width),
        height=_svg(height),
        bars=bars,
        labels=[(_svg(left + i * slot + slot / 2), f"{m:%Y-%m}") for i, m in enumerate(months)],
        ticks=[(_svg(top + plot_h - plot_h * v / top_value), v) for v in range(0, top_value + 1, step)],
        legend=[(colours[code], name) for code, name in packages],
        plot_left=_svg(left),
        tick_x=_svg(left - 6),
        label_y=_svg(top + plot_h + 16),
    )


def _nice_step(peak: int) -> int:
    raw = max(peak / 5, 1)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude
