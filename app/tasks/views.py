"""Active imaging tasks: the live list with progress and queue place, a task's log, cancel."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from app import htmx
from app.confirm import confirmation_page
from app.extensions import db
from app.models.base import utcnow
from app.models.computers import ACTIVE_STATES, Task
from app.tasks.queue import queued_tasks
from app.tasks.service import (
    TaskError,
    cancel_task,
    expire_stale_tasks,
    remove_stale_boot_files,
)

bp = Blueprint("tasks", __name__, url_prefix="/tasks")

RECENT_HOURS = 24


def task_or_404(task_id: int) -> Task:
    """Return the task with this id, or abort with 404."""
    task = db.session.get(Task, task_id)
    if task is None:
        abort(404, description=f"No task with id {task_id}.")
    return task


def listing() -> dict:
    """Expire stale tasks, then gather the active ones, their queue places and recent ends."""
    if expire_stale_tasks():
        db.session.commit()
    remove_stale_boot_files()
    active = db.session.scalars(
        db.select(Task).filter(Task.state.in_(ACTIVE_STATES)).order_by(Task.id)
    ).all()
    positions = {task.id: n for n, task in enumerate(queued_tasks(), start=1)}
    recent = db.session.scalars(
        db.select(Task)
        .filter(Task.state.not_in(ACTIVE_STATES),
                Task.finished_at >= utcnow() - timedelta(hours=RECENT_HOURS))
        .order_by(Task.finished_at.desc()).limit(20)
    ).all()
    return {"active": active, "positions": positions, "recent": recent}


@bp.get("/")
def index():
    """Show active tasks; htmx polls this URL (every 2 s while active, 10 s when idle)."""
    context = listing()
    if htmx.is_partial():
        return render_template("tasks/_list.html", **context)
    return render_template("tasks/index.html", **context)


@bp.get("/<int:task_id>")
def show(task_id: int):
    """Show one task with its progress, error and log."""
    task = task_or_404(task_id)
    return render_template("tasks/show.html", task=task)


@bp.post("/<int:task_id>/cancel")
def cancel(task_id: int):
    """Cancel a task; with the profile's web cancel the client is told to stop too."""
    task = task_or_404(task_id)
    if task.is_active:  # an ended task is refused below, without a question first
        page = _cancel_confirmation(task)
        if page is not None:
            return page
    try:
        ended = cancel_task(task)
    except TaskError as exc:
        flash(str(exc), "error")
        return redirect(url_for("tasks.index"), 303)
    db.session.commit()
    if not ended:
        message = "its client was told to stop and will check out (cancel again to drop it)"
    elif task.cancel_requested:
        message = "cancelled"
    else:
        message = "cancelled; a client already imaging keeps running (web cancel is off)"
    flash(f"Task {task.id}: {message}.", "success")
    return redirect(url_for("tasks.index"), 303)


def _cancel_confirmation(task: Task) -> str | None:
    """Return the page asking to cancel (or, once its client was told to stop, drop) a task."""
    verb = "Drop" if task.cancel_requested else "Cancel"
    target = f"task {task.id}" + (f" on {task.computer.name}" if task.computer else "")
    web_cancel = task.profile is not None and task.profile.web_cancel
    if task.cancel_requested:
        consequence = "It ends now, without waiting for its client to stop and check out."
    elif web_cancel and task.state == "imaging":
        consequence = "Its client is told to stop and check out; the disk is left half written."
    elif task.state == "imaging":
        consequence = "It ends; its client keeps running (web cancel is off in its profile)."
    else:
        consequence = "It ends and its computer no longer boots into it."
    return confirmation_page(f"{verb} {target}?", consequence, back=url_for("tasks.index"),
                             button=verb, back_label="Keep it")
