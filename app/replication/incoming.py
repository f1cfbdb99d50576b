"""The receiving side's store: an incoming copy per image, verified files, atomic commit.

STORAGE_PATH/incoming/<name>/ holds `parts/` (files being received), `tree/` (files received
and verified) and `state.json` (what was declared and received). The image folder is only
replaced on commit, after every file checked out, with manifest.json written last.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from app import storage
from app.errors import Refused
from app.replication.plan import SHA256_RE, entry_problems

BLOCK = 1 << 20

# Running SHA-256 of each file being received, so finishing a file needs no second read.
# Per process and lost on restart; then the finished file is simply hashed from disk.
_RUNNING: dict[str, tuple[int, hashlib._Hash]] = {}


class ReplicationRefused(Refused):
    """The receiving side refuses a request; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str, **extra) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def incoming_dir(storage_path: str | Path, name: str) -> Path:
    """Return the incoming area of an image, refusing invalid names."""
    if not storage.valid_name(name):
        raise ReplicationRefused(400, f"invalid image name: {name!r}")
    return Path(storage_path) / "incoming" / name


@contextmanager
def image_lock(storage_path: str | Path, name: str) -> Iterator[Path]:
    """Serialise every change to one image's incoming area (threads and processes)."""
    area = incoming_dir(storage_path, name)
    area.mkdir(parents=True, exist_ok=True)
    with open(area.parent / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield area
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_state(area: Path) -> dict:
    """Read what an incoming area declared and received (empty when new)."""
    path = area / "state.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    state.setdefault("received", {})
    state.setdefault("partials", {})
    return state


def save_state(area: Path, state: dict) -> None:
    storage.write_json_atomic(area / "state.json", state)


def safe_path(base: Path, relative: str) -> Path:
    """Join a path under base or refuse the request with 400."""
    try:
        return storage.safe_join(base, relative)
    except storage.StorageError as exc:
        raise ReplicationRefused(400, str(exc)) from None


def hashed_files(folder: Path) -> list[dict]:
    """List every file of a folder but manifest.json with its real size and SHA-256."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative != storage.MANIFEST and not relative.endswith(".tmp"):
            found.append({"path": relative, "size_bytes": path.stat().st_size,
                          "sha256": storage.sha256_file(path)})
    return found


def report(storage_path: str | Path, name: str) -> dict:
    """Describe what this server holds of an image: manifest, real files, incoming copy."""
    folder = storage.image_dir(storage_path, name)
    try:
        manifest = storage.read_manifest(folder)
    except ValueError:
        manifest = None  # an unreadable manifest is as good as none: resend everything
    with image_lock(storage_path, name) as area:
        state = load_state(area)
        incoming = []
        for path, info in state["received"].items():
            file = area / "tree" / path
            if file.is_file() and file.stat().st_mtime_ns == info["mtime_ns"]:
                incoming.append({"path": path, "size_bytes": info["size_bytes"],
                                 "sha256": info["sha256"], "complete": True})
        for path, info in state["partials"].items():
            part = area / "parts" / path
            if part.is_file():
                incoming.append({"path": path, "size_bytes": info["size_bytes"],
                                 "sha256": info["sha256"], "complete": False,
                                 "received_bytes": part.stat().st_size})
        if not any(area.iterdir()):
            area.rmdir()  # nothing incoming: leave no empty folder behind a look
    return {"image": name, "manifest": manifest, "files": hashed_files(folder),
            "incoming": incoming}


def receive_chunk(storage_path: str | Path, name: str, relative: str, offset: int,
                  size: int, sha256: str, body: BinaryIO, length: int,
                  body_sha256: str) -> dict:
    """Write one chunk of a file into the incoming copy; verify the file when complete."""
    problems = entry_problems({"path": relative, "size_bytes": size, "sha256": sha256})
    if problems:
        raise ReplicationRefused(400, "; ".join(problems))
    if offset < 0 or length < 0 or offset + length > size:
        raise ReplicationRefused(
            400, f"{relative}: bytes {offset}..{offset + length} go past the declared size {size}"
        )
    with image_lock(storage_path, name) as area:
        part = safe_path(area / "parts", relative)
        final = safe_path(area / "tree", relative)
        state = load_state(area)
        declared = {"size_bytes": size, "sha256": sha256}
        if offset == 0:
            part.unlink(missing_ok=True)
            free = shutil.disk_usage(area).free
            if size > free:
                raise ReplicationRefused(507, f"the target's disk is full: {relative} needs "
                                              f"{size} bytes, {free} are free")
            state["received"].pop(relative, None)
            state["partials"][relative] = declared
            save_state(area, state)
        else:
            have = part.stat().st_size if part.is_file() else 0
            if state["partials"].get(relative) != declared or have != offset:
                raise ReplicationRefused(409, f"{relative}: cannot continue at byte {offset}",
                                         received_bytes=have)
        part.parent.mkdir(parents=True, exist_ok=True)
        key = str(part)
        position, running = _RUNNING.pop(key, (-1, None))
        if offset == 0:
            running = hashlib.sha256()
        elif position != offset:
            running = None
        _write_chunk(part, offset, body, length, body_sha256, relative,
                     durable=offset + length == size, running=running)
        if offset + length < size:
            if running is not None:
                _RUNNING[key] = (offset + length, running)
            return {"path": relative, "received_bytes": offset + length, "complete": False}
        actual = running.hexdigest() if running is not None else storage.sha256_file(part)
        if actual != sha256:
            part.unlink()
            state["partials"].pop(relative, None)
            save_state(area, state)
            raise ReplicationRefused(
                422, f"{relative}: SHA-256 mismatch on receipt (got {actual}); file discarded"
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)
        state["partials"].pop(relative, None)
        state["received"][relative] = {**declared, "mtime_ns": final.stat().st_mtime_ns}
        save_state(area, state)
        return {"path": relative, "received_bytes": size, "complete": True}


def _write_chunk(part: Path, offset: int, body: BinaryIO, length: int, body_sha256: str,
                 relative: str, durable: bool, running: hashlib._Hash | None) -> None:
    """Append a request body to a part file; undo the append on any failure.

    Only the last chunk is fsynced: a crash may lose earlier chunks, but the whole file is
    hashed before it counts, so a lost or torn chunk is re-sent, never trusted.
    """
    digest = hashlib.sha256()
    written = 0
    try:
        with open(part, "ab") as handle:
            while written < length:
                block = body.read(min(BLOCK, length - written))
                if not block:
                    break
                handle.write(block)
                digest.update(block)
                if running is not None:
                    running.update(block)
                written += len(block)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if written != length:
            raise ReplicationRefused(400, f"{relative}: body ended after {written} of "
                                          f"{length} bytes")
        if digest.hexdigest() != body_sha256:
            raise ReplicationRefused(400, f"{relative}: the body does not match its signed hash")
    except OSError as exc:
        _truncate(part, offset)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ReplicationRefused(507, "the target's disk is full") from None
        raise
    except ReplicationRefused:
        _truncate(part, offset)
        raise


def _truncate(part: Path, offset: int) -> None:
    if offset == 0:
        part.unlink(missing_ok=True)
    elif part.exists():
        with open(part, "r+b") as handle:
            handle.truncate(offset)


def is_sha256(value: str) -> bool:
    """Tell whether a string is a lower-case hex SHA-256."""
    return bool(SHA256_RE.match(value or ""))
