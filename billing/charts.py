"""Server-rendered SVG charts: geometry computed here, drawn by a template (no JavaScript, no CDN)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.utils.translation import ngettext

# One colour per package, smallest to largest (readable for red-green colour blindness).
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#9c755f", "#76b7b2", "#edc948"]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    labels: list[tuple[float, str]]  # x of each month's label
    ticks: list[tuple[float, int]]  # y and value of the axis ticks
    legend: list[tuple[str, str]]  # (colour, package)
    plot_left: int
    plot_bottom: int


def stacked_bars(*, months: list[date], series: dict[date, dict[str, int]],
                 packages: list[tuple[str, str]], width: int = 760, height: int = 280) -> Chart:
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
            bars.append(Bar(x=round(x, 1), y=round(base, 1), width=round(bar_w, 1), height=round(h, 1),
                            colour=colours[code], title=ngettext(
                                "%(month)s %(package)s: %(count)d order", "%(month)s %(package)s: %(count)d orders",
                                value) % {"month": f"{month:%Y-%m}", "package": names[code], "count": value}))
    return Chart(width=width, height=height, bars=bars,
                 labels=[(round(left + i * slot + slot / 2, 1), f"{m:%Y-%m}") for i, m in enumerate(months)],
                 ticks=[(round(top + plot_h - plot_h * v / top_value, 1), v)
                        for v in range(0, top_value + 1, step)],
                 legend=[(colours[code], name) for code, name in packages],
                 plot_left=left, plot_bottom=top + plot_h)


def _nice_step(peak: int) -> int:
    raw = max(peak / 5, 1)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude
