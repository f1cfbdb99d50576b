"""Finishing an incoming copy: verify, write the manifest last, swap; deletes and renames."""

from __future__ import annotations

import shutil
from pathlib import Path

from app import storage
from app.receive.commit import commit_copy
from app.receive.journal import swap_lock
from app.receive.stream import ReceiveError
from app.replication.incoming import ReplicationRefused, image_lock, incoming_area


def commit(storage_path: str | Path, name: str, manifest: dict, extra_files: list[dict],
           finish=None, record: dict | None = None) -> int:
    """Assemble the incoming copy, verify every file, write the manifest last, swap it in.

    Files unchanged since the previous complete copy are hard-linked from it. Returns the
    number of files in the new copy; raises ReplicationRefused (nothing replaced) otherwise.
    `finish(name, record)` records the new copy (also run by startup recovery).
    """
    current = storage.image_dir(storage_path, name)
    with image_lock(storage_path, name):
        area = incoming_area(storage_path, name)
        try:
            written = commit_copy(storage_path, name, area, manifest, kind="replication",
                                  record=record or {}, finish=finish, extras=extra_files,
                                  current=current)
        except ReceiveError as exc:
            raise ReplicationRefused(exc.status, exc.message, **exc.extra) from None
    return len(written["files"]) + len(extra_files)


def delete(storage_path: str | Path, name: str) -> bool:
    """Remove an image's folder and incoming copy; tell whether there was a folder."""
    with image_lock(storage_path, name) as area, swap_lock(storage_path, name):
        existed = storage.image_dir(storage_path, name).exists()
        storage.delete_image(storage_path, name)
        shutil.rmtree(area, ignore_errors=True)
    return existed


def rename(storage_path: str | Path, old: str, new: str) -> bool:
    """Rename an image's folder; drop the old incoming copy. Tell whether it existed."""
    if not storage.valid_name(new):
        raise ReplicationRefused(400, f"invalid image name: {new!r}")
    with image_lock(storage_path, old) as area, swap_lock(storage_path, old):
        existed = storage.image_dir(storage_path, old).exists()
        try:
            storage.rename_image(storage_path, old, new)
        except storage.StorageError as exc:
            raise ReplicationRefused(409, str(exc)) from None
        shutil.rmtree(area, ignore_errors=True)
    return existed


def finish_replicated(name: str, record: dict) -> None:
    """Record a swapped-in replicated copy on its image row (also run by recovery)."""
    from flask import current_app

    from app.replication import registry

    storage_path = current_app.config["STORAGE_PATH"]
    manifest = storage.read_manifest(storage.image_dir(storage_path, name)) or {}
    registry.record_replicated_image(storage_path, name, manifest, record.get("sender", "?"))
