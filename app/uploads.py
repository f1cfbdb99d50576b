"""Server side of an image upload: staging sessions, streamed files, verified swap-in.

A session is an incoming copy (app/receive) in STORAGE_PATH/staging/<upload_id>/ whose
state file also names the image and the uploader. Files stream into it straight from the
request body, hashed while written; `complete` checks every file against the client's
declaration, writes the manifest last and swaps the folder in through the journal.
Anything that goes wrong removes the staging folder and leaves the previous image untouched.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager

from app.extensions import db
from app.models.base import utcnow
from app.models.images import Image, record_history
from app.receive.area import STATE, Area
from app.receive.commit import commit_copy
from app.receive.manifest import FILE_KINDS
from app.receive.stream import ReceiveError
from app.storage import (
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    SCHEMA,
    folder_size,
    image_dir,
    read_manifest,
    staging_root,
    write_json_atomic,
)

log = logging.getLogger("castor.uploads")

STALE_SECONDS = 6 * 3600
# An upload whose staging folder saw no byte for this long has lost its client: a new
# upload of the same image may replace it. Until then only its own task may.
IDLE_SECONDS = 600


class UploadError(ReceiveError):
    """An upload was refused or failed; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400, **extra) -> None:
        super().__init__(status, message, **extra)


@contextmanager
def _refusals():
    """Turn the engine's refusals into UploadError for the client API's boundary."""
    try:
        yield
    except UploadError:
        raise
    except ReceiveError as exc:
        raise UploadError(exc.message, exc.status, **exc.extra) from None


def _area(storage_path: str, upload_id: str) -> Area:
    if not upload_id.isalnum() or len(upload_id) > 64:
        raise UploadError("unknown upload", 404)
    return Area(staging_root(storage_path) / upload_id)


def load_state(storage_path: str, upload_id: str) -> dict:
    """Return a session's state, or raise a 404 UploadError."""
    area = _area(storage_path, upload_id)
    if not (area.root / STATE).is_file():
        raise UploadError("unknown or aborted upload", 404)
    return area.load_state()


def _save_state(storage_path: str, state: dict) -> None:
    state["touched_at"] = time.time()
    _area(storage_path, state["upload_id"]).save_state(state)


def abort_upload(storage_path: str, upload_id: str) -> bool:
    """Remove a session's staging folder; return whether there was one."""
    area = _area(storage_path, upload_id)
    existed = area.root.exists()
    area.discard()
    return existed


def end_on_demand_task(task_id: int | None, error: str) -> None:
    """Fail the on-demand task of an upload the server gave up on (its client may be gone).

    A web task is left to its own life (the machine may boot into it again); an on-demand
    task exists only for this upload, and nobody else would ever end it.
    """
    from app.models import Task
    from app.tasks.service import finish_task

    task = db.session.get(Task, task_id) if task_id else None
    if task is not None and task.on_demand and task.is_active:
        finish_task(task, "failed", error)
        db.session.commit()


def fail_upload(storage_path: str, upload_id: str, error: str) -> bool:
    """Abort an upload on the server's side: remove its staging folder, end its on-demand task."""
    try:
        task_id = load_state(storage_path, upload_id).get("task_id")
    except (UploadError, ValueError, OSError):
        task_id = None
    removed = abort_upload(storage_path, upload_id)
    end_on_demand_task(task_id, f"upload aborted by the server: {error}")
    return removed


def _last_activity(folder) -> float:
    """When anything in a staging folder last changed (bytes still arriving count)."""
    stamps = [folder.stat().st_mtime]
    for path in folder.rglob("*"):
        try:
            stamps.append(path.stat().st_mtime)
        except FileNotFoundError:
            continue
    return max(stamps)


def _read_state(folder) -> dict:
    try:
        return json.loads((folder / STATE).read_text())
    except (OSError, ValueError):
        return {}


def cleanup_stale(storage_path: str, max_age: float = STALE_SECONDS) -> list[str]:
    """Remove staging folders idle for longer than max_age seconds; return their ids."""
    root = staging_root(storage_path)
    removed = []
    if not root.is_dir():
        return removed
    now = time.time()
    for folder in root.iterdir():
        state = folder / STATE
        stamp = state.stat().st_mtime if state.exists() else folder.stat().st_mtime
        if now - stamp > max_age:
            task_id = _read_state(folder).get("task_id")
            Area(folder).discard()
            removed.append(folder.name)
            end_on_demand_task(task_id, "upload abandoned: no data for "
                                        f"{int(max_age // 3600)} hours")
    return removed


def start_upload(storage_path: str, image: Image, profile_id: int | None, username: str,
                 task_id: int | None = None) -> dict:
    """Open an upload session for an image; refuse protected or disabled images."""
    if image.protected:
        raise UploadError(f"image {image.name} is protected: unprotect it to upload over it",
                          409)
    cleanup_stale(storage_path)
    # One upload per image. A running one is replaced only by its own task starting over
    # (the machine rebooted) or once it has gone quiet (its client is gone); anyone else
    # is refused, so one client cannot break another's upload.
    root = staging_root(storage_path)
    if root.is_dir():
        for folder in root.iterdir():
            other = _read_state(folder)
            if other.get("image") != image.name:
                continue
            same_task = task_id is not None and other.get("task_id") == task_id
            idle = time.time() - _last_activity(folder)
            if not same_task and idle < IDLE_SECONDS:
                raise UploadError(
                    f"image {image.name} is being uploaded by {other.get('username')} "
                    f"(upload {folder.name}); wait for it, or abort that upload", 409,
                    upload_id=folder.name)
            log.info("upload %s of %s replaced by a new one", folder.name, image.name)
            shutil.rmtree(folder, ignore_errors=True)
            if not same_task:
                end_on_demand_task(other.get("task_id"),
                                   "upload replaced by a new one after "
                                   f"{int(idle)} s without data")
    upload_id = secrets.token_hex(16)
    _area(storage_path, upload_id).root.mkdir(parents=True)
    state = {"upload_id": upload_id, "image": image.name, "image_id": image.id,
             "profile_id": profile_id, "username": username, "task_id": task_id,
             "started_at": time.time(), "schema": None}
    _save_state(storage_path, state)
    return load_state(storage_path, upload_id)


def save_schema(storage_path: str, upload_id: str, schema: dict,
                validate: Callable[[dict], dict] | None = None) -> dict:
    """Validate and keep the uploaded schema in the session."""
    state = load_state(storage_path, upload_id)
    if validate is not None:
        try:
            schema = validate(schema) or schema
        except Exception as exc:  # the planner's SchemaError, whatever its base
            raise UploadError(f"invalid schema: {exc}", 422) from exc
    elif schema.get("format") != "castor-schema" or schema.get("version") != 1:
        raise UploadError("invalid schema: not a castor-schema version 1 document", 422)
    area = _area(storage_path, upload_id)
    area.tree.mkdir(parents=True, exist_ok=True)
    write_json_atomic(area.tree / SCHEMA, schema)
    state["schema"] = SCHEMA
    _save_state(storage_path, state)
    return state


def receive_file(storage_path: str, upload_id: str, relative: str,
                 read: Callable[[int], bytes], expected_size: int | None = None,
                 expected_sha256: str | None = None, offset: int | None = None,
                 final: bool = True, length: int | None = None) -> dict:
    """Stream a file (or one segment of it) into staging, hashing while writing.

    Segments carry their offset; the last one (`final`) is checked and moved into place.
    A broken stream, a full disk or a segment at the wrong offset aborts the whole upload.
    """
    load_state(storage_path, upload_id)
    area = _area(storage_path, upload_id)
    with _refusals():
        relative = area.path(relative)  # a refused path leaves the upload as it was
    try:
        with _refusals():
            answer = area.receive(relative, read, offset=offset or 0, length=length,
                                  size=expected_size, final=final,
                                  sha256=expected_sha256.lower() if expected_sha256 else None)
    except UploadError as exc:
        # Client gone, disk full, bad bytes, wrong offset: this upload cannot complete.
        fail_upload(storage_path, upload_id, exc.message)
        raise
    if not final:
        return {"path": answer["path"], "offset": answer["received_bytes"]}
    _save_state(storage_path, area.load_state())
    return {"path": answer["path"], "size_bytes": answer["size_bytes"],
            "sha256": answer["sha256"]}


def _manifest_entries(state: dict, declared: list[dict]) -> list[dict]:
    """Check the client's file list against what arrived; return manifest entries."""
    if not isinstance(declared, list) or not all(isinstance(i, dict) for i in declared):
        raise UploadError("files must be a list of file objects", 422)
    received = dict(state["received"])
    entries = []
    for item in declared:
        path = item.get("path", "")
        got = received.pop(path, None)
        if got is None:
            raise UploadError(f"{path}: never received", 422)
        if "size_bytes" in item and item["size_bytes"] != got["size_bytes"]:
            raise UploadError(f"{path}: {got['size_bytes']} bytes arrived, client sent "
                              f"{item['size_bytes']}", 422)
        if item.get("sha256") and str(item["sha256"]).lower() != got["sha256"]:
            raise UploadError(f"{path}: SHA-256 differs from the client's", 422)
        if item.get("kind") not in FILE_KINDS:
            raise UploadError(f"{path}: unknown kind {item.get('kind')!r}", 422)
        entries.append({
            "path": path, "kind": item["kind"], "disk": item.get("disk", 0),
            "partition": item.get("partition"), "lv": item.get("lv"),
            "filesystem": item.get("filesystem"),
            "compression": item.get("compression", "none"), "level": item.get("level"),
            "size_bytes": got["size_bytes"], "sha256": got["sha256"],
            "chunk_bytes": got["chunk_bytes"], "chunks": got["chunks"],
            "source_bytes": item.get("source_bytes"),
        })
    if received:
        raise UploadError(f"files not in the client's list: {', '.join(sorted(received))}", 422)
    return entries


def client_size(schema: dict) -> int:
    """Bytes the image covers on the client: the sum of its partitions' used space."""
    total = 0
    for disk in schema.get("disks", []):
        for part in disk.get("partitions", []):
            fs = part.get("filesystem") or {}
            if part.get("role") == "extended":
                continue
            total += int(fs.get("used_bytes") or 0)
    return total


def complete_upload(storage_path: str, upload_id: str, image: Image, declared: list[dict],
                    schema_only: bool = False) -> dict:
    """Verify every file, write the manifest last, swap the image in and mark it protected."""
    state = load_state(storage_path, upload_id)
    area = _area(storage_path, upload_id)
    try:
        if state["image_id"] != image.id:
            raise UploadError("upload belongs to another image", 409)
        if image.protected:
            raise UploadError(f"image {image.name} became protected during the upload", 409)
        if state.get("schema") is None:
            raise UploadError("no schema was uploaded", 422)
        schema = json.loads((area.tree / SCHEMA).read_text())
        if schema_only:
            image.schema_json = json.dumps(schema)
            record_history("image", image.id, "upload",
                           {"upload_id": upload_id, "schema_only": True}, state["username"])
            db.session.commit()
            abort_upload(storage_path, upload_id)
            return {"upload_id": upload_id, "schema_only": True, "files": []}
        manifest = {
            "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "image": image.name,
            "upload_id": upload_id, "image_type": schema.get("image_type", image.image_type),
            "created_at": utcnow().isoformat(timespec="seconds") + "Z",
            "files": _manifest_entries(state, declared),
        }
        record = {"image_id": image.id, "username": state["username"]}
        with _refusals():
            manifest = commit_copy(storage_path, image.name, area, manifest, kind="upload",
                                   record=record, finish=finish_upload_row, status=422,
                                   extras=[], keep=(SCHEMA,), enrich=True)
    except BaseException as exc:
        db.session.rollback()
        fail_upload(storage_path, upload_id, getattr(exc, "message", "") or str(exc)
                    or type(exc).__name__)
        raise
    _after_upload(image)
    return manifest


def finish_upload_row(name: str, record: dict) -> None:
    """Record a swapped-in upload on its image row (also run by startup recovery)."""
    image = db.session.get(Image, record["image_id"])
    folder = image_dir(_storage_of(), name)
    manifest = read_manifest(folder)
    if image is None or manifest is None or image.last_upload_id == manifest["upload_id"]:
        return
    schema = json.loads((folder / SCHEMA).read_text())
    image.protected = True
    image.origin = ""  # uploaded here: no peer may change it any more
    image.damaged = ""
    image.last_upload_id = manifest["upload_id"]
    image.last_upload_at = utcnow()
    image.schema_json = json.dumps(schema)
    image.size_on_server_bytes = folder_size(folder)
    image.size_on_client_bytes = client_size(schema)
    record_history("image", image.id, "upload",
                   {"upload_id": manifest["upload_id"], "files": len(manifest["files"]),
                    "size_bytes": image.size_on_server_bytes}, record["username"])
    db.session.commit()


def _storage_of() -> str:
    from flask import current_app

    return current_app.config["STORAGE_PATH"]


def _after_upload(image: Image) -> None:
    """Queue schema processing and replication of a new upload."""
    from app.imaging.processing import queue_schema_processing
    from app.replication import queue_replication

    for follow_up in (queue_schema_processing, queue_replication):
        try:
            follow_up(image)
        except Exception:  # the upload is done; a queue hiccup must not undo it
            log.exception("could not queue %s of %s", follow_up.__name__, image.name)
