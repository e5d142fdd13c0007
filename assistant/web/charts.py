"""The fairness page's charts and its one-sentence verdict, drawn on the server as SVG (no script, no library).

Each group is a row: a bar to its median wait and a whisker on to its 90th percentile, on one time axis
shared by the chart, so longer waits are longer bars whatever the group."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from assistant.review.schemas import WaitGroup

ROW, LABEL_W, WIDTH, AXIS_H = 34, 150, 640, 28
SMALL = ("<1k",)
LARGE = ("10k–100k", "≥100k")
ENOUGH = 5
"""Turns a group needs before the page draws conclusions from its median."""


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "no data"
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _ticks(top: float) -> list[float]:
    """Round steps of 1-2-5 × a power of ten in minutes, about four of them."""
    minutes = max(top / 60, 1)
    step = 10 ** math.floor(math.log10(minutes / 4)) if minutes >= 4 else 1
    for factor in (1, 2, 5, 10):
        if minutes / (step * factor) <= 5:
            step *= factor
            break
    return [i * step * 60 for i in range(int(minutes // step) + 1)]


def wait_chart(title: str, groups: Sequence[WaitGroup], names: dict[str, str]) -> Markup:
    """One horizontal chart of median (bar) and 90th percentile (whisker) waits per group."""
    top = max([g.p90_seconds or 0 for g in groups] + [60.0])
    ticks = _ticks(top)
    top = max(top, ticks[-1]) or 60
    plot = WIDTH - LABEL_W - 70
    height = ROW * len(groups) + AXIS_H
    x = lambda s: LABEL_W + plot * (s / top)  # noqa: E731
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for tick in ticks:
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="0" y2="{height - AXIS_H + 4}" class="grid"/>'
                     f'<text x="{x(tick):.1f}" y="{height - 8}" class="tick" text-anchor="middle">'
                     f'{escape(duration(tick))}</text>')
    for i, g in enumerate(groups):
        y = i * ROW + 8
        label = names.get(g.group, g.group)
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + 13}" text-anchor="end" class="label">{escape(label)}</text>')
        if g.median_seconds is None:
            parts.append(f'<text x="{LABEL_W + 4}" y="{y + 13}" class="none">nobody answered</text>')
            continue
        p90 = g.p90_seconds or g.median_seconds
        parts.append(f'<line x1="{x(g.median_seconds):.1f}" x2="{x(p90):.1f}" y1="{y + 9}" y2="{y + 9}" class="whisker"/>'
                     f'<line x1="{x(p90):.1f}" x2="{x(p90):.1f}" y1="{y + 3}" y2="{y + 15}" class="whisker"/>'
                     f'<rect x="{LABEL_W}" y="{y}" width="{max(1.5, x(g.median_seconds) - LABEL_W):.1f}" height="18" '
                     f'class="bar"/><text x="{x(p90) + 6:.1f}" y="{y + 13}" class="value">'
                     f'{escape(duration(g.median_seconds))} · {g.turns}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def verdict(by_audience: Sequence[WaitGroup], overall: WaitGroup) -> str:
    """One sentence: do people with small audiences wait longer than people with large ones?"""
    if overall.turns == 0:
        return "No replies were approved in this period, so there are no waits to compare yet."
    groups = {g.group: g for g in by_audience}
    small = [groups[n] for n in SMALL if n in groups and groups[n].turns >= ENOUGH]
    large = [g for n in LARGE if (g := groups.get(n)) is not None and g.turns >= ENOUGH]
    if not small or not large:
        return (f"Too few replies to people with small and large audiences to compare them yet "
                f"({overall.turns} {'reply' if overall.turns == 1 else 'replies'} in the period; each side needs "
                f"{ENOUGH}).")
    s = small[0].median_seconds or 0
    big = min(g.median_seconds or 0 for g in large)
    if s > big * 1.25 and s - big > 60:
        return (f"Yes: people with fewer than 1,000 followers wait longer, a median of {duration(s)} against "
                f"{duration(big)} for people with 10,000 or more.")
    return (f"No: people with fewer than 1,000 followers do not wait longer (a median of {duration(s)}, against "
            f"{duration(big)} for people with 10,000 or more).")
