"""The activity chart's counting and bar geometry."""

from __future__ import annotations

from datetime import date, timedelta

from app.dashboard import chart


def test_daily_counts_cover_30_days_and_ignore_older_events():
    today = date(2026, 12, 1)
    events = [(today, "upload"), (today, "deploy"), (today, "deploy"),
              (today - timedelta(days=29), "upload"), (today - timedelta(days=30), "upload"),
              (today, "multicast")]
    days = chart.daily_counts(events, today)
    assert len(days) == 30 and days[0]["day"] == today - timedelta(days=29)
    assert days[-1] == {"day": today, "upload": 1, "deploy": 2}
    assert days[0]["upload"] == 1 and sum(d["upload"] for d in days) == 2


def test_bars_scale_to_the_busiest_day_and_stay_inside_the_chart():
    today = date(2026, 12, 1)
    days = chart.daily_counts([(today, "deploy")] * 4 + [(today, "upload")] * 2, today)
    bars, top = chart.bars(days)
    assert top == 4 and len(bars) == 60
    deploy = next(b for b in bars if b.day == today and b.kind == "deploy")
    upload = next(b for b in bars if b.day == today and b.kind == "upload")
    assert deploy.height == chart.HEIGHT - chart.BOTTOM and upload.height == deploy.height / 2
    assert all(chart.LEFT <= b.x and b.x + b.width <= chart.WIDTH for b in bars)
    assert upload.x < deploy.x
