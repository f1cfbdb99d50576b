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
    """Show an image's size, last upload and running tasks; the partial polls slowly when idle."""
    image = db.session.get(Image, image_id)
    if image is None:
        abort(404)
    running, finished = image_tasks(image_id)
    context = {"image": image, "running": running, "finished": finished}
    if htmx.is_partial():
        # The partial also refreshes the header's badges (protected, disabled) out of band.
        return render_template("client/_progress.html", oob=True, **context)
    return render_template("client/progress.html", **context)
