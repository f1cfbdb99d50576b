"""Live progress of an image's uploads and deploys, for the image page (htmx polling)."""

from __future__ import annotations

from flask import render_template

from app import htmx
from app.extensions import db
from app.images.blueprint import bp
from app.images.loaders import image_or_404
from app.models import Task
from app.models.computers import ACTIVE_STATES

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


@bp.get("/<int:image_id>/progress")
def progress(image_id: int):
    """Show an image's size, last upload and running tasks; the partial polls slowly when idle."""
    image = image_or_404(image_id)
    running, finished = image_tasks(image_id)
    context = {"image": image, "running": running, "finished": finished}
    if htmx.is_partial():
        # The partial also refreshes the header's badges (protected, disabled) and its Delete
        # action out of band.
        return render_template("images/_progress.html", oob=True, **context)
    return render_template("images/progress.html", **context)
