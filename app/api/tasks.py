"""REST API: tasks (create, list, cancel), the queue and the cancel poll.

Operator calls take an API token. The client's calls (`/tasks/<id>/start`, `/heartbeat`,
`/log`, `GET /tasks/<id>/cancel`) take an API token or the task's own token. The client
checks in at `POST /api/v1/client/checkin` (app.api.client).
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, current_app, g, jsonify, request

from app.api import api_error, token_required
from app.api.body import Field, Id, Text, check_fields, json_object
from app.api.scope import resolve_task_token
from app.computers.rules import MAC_PATTERN
from app.extensions import db
from app.models import Computer, Image, ImageProfile, Task
from app.models.base import utcnow
from app.models.computers import ACTIVE_STATES, TASK_KINDS
from app.tasks.queue import queue_position, request_start
from app.tasks.service import (
    cancel_task,
    create_task,
    expire_stale_tasks,
)

bp = Blueprint("api_tasks", __name__, url_prefix="/api/v1")


def token_or_task(view):
    """Accept an API token, or a task token (then `g.task` is that task).

    A task that ended a moment ago (TASK_TOKEN_GRACE_SECONDS) still lets its client read its
    state and send its log; nothing else is reachable from here with a task token.
    """

    @wraps(view)
    def wrapped(*args, **kwargs):
        grace = int(current_app.config.get("TASK_TOKEN_GRACE_SECONDS", 600))
        if resolve_task_token(grace) is None and g.get("user") is None:
            return api_error(401, "a valid API token or task token is required")
        return view(*args, **kwargs)

    return wrapped


def task_payload(task: Task) -> dict:
    """Return a task with its image, profile, computer and queue place, as the client reads it."""
    data = task.to_dict()
    data["queue_position"] = queue_position(task)
    data["image"] = task.image.to_dict() if task.image else None
    data["profile"] = task.profile.to_dict() if task.profile else None
    data["computer"] = task.computer.to_dict() if task.computer else None
    return data


def _json() -> dict:
    """Return the JSON object body, or {} when there is none (anything else is a 400)."""
    return json_object(optional=True)


LOG_FIELDS = {"text": Text(16 << 20, description="appended; the log keeps its last MiB")}
CHECKIN_FIELDS = {
    "ticket": Text(256, nullable=True, description="the boot ticket of the kernel command "
                   "line (castor_ticket); traded once for a task token"),
    "mac": Text(64, pattern=MAC_PATTERN, description="the machine's MAC, any common form"),
    "client_id": Text(128), "model": Text(256), "serial": Text(256), "system_uuid": Text(64),
    "name": Text(64, description="name for a newly registered computer")}
TASK_FIELDS = {"kind": Field(str, enum=TASK_KINDS), "computer_id": Id(),
               "image_id": Id(nullable=True), "profile_id": Id(nullable=True)}


def _task_for_client(task_id: int) -> Task | None:
    """Return the task if the caller may act on it (API token, or that task's token)."""
    task = db.session.get(Task, task_id)
    if task is None or (g.task is not None and g.task.id != task.id):
        return None
    return task


@bp.get("/tasks")
@token_required
def list_tasks():
    """List tasks: active ones by default, `state=all` or a state name to filter."""
    if expire_stale_tasks():
        db.session.commit()
    state = request.args.get("state", "active")
    stmt = db.select(Task).order_by(Task.id.desc()).limit(500)
    if state == "active":
        stmt = stmt.filter(Task.state.in_(ACTIVE_STATES))
    elif state != "all":
        stmt = stmt.filter(Task.state == state)
    return jsonify({"tasks": [task_payload(t) for t in db.session.scalars(stmt)]})


@bp.post("/tasks")
@token_required
def create():
    """Create a web task: `{"kind", "computer_id", "image_id"?, "profile_id"?}`."""
    body = check_fields(json_object(), TASK_FIELDS, required=("kind", "computer_id"))
    kind = body["kind"]
    computer = db.session.get(Computer, body["computer_id"])
    if computer is None:
        return api_error(404, "no such computer", field="computer_id")
    image = db.session.get(Image, body["image_id"]) if body.get("image_id") else None
    profile = (db.session.get(ImageProfile, body["profile_id"])
               if body.get("profile_id") else None)
    if body.get("image_id") and image is None:
        return api_error(404, "no such image", field="image_id")
    if body.get("profile_id") and profile is None:
        return api_error(404, "no such profile", field="profile_id")
    task, token = create_task(kind, computer, image, profile)
    db.session.commit()
    # The ticket lets an operator start `castor-client task --ticket` by hand (one use).
    return jsonify({"task": task_payload(task), "ticket": token}), 201


@bp.get("/tasks/<int:task_id>")
@token_or_task
def get_task(task_id: int):
    """Return one task."""
    task = _task_for_client(task_id)
    if task is None:
        return api_error(404, "no such task")
    return jsonify({"task": task_payload(task)})


@bp.post("/tasks/<int:task_id>/cancel")
@token_required
def cancel(task_id: int):
    """Cancel a task; `ended` is false while a web-cancelled imaging client is stopping."""
    task = db.session.get(Task, task_id)
    if task is None:
        return api_error(404, "no such task")
    ended = cancel_task(task)
    db.session.commit()
    return jsonify({"task": task_payload(task), "ended": ended})


@bp.get("/tasks/<int:task_id>/cancel")
@token_or_task
def cancel_poll(task_id: int):
    """Tell a running client whether it must stop: `{"cancel": bool, "state": ...}`."""
    task = _task_for_client(task_id)
    if task is None:
        return api_error(404, "no such task")
    return jsonify({"cancel": task.cancel_requested, "state": task.state})


@bp.post("/tasks/<int:task_id>/start")
@token_or_task
def start(task_id: int):
    """Ask for an imaging slot: `{"state": "imaging"|"queued", "position": N}`."""
    task = _task_for_client(task_id)
    if task is None:
        return api_error(404, "no such task")
    try:
        state, position = request_start(task)
    except ValueError as exc:
        return api_error(409, str(exc), state=task.state)
    db.session.commit()
    return jsonify({"state": state, "position": position, "cancel": task.cancel_requested})


@bp.post("/tasks/<int:task_id>/heartbeat")
@token_or_task
def heartbeat(task_id: int):
    """Record a sign of life from the client so the task does not expire."""
    task = _task_for_client(task_id)
    if task is None:
        return api_error(404, "no such task")
    task.updated_at = utcnow()
    db.session.commit()
    return jsonify({"state": task.state, "cancel": task.cancel_requested})


LOG_LIMIT = 1 << 20


@bp.post("/tasks/<int:task_id>/log")
@token_or_task
def append_log(task_id: int):
    """Append `{"text"}` to the task's log; works after the task ended (a cancelled client)."""
    task = _task_for_client(task_id)
    if task is None:
        return api_error(404, "no such task")
    text = check_fields(_json(), LOG_FIELDS).get("text", "")
    task.log = (task.log + text)[-LOG_LIMIT:]
    db.session.commit()
    return jsonify({"length": len(task.log)})


