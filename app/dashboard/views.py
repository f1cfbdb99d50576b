"""The dashboard view and its live region (polled by htmx while anything runs)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from sqlalchemy import func

from app import htmx, storage
from app.dashboard import chart
from app.extensions import db
from app.images.forms import ConfirmForm
from app.jobs import never_queued
from app.models import Image, MulticastSession, ReplicationStatus, Task
from app.models.base import utcnow
from app.models.computers import ACTIVE_STATES
from app.models.multicast import LIVE_STATES
from app.replication import space
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
    """Used and free space per com server: measured here, as last reported by each peer.

    What a peer holds of ours is summed from the copies replicated there.
    """
    used_here = db.session.scalar(db.select(func.coalesce(func.sum(
        Image.size_on_server_bytes), 0)))
    try:
        free, total = storage.disk_space(current_app.config["STORAGE_PATH"])
    except OSError:
        free = total = None
    rows = [{"name": "This server", "local": True, "used": used_here, "free": free,
             "total": total}]
    replicated = dict(db.session.execute(
        db.select(ReplicationStatus.server_id, func.sum(Image.size_on_server_bytes))
        .join(Image, Image.id == ReplicationStatus.image_id)
        .where(ReplicationStatus.state == "replicated")
        .group_by(ReplicationStatus.server_id)).all())
    for server in space.peers_to_ask():
        rows.append({"name": server.display_name, "local": False,
                     "used": replicated.get(server.id, 0), "free": server.space_free_bytes,
                     "total": server.space_total_bytes, "checked_at": server.space_checked_at,
                     "error": server.space_error, "tried_at": server.space_tried_at})
    return rows


def storage_context() -> dict:
    """The Storage card: its rows, and whether a refresh is still asking peers."""
    return {"storage": storage_rows(), "refreshing": space.refreshing(),
            "refresh_form": ConfirmForm()}


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


def page():
    """Render the whole dashboard."""
    return render_template("dashboard/index.html", replication=replication_counts(),
                           chart=activity_chart(), propagation_failures=recent_failures(),
                           retry_form=ConfirmForm(), **storage_context(), **live_context())


@bp.get("/")
def index():
    """The home page; htmx polls its live region (fast while busy, slowly when idle)."""
    if htmx.is_partial():
        return render_template("dashboard/_live.html", **live_context())
    return page()


@bp.get("/dashboard/storage")
def storage_card():
    """The Storage card, polled by htmx while a refresh runs (the whole page otherwise)."""
    if not htmx.is_partial():
        return page()
    context = storage_context()
    body = render_template("dashboard/_storage.html", **context)
    return body, (200 if context["refreshing"] else htmx.STOP_POLLING)


@bp.post("/dashboard/storage/refresh")
def refresh_storage():
    """Queue a free space report from every peer; the page shows answers as they come."""
    if ConfirmForm().validate_on_submit():
        rows = space.queue_refresh()
        failed = [row for row in rows if never_queued(row)]
        if not rows:
            flash("There is no other com server to ask: add them under Servers.", "info")
        elif failed:
            flash(f"Could not ask for free space: {failed[0].error}", "error")
        else:
            flash(f"Asking {len(rows)} server{'' if len(rows) == 1 else 's'} for their free "
                  "space.", "info")
    return redirect(url_for("dashboard.index"), 303)
