"""The imaging client's API, deploy side: image files, plans, progress, log, cancel, checkout."""

from __future__ import annotations

import json

from flask import Blueprint, current_app, g, jsonify, send_file

from app.api import api_error
from app.api.body import (
    DISKS,
    Field,
    Id,
    check_fields,
    json_object,
    query_int,
)
from app.api.client import (
    NAME_OR_ID,
    acting_username,
    client_auth,
    find_image,
    find_profile,
    profile_payload,
    task_for,
)
from app.api.scope import READ_KINDS, require_image, require_kind, require_module, require_profile
from app.deploys import captured_schema, plan_image_deploy
from app.extensions import db
from app.imaging.errors import PlanError
from app.imaging.schema import SchemaError
from app.models import FileCopyModule, Task, record_history
from app.models.base import utcnow
from app.storage import StorageError, image_dir, read_manifest, safe_join
from app.tasks.service import finish_task

LOG_LIMIT = 1_000_000

# The deploy side of the client API (the upload side is app.api.client), same prefix.
bp = Blueprint("api_client_io", __name__, url_prefix="/api/v1/client")


def _deployable(name: str):
    """Return (image, folder, manifest) of a complete, enabled image, or an error answer."""
    image = find_image(name)
    if image is None:
        return None, None, None, api_error(404, f"no image named {name}")
    require_image(image)
    if not image.enabled:
        return None, None, None, api_error(409, f"image {image.name} is disabled")
    if image.damaged:
        return None, None, None, api_error(409, f"image {image.name} is damaged on this server "
                                                f"({image.damaged[:300]}): repair it or upload "
                                                "it again before deploying")
    folder = image_dir(current_app.config["STORAGE_PATH"], image.name)
    manifest = read_manifest(folder)
    if manifest is None:
        return None, None, None, api_error(409, f"image {image.name} has not been uploaded")
    return image, folder, manifest, None


@bp.get("/images/<name>/manifest")
@client_auth
def manifest(name: str):
    """Return an image's manifest (files, compression, sizes, SHA-256)."""
    require_kind(*READ_KINDS)
    _image, _folder, data, error = _deployable(name)
    return error or jsonify(data)


@bp.get("/images/<name>/schema")
@client_auth
def schema(name: str):
    """Return the schema stored in an image's folder."""
    require_kind(*READ_KINDS)
    _image, folder, _manifest, error = _deployable(name)
    if error:
        return error
    return send_file(folder / "schema.json", mimetype="application/json")


@bp.get("/images/<name>/files/<path:relative>")
@client_auth
def download(name: str, relative: str):
    """Serve an image file; Range requests resume a broken download."""
    require_kind(*READ_KINDS)
    _image, folder, _manifest, error = _deployable(name)
    if error:
        return error
    try:
        path = safe_join(folder, relative)
    except StorageError as exc:
        return api_error(400, str(exc))
    if not path.is_file():
        return api_error(404, f"no file {relative} in image {name}")
    return send_file(path, mimetype="application/octet-stream", conditional=True, etag=False)


DEPLOY_FIELDS = {"image": NAME_OR_ID, "profile": NAME_OR_ID, "disks": DISKS,
                 "efi": Field(bool, nullable=True)}


@bp.post("/deploys")
@client_auth
def create_deploy():
    """Plan a deploy for the client's disks; refuse before anything is written."""
    data = check_fields(json_object(optional=True), DEPLOY_FIELDS)
    require_kind("deploy")
    image, _folder, manifest_doc, error = _deployable(
        data.get("image") or (g.task.image_id if g.task else ""))
    if error:
        return error
    profile = find_profile(image, data.get("profile") or (g.task.profile_id if g.task else None))
    if profile is None:
        return api_error(404, f"image {image.name} has no profile {data.get('profile')}")
    require_profile(profile)
    disks = data.get("disks") or []
    if not disks:
        return api_error(400, "no destination disks given")
    storage = current_app.config["STORAGE_PATH"]
    try:
        plans = plan_image_deploy(image, profile, disks, storage, data.get("efi"))
    except (PlanError, SchemaError) as exc:  # a refusal the operator must read
        return api_error(422, str(exc))
    task = task_for("deploy", image, profile)
    record_history("image", image.id, "deploy",
                   {"task_id": task.id, "profile": profile.name, "disks": disks},
                   acting_username())
    db.session.commit()
    return jsonify({"task_id": task.id, "on_demand": task.on_demand,
                    "image": image.to_dict(), "profile": profile_payload(profile),
                    "manifest": manifest_doc, "schema": captured_schema(image, storage),
                    "plans": plans})


def _task(data: dict) -> Task | None:
    """The caller's task: its own (task token) or the id it names (API token)."""
    if g.get("task") is not None:
        return g.task
    task_id = check_fields({"task_id": data.get("task_id")}, {"task_id": Id(nullable=True)})
    task_id = task_id["task_id"] or query_int("task_id", minimum=1)
    return db.session.get(Task, task_id) if task_id else None


@bp.post("/progress")
@client_auth
def progress():
    """Store the client's progress report (per partition: bytes, rate, ETA)."""
    data = json_object(optional=True)
    task = _task(data)
    if task is None:
        return api_error(404, "no such task")
    report = {k: data[k] for k in ("step", "disk", "partition", "bytes_done", "bytes_total",
                                   "rate_bytes_s", "eta_s", "percent", "message") if k in data}
    report["at"] = utcnow().isoformat(timespec="seconds") + "Z"
    task.progress_json = json.dumps(report)
    db.session.commit()
    return jsonify({"cancel": task.cancel_requested})


@bp.post("/log")
@client_auth
def append_log():
    """Append lines to the task's log (kept to the last megabyte)."""
    data = json_object(optional=True)
    task = _task(data)
    if task is None:
        return api_error(404, "no such task")
    text = str(data.get("text", ""))
    task.log = (task.log + text)[-LOG_LIMIT:]
    db.session.commit()
    return jsonify({"length": len(task.log)})


@bp.get("/cancel")
@client_auth
def cancel():
    """Tell the client whether its task was cancelled from the web UI."""
    task = _task({})
    if task is None:
        return api_error(404, "no such task")
    return jsonify({"cancel": task.cancel_requested or task.state == "cancelled"})


@bp.post("/checkout")
@client_auth
def checkout():
    """Close the task: done or failed with the client's error."""
    data = json_object(optional=True)
    task = _task(data)
    if task is None:
        return api_error(404, "no such task")
    error = str(data.get("error", ""))[:4000]
    if task.is_active:
        finish_task(task, "done" if data.get("ok") else (
            "cancelled" if data.get("cancelled") else "failed"), error)
    else:
        task.error = error or task.error
    db.session.commit()
    return jsonify({"task": task.to_dict()})


@bp.get("/modules/<int:module_id>/files")
@client_auth
def module_files(module_id: int):
    """List the stored files of a file-copy module."""
    from app.modules.files import list_files

    require_module(module_id)
    if db.session.get(FileCopyModule, module_id) is None:
        return api_error(404, f"no file-copy module {module_id}")
    return jsonify({"files": list_files(current_app.config["STORAGE_PATH"], module_id)})


@bp.get("/modules/<int:module_id>/files/<path:relative>")
@client_auth
def module_file(module_id: int, relative: str):
    """Download one file of a file-copy module (Range supported)."""
    from app.modules.files import module_dir

    require_module(module_id)
    try:
        path = safe_join(module_dir(current_app.config["STORAGE_PATH"], module_id), relative)
    except StorageError as exc:
        return api_error(400, str(exc))
    if not path.is_file():
        return api_error(404, f"no file {relative} in module {module_id}")
    return send_file(path, mimetype="application/octet-stream", conditional=True, etag=False)
