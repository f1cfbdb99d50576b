"""Finish an incoming copy: every file verified, the manifest written last, a journaled swap."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from app.receive.area import Area
from app.receive.hashing import CHUNK_BYTES, hash_file
from app.receive.journal import Finisher, swap_in
from app.receive.manifest import entry_problems, manifest_problems
from app.receive.stream import ReceiveError
from app.storage import MANIFEST, write_json_atomic


def settle(area: Area, entries: list[dict], current: Path | None) -> tuple[list[str], list]:
    """Make sure every entry's file sits verified in the tree; return problems and entries.

    A file counts when it was verified on receipt and is untouched since, or (with
    `current`, the image's present folder) when the present copy of it checks out, then it
    is hard-linked. Returned entries carry the file's chunk digests.
    """
    state = area.load_state()
    received = area.received(state)
    problems, settled = [], []
    for entry in entries:
        path, size, sha = entry["path"], entry["size_bytes"], entry["sha256"]
        info = received.get(path)
        target = area.tree / path
        if info is None:
            if target.is_file():
                target.unlink()  # changed since it was verified: never trusted
            info, problem = _from_current(current, path, size, sha, target)
            if problem:
                problems.append(problem)
                continue
        if info["size_bytes"] != size:
            problems.append(f"{path}: received {info['size_bytes']} bytes, manifest says {size}")
            continue
        if info["sha256"] != sha:
            problems.append(f"{path}: received SHA-256 differs from the manifest's")
            continue
        if entry.get("chunk_bytes") == info["chunk_bytes"] and "chunks" in entry and \
                entry["chunks"] != info["chunks"]:
            problems.append(f"{path}: the manifest's chunk digests do not match the file")
            continue
        if "chunks" in entry and entry.get("chunk_bytes") != info["chunk_bytes"]:
            problems.append(f"{path}: chunks of {entry.get('chunk_bytes')} bytes are not "
                            f"supported here ({info['chunk_bytes']} are)")
            continue
        settled.append({**entry, "chunk_bytes": info["chunk_bytes"], "chunks": info["chunks"]})
    return problems, settled


def _from_current(current: Path | None, path: str, size: int, sha: str,
                  target: Path) -> tuple[dict | None, str | None]:
    """Take an unchanged file from the present copy of the image, checked by SHA-256."""
    previous = current / path if current is not None and current.is_dir() else None
    if previous is None or not previous.is_file():
        return None, f"{path}: {'missing' if current is not None else 'never received'}"
    if previous.stat().st_size != size:
        return None, f"{path}: {previous.stat().st_size} bytes here, manifest says {size}"
    hasher = hash_file(previous, CHUNK_BYTES)
    whole, chunks = hasher.finish()
    if whole != sha:
        return None, f"{path}: SHA-256 mismatch"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(previous, target)
    except OSError:
        shutil.copy2(previous, target)
    return {"size_bytes": size, "sha256": whole, "chunk_bytes": CHUNK_BYTES,
            "chunks": chunks}, None


def commit_copy(storage_path: str | Path, name: str, area: Area, manifest: dict, *,
                kind: str, record: dict, finish: Finisher | None = None,
                extras: list[dict] | None = None, current: Path | None = None,
                keep: tuple[str, ...] = (), enrich: bool = False, status: int = 409) -> dict:
    """Verify the copy against the manifest, write the manifest last and swap it in.

    `extras` are files of the folder outside the manifest (schema.json) that must also be
    there; `keep` names files written into the tree by the caller (the upload's schema).
    `enrich` writes each file's chunk digests into the manifest. Raises ReceiveError (with
    `problems`) and replaces nothing when a file is missing or differs. Returns the
    manifest as written.
    """
    problems = manifest_problems(manifest)
    extras = extras if isinstance(extras, list) else None
    if extras is None:
        problems.append("extra_files is not a list")
        extras = []
    for entry in extras:
        problems.extend(entry_problems(entry, allow_top=area.allow_top))
    if problems:
        raise ReceiveError(400, "malformed manifest: " + "; ".join(problems[:10]))
    problems, files = settle(area, manifest["files"], current)
    extra_problems, _ = settle(area, extras, current)
    problems += extra_problems
    if problems:
        raise ReceiveError(status, "incomplete copy, previous copy kept: "
                           + "; ".join(problems[:10]), problems=problems)
    # The sender's manifest is kept as it came (its chunk digests, when it has them, were
    # checked above): a peer compares it byte for byte to decide a copy is up to date.
    written = {**manifest, "files": files} if enrich else manifest
    area.prune({entry["path"] for entry in files + extras} | set(keep))
    write_json_atomic(area.tree / MANIFEST, written)
    discard = os.path.relpath(area.root, storage_path)
    swap_in(storage_path, name, area.tree, kind, {**record, "discard": discard}, finish)
    area.forget_running()
    return written
