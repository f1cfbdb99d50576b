"""The imaging queue: at most a com server's max imaging clients image at once, first come first.

A checked-in client asks to start (`request_start`); it either gets a slot (state `imaging`)
or waits in line (state `queued`, with a 1-based position) and asks again.
"""

from __future__ import annotations

from app.extensions import db
from app.models.base import utcnow
from app.models.computers import Task
from app.models.servers import ComServer


def imaging_limit() -> int:
    """Return the local com server's max imaging clients; 0 means unlimited."""
    local = db.session.scalar(db.select(ComServer).filter_by(is_local=True))
    return max(local.max_imaging_clients, 0) if local is not None else 0


def imaging_count() -> int:
    """Return how many tasks are imaging right now."""
    return db.session.scalar(
        db.select(db.func.count()).select_from(Task).filter(Task.state == "imaging")
    ) or 0


def queued_tasks() -> list[Task]:
    """Return the waiting tasks, first in line first."""
    return list(db.session.scalars(
        db.select(Task).filter(Task.state == "queued").order_by(Task.queued_at, Task.id)
    ))


def queue_position(task: Task) -> int | None:
    """Return the task's 1-based place in line, or None when it is not queued."""
    if task.state != "queued":
        return None
    for position, waiting in enumerate(queued_tasks(), start=1):
        if waiting.id == task.id:
            return position
    return None


def request_start(task: Task) -> tuple[str, int]:
    """Give the task an imaging slot if one is free and it is next; return (state, position).

    The caller commits. Position is 0 once imaging. Asking again also counts as a sign of
    life, so a waiting client does not expire.
    """
    now = utcnow()
    task.updated_at = now
    if task.state == "imaging":
        return "imaging", 0
    if task.state not in ("created", "checked_in", "queued"):
        raise ValueError(f"task {task.id} has ended ({task.state})")
    if task.state != "queued":
        task.state, task.queued_at = "queued", now
        db.session.flush()
    limit = imaging_limit()
    position = queue_position(task) or 1
    free = (limit - imaging_count()) if limit else position
    if position <= free:
        task.state, task.started_at = "imaging", now
        return "imaging", 0
    return "queued", position
