"""The dashboard view and its live region (polled by htmx while anything runs)."""

from __future__ import annotations

import shutil
from datetime import timedelta

from flask import Blueprint, current_app, render_template
from sqlalchemy import func

from app import htmx
from app.dashboard import chart
from app.extensions import db
from app.models import ComServer, Image, MulticastSession, ReplicationStatus, Task
from app.models.base import utcnow
from app.models.computers import ACTIVE_STATES
from app.models.multicast import LIVE_STATES
from app.replication.propagation import recent_failures

bp = Blueprint("dashboard", __name__)


def live_context() -> dict:
    """What changes by the second: running/queued tasks and live multicast sessions."""
    tasks = db.session.scalars(db.select(Task).where(Task.state.in_(ACTIVE_STATES))
                               .order_by(Task.id)).all()
    sessions = db.session.scalars(db.select(MulticastSession).where(
        MulticastSession.state.in_(LIVE_STATES)).order_by(MulticastSession.id)).all()
    return {"tasks": tasks, "sessions": sessions, "busy": bool(tasks or sessions),
            "positions": {}}


def storage_rows() -> list[dict]:
    """Used and free space per com server: measured here, summed from replicas elsewhere."""
    path = current_app.config["STORAGE_PATH"]
    used_here = db.session.scalar(db.select(func.coalesce(func.sum(
        Image.size_on_server_bytes), 0)))
    try:
        usage = shutil.disk_usage(path)
        free, total = usage.free, usage.total
    except OSError:
        free = total = None
    rows = [{"name": "This server", "used": used_here, "free": free, "total": total}]
    replicated = dict(db.session.execute(
        db.select(ReplicationStatus.server_id, func.sum(Image.size_on_server_bytes))
        .join(Image, Image.id == ReplicationStatus.image_id)
        .where(ReplicationStatus.state == "replicated")
        .group_by(ReplicationStatus.server_id)).all())
    for server in db.session.scalars(db.select(ComServer).where(ComServer.is_local.is_(False))
                                     .order_by(ComServer.display_name)):
        rows.append({"name": server.display_name, "used": replicated.get(server.id, 0),
                     "free": None, "total": None})
    return rows


def replication_counts() -> dict[str, int]:
    """How many image copies are in each replication state."""
    return dict(db.session.execute(db.select(ReplicationStatus.state, func.count())
                                   .group_by(ReplicationStatus.state)).all())


def activity_chart() -> dict:
    """Finished uploads and deploys per day over the last 30 days, as SVG bars."""
    today = utcnow().date()
    since = utcnow() - timedelta(days=30)
    events = [(finished.date(), kind) for finished, kind in db.session.execute(
        db.select(Task.finished_at, Task.kind).where(
            Task.state == "done", Task.finished_at >= since,
            Task.kind.in_(("upload", "deploy"))))]
    days = chart.daily_counts(events, today)
    bars, top = chart.bars(days)
    return {"bars": bars, "top": top, "width": chart.WIDTH, "height": chart.HEIGHT,
            "left": chart.LEFT, "bottom": chart.BOTTOM, "days": days,
            "uploads": sum(d["upload"] for d in days), "deploys": sum(d["deploy"] for d in days)}


@bp.get("/")
def index():
    """The home page; htmx polls its live region (fast while busy, slowly when idle)."""
    live = live_context()
    if htmx.is_partial():
        return render_template("dashboard/_live.html", **live)
    return render_template("dashboard/index.html", storage=storage_rows(),
                           replication=replication_counts(), chart=activity_chart(),
                           propagation_failures=recent_failures(), **live)
