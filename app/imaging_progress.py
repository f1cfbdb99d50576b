"""Live progress of an image's uploads and deploys, for the image page (htmx polling)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from app import htmx
from app.extensions import db
from app.models import Image, Task
from app.models.computers import ACTIVE_STATES

bp = Blueprint("imaging_progress", __name__)

RECENT = 5


def image_tasks(image_id: int) -> tuple[list[Task], list[Task]]:
    """Return (running, recently finished) imaging tasks of an image."""
    running = list(db.session.scalars(
        db.select(Task).where(Task.image_id == image_id, Task.state.in_(ACTIVE_STATES))
        .order_by(Task.id)))
    finished = list(db.session.scalars(
        db.select(Task).where(Task.image_id == image_id, Task.state.not_in(ACTIVE_STATES))
        .order_by(Task.id.desc()).limit(RECENT)))
    return running, finished


@bp.get("/images/<int:image_id>/progress", endpoint="images_progress")
def images_progress(image_id: int):
    """Show running uploads/deploys of an image; the partial stops polling when idle."""
    image = db.session.get(Image, image_id)
    if image is None:
        abort(404)
    running, finished = image_tasks(image_id)
    context = {"image": image, "running": running, "finished": finished}
    if htmx.is_partial():
        body = render_template("client/_progress.html", **context)
        # 286 tells htmx to stop polling once nothing runs any more.
        return body, (200 if running else htmx.STOP_POLLING)
    return render_template("client/progress.html", **context)
