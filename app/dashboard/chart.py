"""The 30-day activity chart: daily counts and the bar geometry of a server-rendered SVG (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

WIDTH, HEIGHT, BOTTOM, LEFT = 600, 160, 20, 28


@dataclass(frozen=True)
class Bar:
    """One bar of the chart: where it is and what it counts."""

    x: float
    y: float
    width: float
    height: float
    kind: str
    day: date
    count: int


def daily_counts(events: list[tuple[date, str]], today: date, days: int = 30,
                 kinds: tuple[str, ...] = ("upload", "deploy")) -> list[dict]:
    """Count events per day and kind over the last `days` days, oldest first."""
    first = today - timedelta(days=days - 1)
    counts = {first + timedelta(days=n): dict.fromkeys(kinds, 0) for n in range(days)}
    for day, kind in events:
        if day in counts and kind in counts[day]:
            counts[day][kind] += 1
    return [{"day": day, **per_kind} for day, per_kind in counts.items()]


def bars(days: list[dict], kinds: tuple[str, ...] = ("upload", "deploy")) -> tuple[list[Bar], int]:
    """Lay the counts out as side-by-side bars per day; return them and the scale's top."""
    top = max([1] + [day[kind] for day in days for kind in kinds])
    slot = (WIDTH - LEFT) / max(len(days), 1)
    width = slot * 0.8 / len(kinds)
    plot = HEIGHT - BOTTOM
    out = []
    for index, day in enumerate(days):
        for k, kind in enumerate(kinds):
            height = plot * day[kind] / top
            out.append(Bar(x=round(LEFT + index * slot + slot * 0.1 + k * width, 1),
                           y=round(plot - height, 1), width=round(width, 1),
                           height=round(height, 1), kind=kind, day=day["day"],
                           count=day[kind]))
    return out, top
