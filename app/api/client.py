"""The imaging client's API: login, check-in, on-demand lists, uploads (deploy side: client_io).

Every call takes an operator's API token (`g.user`) or a task token
(`Authorization: Bearer <task token>`, then `g.task`), which reaches only its own task's
objects (app.api.scope). Check-in also takes a boot ticket instead; login takes a password.
The wire contract is docs/client-api.md.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import ClientDisconnected

from app.api import api_error
from app.api.body import Field, check_fields, json_object
from app.api.errors import MAX_ID
from app.api.scope import (
    require_image,
    require_kind,
    require_profile,
    require_upload,
    resolve_task_token,
)
from app.api.tasks import CHECKIN_FIELDS, task_payload
from app.extensions import db
from app.images.rules import NAME_MAX
from app.images.service import ImageError, image_for_on_demand_upload
from app.login import LoginRefused, authenticate
from app.models import ApiToken, Image, ImageProfile, Task
from app.models.base import utcnow
from app.tasks.service import (
    TaskError,
    model_match_checkin,
    refresh_boot_files,
    task_for_checkin,
)
from app.tickets import TicketError, exchange_ticket, issue_task_token
from app.uploads import (
    abort_upload,
    complete_upload,
    fail_upload,
    load_state,
    receive_file,
    save_schema,
    start_upload,
)

bp = Blueprint("api_client", __name__, url_prefix="/api/v1/client")


def client_auth(view):
    """Accept an operator's API token or an active task's token (then g.task is the task)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if resolve_task_token() is None and g.get("user") is None:
            return api_error(401, "a valid API token or task token is required")
        return view(*args, **kwargs)

    return wrapped


def acting_username() -> str:
    """Name recorded in history: the token's user, or the task's computer."""
    if g.get("user") is not None:
        return g.user.username
    task = g.get("task")
    if task is not None and task.computer is not None:
        return f"computer:{task.computer.name}"
    return "client"


def find_image(name_or_id: str | int) -> Image | None:
    """Look an image up by name, or by id when given digits."""
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        number = int(name_or_id)
        return db.session.get(Image, number) if 1 <= number <= MAX_ID else None
    return db.session.scalar(db.select(Image).filter_by(name=str(name_or_id)))


def find_profile(image: Image, profile: str | int | None) -> ImageProfile | None:
    """Return the named (or id) profile of an image, or its first profile when None."""
    if profile in (None, ""):
        return image.profiles[0] if image.profiles else None
    for candidate in image.profiles:
        if str(candidate.id) == str(profile) or candidate.name == str(profile):
            return candidate
    return None


def task_for(kind: str, image: Image, profile: ImageProfile | None) -> Task:
    """Return the caller's task, or open an on-demand task so progress has a home."""
    task = g.get("task")
    if task is None:
        task = Task(kind=kind, image_id=image.id, profile_id=profile.id if profile else None,
                    on_demand=True, state="imaging", started_at=utcnow())
        db.session.add(task)
    else:
        task.state = "imaging"
        task.started_at = task.started_at or utcnow()
    db.session.flush()
    return task


def _json_object() -> dict:
    """Return the JSON object body, or {} when there is none (anything else is a 400)."""
    return json_object(optional=True)


NAME_OR_ID = Field((str, int), max_length=128, minimum=1, maximum=MAX_ID, nullable=True,
                   description="a name, or an id")
# An upload names an existing image or a new one (created on demand): image name rules.
UPLOAD_FIELDS = {"image": Field((str, int), max_length=NAME_MAX, min_length=1, minimum=1,
                                maximum=MAX_ID, nullable=True, pattern="^[A-Za-z0-9_-]+$",
                                description="an image name of letters, digits, '_' and '-' "
                                "(a new name creates the image), or an id"),
                 "profile": NAME_OR_ID}
COMPLETE_FIELDS = {"files": Field(list, items=dict, max_length=100000), "schema_only": Field(bool)}


@bp.post("/login")
def login():
    """Trade a username and password for a short-lived token carrying the user's role."""
    body = _json_object()
    try:
        user = authenticate(str(body.get("username") or ""), str(body.get("password") or ""),
                            request.remote_addr or "")
    except LoginRefused as exc:
        return api_error(exc.status, str(exc))
    minutes = int(current_app.config["CLIENT_LOGIN_MINUTES"])
    row, clear = ApiToken.issue(user, "console login", minutes=minutes)
    db.session.add(row)
    db.session.commit()
    return jsonify({"token": clear, "expires_at": row.expires_at.isoformat() + "Z",
                    "role": user.role})


@bp.post("/checkin")
def checkin():
    """Identify the machine and answer its work; a boot ticket is traded for a task token.

    Body `{"ticket"?, "mac", "client_id", "model", "serial", "system_uuid", "name"}`; answer
    `{"computer", "task", "token", "model_match", "on_demand"}`, `token` being a new task
    token (for the ticket, or for an operator whose computer has an active task) or null.
    """
    body = check_fields(json_object(), CHECKIN_FIELDS)
    mac = str(body.get("mac") or "")
    token = None
    if body.get("ticket"):
        try:
            ticket_task, _ticket = exchange_ticket(str(body["ticket"]), mac)
        except TicketError as exc:
            db.session.rollback()
            return api_error(401, str(exc))
        g.task = ticket_task
        token = issue_task_token(ticket_task)
    elif resolve_task_token() is None and g.get("user") is None:
        return _model_match_checkin(body, mac)
    try:
        result = task_for_checkin(
            mac, str(body.get("client_id") or ""), str(body.get("model") or ""),
            serial=str(body.get("serial") or ""), system_uuid=str(body.get("system_uuid") or ""),
            name=str(body.get("name") or ""), token_task=g.get("task"),
            register=None if g.get("user") is not None else False)
    except ValueError as exc:
        db.session.rollback()
        return api_error(400, str(exc), field="mac")
    except TaskError as exc:
        db.session.rollback()
        return api_error(exc.status, str(exc))
    if token is not None and not ticket_task.on_demand and (
            ticket_task.computer is not None and ticket_task.computer.mac):
        refresh_boot_files(ticket_task)  # a reboot mid-task boots with a new ticket
    db.session.commit()
    return jsonify({
        "computer": result.computer.to_dict() if result.computer else None,
        "task": task_payload(result.task) if result.task else None,
        "token": token or result.token,
        "model_match": result.model_match,
        "on_demand": result.task is None,
    })


def _model_match_checkin(body: dict, mac: str):
    """Answer a check-in without credential: only a profile's model match gives it work."""
    try:
        result = model_match_checkin(
            mac, str(body.get("client_id") or ""), str(body.get("model") or "")[:128],
            serial=str(body.get("serial") or ""), system_uuid=str(body.get("system_uuid") or ""),
            name=str(body.get("name") or ""))
    except (ValueError, TaskError):
        result = None
    if result is None:
        db.session.rollback()
        return api_error(401, "a boot ticket, an API token or a task token is required "
                              "(no profile's model match gives this machine a deploy)")
    db.session.commit()
    return jsonify({"computer": result.computer.to_dict(), "task": task_payload(result.task),
                    "token": result.token, "model_match": True, "on_demand": False})


@bp.get("/images")
@client_auth
def images():
    """List enabled images; `on_demand=1` keeps the deployable ones available on demand."""
    query = db.select(Image).filter_by(enabled=True).order_by(Image.name)
    if g.task is not None:
        query = query.filter_by(id=g.task.image_id)  # a task token sees its own image only
    if request.args.get("on_demand") == "1":
        # Only what can be deployed: a placeholder never uploaded has nothing to restore.
        query = query.filter_by(on_demand=True).where(Image.last_upload_at.is_not(None))
    return jsonify({"images": [i.to_dict() for i in db.session.scalars(query)]})


@bp.get("/images/<name>/profiles")
@client_auth
def profiles(name: str):
    """List an image's profiles (id and name)."""
    image = find_image(name)
    if image is None:
        return api_error(404, f"no image named {name}")
    require_image(image)
    return jsonify({"profiles": [{"id": p.id, "name": p.name, "description": p.description}
                                 for p in image.profiles]})


@bp.get("/profiles/<int:profile_id>/options")
@client_auth
def profile_options(profile_id: int):
    """Return every option of a profile, with its script, sysprep and file-copy modules."""
    profile = db.session.get(ImageProfile, profile_id)
    if profile is None:
        return api_error(404, "no such profile")
    require_profile(profile)
    return jsonify(profile_payload(profile))


def profile_payload(profile: ImageProfile) -> dict:
    """A profile's options plus its ordered modules, as the client consumes them."""
    data = profile.to_dict()
    data["scripts"] = [{"name": s.module.name, "contents": s.module.contents,
                        "priority": s.priority, "run_when": s.run_when}
                       for s in profile.scripts]
    data["syspreps"] = [{"name": s.module.name, "opening_tag": s.module.opening_tag,
                         "closing_tag": s.module.closing_tag, "contents": s.module.contents,
                         "priority": s.priority} for s in profile.syspreps]
    data["file_copies"] = [{"name": f.module.name, "module_id": f.module_id,
                            "destination_folder": f.module.destination_folder,
                            "unzip": f.module.unzip, "priority": f.priority,
                            "destination_partition": f.destination_partition}
                           for f in profile.file_copies]
    return data


@bp.post("/uploads")
@client_auth
def create_upload():
    """Open an upload session for an image (404 unknown, 409 protected)."""
    data = check_fields(_json_object(), UPLOAD_FIELDS)
    require_kind("upload")
    image = find_image(data.get("image") or (g.task.image_id if g.task else ""))
    if image is None and g.task is None and isinstance(data.get("image"), str):
        # On demand, a new name creates the image (the seed's usual way to make one).
        try:
            image = image_for_on_demand_upload(current_app.config["STORAGE_PATH"],
                                               data["image"])
        except ImageError as exc:
            return api_error(exc.status, exc.message)
    if image is None:
        return api_error(404, f"no image named {data.get('image')}")
    require_image(image)
    profile = find_profile(image, data.get("profile") or (g.task.profile_id if g.task else None))
    if profile is None:
        return api_error(404, f"image {image.name} has no profile {data.get('profile')}")
    require_profile(profile)
    task = task_for("upload", image, profile)
    state = start_upload(current_app.config["STORAGE_PATH"], image, profile.id,
                         acting_username(), task.id)
    db.session.commit()
    return jsonify({"upload_id": state["upload_id"], "task_id": task.id,
                    "on_demand": task.on_demand,
                    "image": image.to_dict(), "profile": profile_payload(profile)}), 201


@bp.put("/uploads/<upload_id>/schema")
@client_auth
def upload_schema(upload_id: str):
    """Store the schema of an upload (validated when the schema module is installed)."""
    try:
        from app.imaging.schema import validate_schema
    except ImportError:
        validate_schema = None
    require_upload(load_state(current_app.config["STORAGE_PATH"], upload_id))
    schema = json_object()
    save_schema(current_app.config["STORAGE_PATH"], upload_id, schema, validate_schema)
    return jsonify({"upload_id": upload_id, "schema": "stored"})


@bp.put("/uploads/<upload_id>/files/<path:relative>")
@client_auth
def upload_file(upload_id: str, relative: str):
    """Stream one image file (or a segment of it) in; the server hashes it while writing."""
    require_upload(load_state(current_app.config["STORAGE_PATH"], upload_id))
    size = request.headers.get("X-Castor-Size")
    offset = request.headers.get("X-Castor-Offset")
    final = request.headers.get("X-Castor-Final", "1") != "0"
    try:
        offset_value = int(offset) if offset else None
        size_value = int(size) if size else None
    except ValueError:
        return api_error(400, "X-Castor-Offset and X-Castor-Size are byte counts")
    stored = receive_file(current_app.config["STORAGE_PATH"], upload_id, relative,
                          _body_reader(), size_value,
                          request.headers.get("X-Castor-Sha256"), offset_value, final,
                          request.content_length)
    return jsonify(stored), 201 if final else 200


def _body_reader():
    """A read(n) over the request body that reports a vanished client as an OSError."""
    stream = request.stream

    def read(size: int) -> bytes:
        try:
            return stream.read(size)
        except ClientDisconnected as exc:
            raise ConnectionResetError("the client disconnected mid-body") from exc

    return read


@bp.post("/uploads/<upload_id>/complete")
@client_auth
def finish_upload(upload_id: str):
    """Verify every file against the client's list and swap the new image in."""
    storage = current_app.config["STORAGE_PATH"]
    state = load_state(storage, upload_id)
    require_upload(state)
    image = db.session.get(Image, state["image_id"])
    if image is None:
        fail_upload(storage, upload_id, "the image was deleted during the upload")
        return api_error(404, "the image was deleted during the upload")
    data = check_fields(json_object(optional=True), COMPLETE_FIELDS)
    manifest = complete_upload(storage, upload_id, image, data.get("files", []),
                               bool(data.get("schema_only")))
    return jsonify({"image": image.to_dict(), "manifest": manifest})


@bp.delete("/uploads/<upload_id>")
@client_auth
def delete_upload(upload_id: str):
    """Abort an upload and remove its staging folder."""
    require_upload(load_state(current_app.config["STORAGE_PATH"], upload_id))
    removed = abort_upload(current_app.config["STORAGE_PATH"], upload_id)
    return jsonify({"upload_id": upload_id, "aborted": removed})


