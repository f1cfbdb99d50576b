"""What a task token may reach: its own task's computer, image, profile, modules and upload.

A task token is what an imaging machine holds, and whatever a machine holds may leak (its
boot ticket was public on the LAN). So a token scoped to a task reads or writes only that
task's own objects; an operator's API token (`g.user`) is not limited here.
"""

from __future__ import annotations

from flask import g, request

from app.extensions import db
from app.models import Image, ImageProfile, ProfileFileCopy, Task
from app.tickets import task_for_token

READ_KINDS = ("deploy", "multicast")


class ScopeError(Exception):
    """A task token asked for something outside its task (answered 403)."""

    status = 403


def bearer() -> str:
    """Return the request's bearer token, or ''."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else ""


def resolve_task_token(grace_seconds: int = 0) -> Task | None:
    """Set and return `g.task` from a task token (None for an API token or none at all).

    `grace_seconds` lets a token of a task that just ended still report its end (log, state).
    """
    g.task = None
    if g.get("user") is None:
        g.task = task_for_token(bearer(), grace_seconds=grace_seconds)
    return g.task


def scoped_task() -> Task | None:
    """Return the task whose token authenticated this request, if any."""
    return g.get("task")


def refuse_task_token(what: str) -> None:
    """Refuse a call that no task token may make."""
    if scoped_task() is not None:
        raise ScopeError(f"a task token cannot {what}")


def require_kind(*kinds: str) -> None:
    """Refuse a task token whose task is of another kind."""
    task = scoped_task()
    if task is not None and task.kind not in kinds:
        raise ScopeError(f"this token belongs to a {task.kind} task")


def require_image(image: Image) -> None:
    """Refuse a task token for another image than its task's."""
    task = scoped_task()
    if task is not None and task.image_id != image.id:
        raise ScopeError("this task token is for another image")


def require_profile(profile: ImageProfile) -> None:
    """Refuse a task token for another profile than its task's."""
    task = scoped_task()
    if task is not None and task.profile_id != profile.id:
        raise ScopeError("this task token is for another profile")


def require_upload(state: dict) -> None:
    """Refuse a task token for an upload session its task did not open."""
    task = scoped_task()
    if task is not None and state.get("task_id") != task.id:
        raise ScopeError("this upload belongs to another task")


def require_module(module_id: int) -> None:
    """Refuse a task token for a file-copy module its task's profile does not use."""
    task = scoped_task()
    if task is None:
        return
    require_kind(*READ_KINDS)
    used = db.session.scalar(db.select(ProfileFileCopy.id).filter_by(
        profile_id=task.profile_id, module_id=module_id))
    if used is None:
        raise ScopeError("this task's profile does not use that module")
