"""The receiving side's store: an incoming copy per image, verified files, atomic commit.

STORAGE_PATH/incoming/<name>/ is an incoming copy of the receive engine (app/receive):
`parts/` (files being received), `tree/` (files received and verified) and `state.json`.
The image folder is only replaced on commit, after every file checked out.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from app import storage
from app.receive.area import Area
from app.receive.manifest import entry_problems, is_sha256
from app.receive.stream import ReceiveError

__all__ = ["ReplicationRefused", "image_lock", "incoming_dir", "is_sha256", "receive_chunk",
           "report"]
EXTRA_TOP = (storage.SCHEMA,)  # files of the folder outside the manifest


class ReplicationRefused(ReceiveError):
    """The receiving side refuses a request; `status` is the HTTP status to answer."""


def incoming_dir(storage_path: str | Path, name: str) -> Path:
    """Return the incoming area of an image, refusing invalid names."""
    if not storage.valid_name(name):
        raise ReplicationRefused(400, f"invalid image name: {name!r}")
    return Path(storage_path) / "incoming" / name


def incoming_area(storage_path: str | Path, name: str) -> Area:
    """Return the engine's view of an image's incoming copy."""
    return Area(incoming_dir(storage_path, name), allow_top=EXTRA_TOP)


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
    with image_lock(storage_path, name) as root:
        area = incoming_area(storage_path, name)
        state = area.load_state()
        incoming = [{"path": path, "size_bytes": info["size_bytes"],
                     "sha256": info["sha256"], "complete": True}
                    for path, info in area.received(state).items()]
        for path, info in state["partials"].items():
            part = area.parts / path
            if part.is_file():
                incoming.append({"path": path, "size_bytes": info["size_bytes"],
                                 "sha256": info["sha256"], "complete": False,
                                 "received_bytes": part.stat().st_size})
        if not any(root.iterdir()):
            root.rmdir()  # nothing incoming: leave no empty folder behind a look
    return {"image": name, "manifest": manifest, "files": hashed_files(folder),
            "incoming": incoming}


def receive_chunk(storage_path: str | Path, name: str, relative: str, offset: int,
                  size: int, sha256: str, body: BinaryIO, length: int,
                  body_sha256: str) -> dict:
    """Write one chunk of a file into the incoming copy; verify the file when complete."""
    problems = entry_problems({"path": relative, "size_bytes": size, "sha256": sha256},
                              allow_top=EXTRA_TOP)
    if problems:
        raise ReplicationRefused(400, "; ".join(problems))
    with image_lock(storage_path, name):
        try:
            answer = incoming_area(storage_path, name).receive(
                relative, body.read, offset=offset, length=length, size=size,
                final=offset + length == size, sha256=sha256, body_sha256=body_sha256)
        except ReceiveError as exc:
            if exc.status == 507:
                exc.message = exc.message.replace("server's", "target's")
            raise ReplicationRefused(exc.status, exc.message, **exc.extra) from None
    return {"path": answer["path"], "received_bytes": answer["received_bytes"],
            "complete": answer["complete"]}
