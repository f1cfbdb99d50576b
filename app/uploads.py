"""Server side of an image upload: staging sessions, streamed files, verified swap-in.

A session lives in STORAGE_PATH/staging/<upload_id>/ with a `.upload.json` state file. Files
are written as they stream in, hashed while written; `complete` checks every file against the
client's declaration, writes the manifest last and swaps the folder in atomically. Anything
that goes wrong removes the staging folder and leaves the previous image untouched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from app.errors import Refused
from app.extensions import db
from app.models.base import utcnow
from app.models.images import Image, record_history
from app.storage import (
    MANIFEST,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    SCHEMA,
    StorageError,
    folder_size,
    replace_image,
    safe_join,
    staging_root,
    write_json_atomic,
)

log = logging.getLogger("castor.uploads")

STATE = ".upload.json"
STALE_SECONDS = 6 * 3600
# waitress options an imaging server needs: its default refuses request bodies over 1 GiB
# (a partition image is bigger) and reads the socket 8 KiB at a time (slow for uploads).
# A file may arrive in segments (one request each); the running SHA-256 between them is kept
# here, and recomputed from the stored part when this process did not see the last segment.
_DIGESTS: dict[tuple[str, str], tuple[object, int]] = {}
_DIGEST_LOCK = threading.Lock()
SERVER_OPTIONS = {"max_request_body_size": 1 << 40, "recv_bytes": 1 << 18}
FILE_KINDS = ("partclone", "wim", "dd", "table", "gpt-backup", "head")


class UploadError(Refused):
    """An upload was refused or failed; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _folder(storage_path: str, upload_id: str) -> Path:
    if not upload_id.isalnum() or len(upload_id) > 64:
        raise UploadError("unknown upload", 404)
    return staging_root(storage_path) / upload_id


def load_state(storage_path: str, upload_id: str) -> dict:
    """Return a session's state, or raise a 404 UploadError."""
    path = _folder(storage_path, upload_id) / STATE
    if not path.is_file():
        raise UploadError("unknown or aborted upload", 404)
    return json.loads(path.read_text())


def _save_state(storage_path: str, state: dict) -> None:
    state["touched_at"] = time.time()
    write_json_atomic(_folder(storage_path, state["upload_id"]) / STATE, state)


def abort_upload(storage_path: str, upload_id: str) -> bool:
    """Remove a session's staging folder; return whether there was one."""
    with _DIGEST_LOCK:
        for key in [k for k in _DIGESTS if k[0] == upload_id]:
            del _DIGESTS[key]
    folder = _folder(storage_path, upload_id)
    if not folder.exists():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


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
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def start_upload(storage_path: str, image: Image, profile_id: int | None, username: str,
                 task_id: int | None = None) -> dict:
    """Open an upload session for an image; refuse protected or disabled images."""
    if image.protected:
        raise UploadError(f"image {image.name} is protected: unprotect it to upload over it",
                          409)
    cleanup_stale(storage_path)
    # One upload per image: a new session replaces an older one (its client is gone).
    root = staging_root(storage_path)
    if root.is_dir():
        for folder in root.iterdir():
            state = folder / STATE
            if state.exists() and json.loads(state.read_text()).get("image") == image.name:
                log.info("upload %s of %s replaced by a new one", folder.name, image.name)
                shutil.rmtree(folder, ignore_errors=True)
    upload_id = secrets.token_hex(16)
    folder = _folder(storage_path, upload_id)
    folder.mkdir(parents=True)
    state = {"upload_id": upload_id, "image": image.name, "image_id": image.id,
             "profile_id": profile_id, "username": username, "task_id": task_id,
             "started_at": time.time(), "schema": None, "files": {}}
    _save_state(storage_path, state)
    return state


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
    write_json_atomic(_folder(storage_path, upload_id) / SCHEMA, schema)
    state["schema"] = SCHEMA
    _save_state(storage_path, state)
    return state


def receive_file(storage_path: str, upload_id: str, relative: str,
                 read: Callable[[int], bytes], expected_size: int | None = None,
                 expected_sha256: str | None = None, offset: int | None = None,
                 final: bool = True) -> dict:
    """Stream a file (or one segment of it) into staging, hashing while writing.

    Segments carry their offset; the last one (`final`) is checked and renamed into place.
    A broken stream or a segment at the wrong offset aborts the whole upload.
    """
    state = load_state(storage_path, upload_id)
    folder = _folder(storage_path, upload_id)
    if relative in (SCHEMA, MANIFEST, STATE) or relative.startswith("."):
        raise UploadError(f"reserved path: {relative}", 400)
    try:
        target = safe_join(folder, relative)
    except StorageError as exc:
        raise UploadError(str(exc), 400) from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest, counter, mode = _resume_digest(storage_path, upload_id, relative, partial, offset)
    try:
        with open(partial, mode) as handle:
            _copy_hashed(read, handle, digest, counter)
            handle.flush()
            os.fdatasync(handle.fileno())
    except OSError as exc:
        size = counter[0]
        # Client gone or server disk full: this upload can no longer complete.
        abort_upload(storage_path, upload_id)
        status = 507 if getattr(exc, "errno", None) == 28 else 400
        raise UploadError(f"upload of {relative} broke after {size} bytes: {exc}",
                          status) from exc
    if not final:
        with _DIGEST_LOCK:
            _DIGESTS[(upload_id, relative)] = (digest, counter[0])
        return {"path": relative, "offset": counter[0]}
    with _DIGEST_LOCK:
        _DIGESTS.pop((upload_id, relative), None)
    sha = digest.hexdigest()
    size = counter[0]
    if expected_size is not None and size != expected_size:
        abort_upload(storage_path, upload_id)
        raise UploadError(f"{relative}: received {size} bytes, expected {expected_size}", 422)
    if expected_sha256 and sha != expected_sha256.lower():
        abort_upload(storage_path, upload_id)
        raise UploadError(f"{relative}: SHA-256 mismatch", 422)
    os.replace(partial, target)
    state["files"][relative] = {"size_bytes": size, "sha256": sha}
    _save_state(storage_path, state)
    return {"path": relative, "size_bytes": size, "sha256": sha}


def _resume_digest(storage_path: str, upload_id: str, relative: str, partial: Path,
                   offset: int | None) -> tuple[object, list[int], str]:
    """Return (digest, byte counter, file mode) to continue a file at offset."""
    if not offset:
        return hashlib.sha256(), [0], "wb"
    stored = partial.stat().st_size if partial.exists() else -1
    if stored != offset:
        abort_upload(storage_path, upload_id)
        raise UploadError(f"{relative}: segment at byte {offset}, but {max(stored, 0)} bytes "
                          "are stored", 409)
    with _DIGEST_LOCK:
        saved = _DIGESTS.pop((upload_id, relative), None)
    if saved is not None and saved[1] == offset:
        return saved[0], [offset], "ab"
    digest = hashlib.sha256()
    with open(partial, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest, [offset], "ab"


def _copy_hashed(read: Callable[[int], bytes], handle, digest, counter: list[int]) -> None:
    """Copy a stream to a file and hash it, reading, hashing and writing in parallel.

    hashlib and file writes release the GIL, so the three overlap on separate cores; on a
    small server this is what keeps the upload as fast as the client can send.
    """
    hash_queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
    write_queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
    errors: list[BaseException] = []

    def consume(q: queue.Queue, work: Callable[[bytes], object]) -> None:
        while (data := q.get()) is not None:
            if not errors:
                try:
                    work(data)
                except BaseException as exc:  # noqa: BLE001 - re-raised by the reader
                    errors.append(exc)

    threads = [threading.Thread(target=consume, args=(hash_queue, digest.update), daemon=True),
               threading.Thread(target=consume, args=(write_queue, handle.write), daemon=True)]
    for thread in threads:
        thread.start()
    try:
        while not errors:
            data = read(1 << 20)
            if not data:
                break
            counter[0] += len(data)
            hash_queue.put(data)
            write_queue.put(data)
    finally:
        hash_queue.put(None)
        write_queue.put(None)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


def _manifest_entries(state: dict, declared: list[dict]) -> list[dict]:
    """Check the client's file list against what arrived; return manifest entries."""
    received = dict(state["files"])
    entries = []
    for item in declared:
        path = item.get("path", "")
        got = received.pop(path, None)
        if got is None:
            raise UploadError(f"{path}: never received", 422)
        if "size_bytes" in item and int(item["size_bytes"]) != got["size_bytes"]:
            raise UploadError(f"{path}: {got['size_bytes']} bytes arrived, client sent "
                              f"{item['size_bytes']}", 422)
        if item.get("sha256") and item["sha256"].lower() != got["sha256"]:
            raise UploadError(f"{path}: SHA-256 differs from the client's", 422)
        if item.get("kind") not in FILE_KINDS:
            raise UploadError(f"{path}: unknown kind {item.get('kind')!r}", 422)
        entries.append({
            "path": path, "kind": item["kind"], "disk": int(item.get("disk", 0)),
            "partition": item.get("partition"), "lv": item.get("lv"),
            "filesystem": item.get("filesystem"),
            "compression": item.get("compression", "none"), "level": item.get("level"),
            "size_bytes": got["size_bytes"], "sha256": got["sha256"],
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
    folder = _folder(storage_path, upload_id)
    try:
        if state["image_id"] != image.id:
            raise UploadError("upload belongs to another image", 409)
        if image.protected:
            raise UploadError(f"image {image.name} became protected during the upload", 409)
        if state.get("schema") is None:
            raise UploadError("no schema was uploaded", 422)
        schema = json.loads((folder / SCHEMA).read_text())
        if schema_only:
            image.schema_json = json.dumps(schema)
            record_history("image", image.id, "upload",
                           {"upload_id": upload_id, "schema_only": True}, state["username"])
            db.session.commit()
            abort_upload(storage_path, upload_id)
            return {"upload_id": upload_id, "schema_only": True, "files": []}
        entries = _manifest_entries(state, declared)
        manifest = {
            "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "image": image.name,
            "upload_id": upload_id, "image_type": schema.get("image_type", image.image_type),
            "created_at": utcnow().isoformat(timespec="seconds") + "Z", "files": entries,
        }
        os.remove(folder / STATE)
        write_json_atomic(folder / MANIFEST, manifest)
        replace_image(storage_path, image.name, folder)
    except BaseException:
        abort_upload(storage_path, upload_id)
        raise
    from app.storage import image_dir

    image.protected = True
    image.last_upload_id = upload_id
    image.last_upload_at = utcnow()
    image.schema_json = json.dumps(schema)
    image.size_on_server_bytes = folder_size(image_dir(storage_path, image.name))
    image.size_on_client_bytes = client_size(schema)
    record_history("image", image.id, "upload",
                   {"upload_id": upload_id, "files": len(entries),
                    "size_bytes": image.size_on_server_bytes}, state["username"])
    db.session.commit()
    _after_upload(image)
    return manifest


def _after_upload(image: Image) -> None:
    """Queue schema processing and replication when those features are installed."""
    try:
        from app.imaging.processing import queue_schema_processing
    except ImportError:
        queue_schema_processing = None
    if queue_schema_processing is not None:
        try:
            queue_schema_processing(image)
        except Exception:  # the upload is done; a queue hiccup must not undo it
            log.exception("could not queue schema processing of %s", image.name)
    try:
        from app.replication import queue_replication
    except ImportError:
        return
    try:
        queue_replication(image)
    except Exception:
        log.exception("could not queue replication of %s", image.name)
