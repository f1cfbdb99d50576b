"""Finishing an incoming copy: verify, write the manifest last, swap; deletes and renames."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from app import storage
from app.replication.incoming import (
    ReplicationRefused,
    image_lock,
    load_state,
    safe_path,
)
from app.replication.plan import entry_problems, manifest_problems


def commit(storage_path: str | Path, name: str, manifest: dict,
           extra_files: list[dict]) -> int:
    """Assemble the incoming copy, verify every file, write the manifest last, swap it in.

    Files unchanged since the previous complete copy are hard-linked from it. Returns the
    number of files in the new copy; raises ReplicationRefused (nothing replaced) otherwise.
    """
    problems = manifest_problems(manifest)
    if not isinstance(extra_files, list):
        problems.append("extra_files is not a list")
        extra_files = []
    for entry in extra_files:
        problems.extend(entry_problems(entry))
    if problems:
        raise ReplicationRefused(400, "malformed manifest: " + "; ".join(problems[:10]))
    entries = manifest["files"] + extra_files
    paths = [entry["path"] for entry in entries]
    if len(set(paths)) != len(paths):
        raise ReplicationRefused(400, "malformed manifest: a path is listed twice")
    current = storage.image_dir(storage_path, name)
    with image_lock(storage_path, name) as area:
        tree = area / "tree"
        tree.mkdir(exist_ok=True)
        state = load_state(area)
        problems = []
        for entry in entries:
            problem = _settle(entry, tree, current, state["received"])
            if problem:
                problems.append(problem)
        if problems:
            raise ReplicationRefused(409, "incomplete copy, previous copy kept: "
                                     + "; ".join(problems[:10]), problems=problems)
        keep = set(paths)
        for path in sorted(tree.rglob("*"), reverse=True):
            relative = path.relative_to(tree).as_posix()
            if path.is_file() and relative not in keep:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        # The manifest goes in last: a copy without it never counts as complete.
        storage.write_json_atomic(tree / storage.MANIFEST, manifest)
        storage.replace_image(storage_path, name, tree)
        shutil.rmtree(area / "parts", ignore_errors=True)
        (area / "state.json").unlink(missing_ok=True)
    shutil.rmtree(area, ignore_errors=True)
    return len(entries)


def _settle(entry: dict, tree: Path, current: Path, received: dict) -> str | None:
    """Make sure one file sits verified in the tree; return a problem or None."""
    path, size, sha = entry["path"], entry["size_bytes"], entry["sha256"]
    target = safe_path(tree, path)
    info = received.get(path)
    if target.is_file() and info and info["mtime_ns"] == target.stat().st_mtime_ns:
        if info["size_bytes"] != size:
            return f"{path}: received {info['size_bytes']} bytes, manifest says {size}"
        if info["sha256"] != sha:
            return f"{path}: received SHA-256 differs from the manifest's"
        return None  # verified on receipt and untouched since
    if target.is_file():
        target.unlink()
    previous = safe_path(current, path) if current.is_dir() else None
    if previous is None or not previous.is_file():
        return f"{path}: missing"
    if previous.stat().st_size != size:
        return f"{path}: {previous.stat().st_size} bytes here, manifest says {size}"
    if storage.sha256_file(previous) != sha:
        return f"{path}: SHA-256 mismatch"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(previous, target)
    except OSError:
        shutil.copy2(previous, target)
    return None


def delete(storage_path: str | Path, name: str) -> bool:
    """Remove an image's folder and incoming copy; tell whether there was a folder."""
    with image_lock(storage_path, name) as area:
        existed = storage.image_dir(storage_path, name).exists()
        storage.delete_image(storage_path, name)
        shutil.rmtree(area, ignore_errors=True)
    return existed


def rename(storage_path: str | Path, old: str, new: str) -> bool:
    """Rename an image's folder; drop the old incoming copy. Tell whether it existed."""
    if not storage.valid_name(new):
        raise ReplicationRefused(400, f"invalid image name: {new!r}")
    with image_lock(storage_path, old) as area:
        existed = storage.image_dir(storage_path, old).exists()
        try:
            storage.rename_image(storage_path, old, new)
        except storage.StorageError as exc:
            raise ReplicationRefused(409, str(exc)) from None
        shutil.rmtree(area, ignore_errors=True)
    return existed
