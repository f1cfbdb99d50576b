"""Jinja filters for sizes and times."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from app.models.base import utcnow


def human_bytes(value: int | None) -> str:
    """Format a byte count with binary units (1.5 GiB)."""
    if value is None:
        return "N/A"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def short_time(value: datetime | None) -> str:
    """Format a timestamp as 'YYYY-MM-DD HH:MM' UTC, or a dash."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


def seconds_time(value: datetime | None) -> str:
    """Format a timestamp to the second, 'YYYY-MM-DD HH:MM:SS' UTC (never microseconds)."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def time_ago(value: datetime | None, now: datetime | None = None) -> str:
    """Say how long ago a UTC timestamp was, roughly: '40 s ago', '3 min ago', '2 days ago'."""
    if value is None:
        return "never"
    seconds = max(0, int(((now or utcnow()) - value).total_seconds()))
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''} ago"
    return f"{seconds} s ago"


def register_filters(app: Flask) -> None:
    """Make the filters available to templates."""
    app.jinja_env.filters["bytes"] = human_bytes
    app.jinja_env.filters["time"] = short_time
    app.jinja_env.filters["seconds"] = seconds_time
    app.jinja_env.filters["ago"] = time_ago
