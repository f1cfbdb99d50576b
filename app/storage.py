"""The image store on disk: folders, staging, manifests and atomic replacement.

Layout: STORAGE_PATH/images/<name>/ holds schema.json, manifest.json and hd<N>/ files.
Uploads write into STORAGE_PATH/staging/<upload_id>/ and replace the image folder only
when complete and verified (app/receive: the receive engine and its journaled swap).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from app.errors import Refused

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")  # \Z: "$" would accept a trailing newline
MANIFEST = "manifest.json"
SCHEMA = "schema.json"
MANIFEST_FORMAT = "castor-manifest"
MANIFEST_VERSION = 1


class StorageError(Refused):
    """A storage operation was refused or failed."""


def valid_name(name: str) -> bool:
    """Tell whether an image name is letters, digits, dash and underscore only."""
    return bool(NAME_RE.match(name or ""))


def images_root(storage_path: str | Path) -> Path:
    """Return the folder holding every image folder."""
    return Path(storage_path) / "images"


def staging_root(storage_path: str | Path) -> Path:
    """Return the folder holding uploads in progress."""
    return Path(storage_path) / "staging"


def image_dir(storage_path: str | Path, name: str) -> Path:
    """Return an image's folder, refusing names that could leave the store."""
    if not valid_name(name):
        raise StorageError(f"invalid image name: {name!r}")
    return images_root(storage_path) / name


def safe_join(base: Path, relative: str) -> Path:
    """Join a relative path under base, refusing absolute paths and '..' escapes."""
    if not relative or relative.startswith("/") or "\\" in relative or "\x00" in relative:
        raise StorageError(f"invalid path: {relative!r}")
    target = (base / relative).resolve()
    root = base.resolve()
    if target != root and root not in target.parents:
        raise StorageError(f"path leaves the image folder: {relative!r}")
    return target


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict | None:
    """Return the manifest of an image folder, or None when there is none."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text())


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON to a temporary file, fsync it and rename it into place."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def folder_size(folder: Path) -> int:
    """Return the total size in bytes of the files under a folder."""
    if not folder.exists():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def disk_space(storage_path: str | Path) -> tuple[int, int]:
    """Return the free and total bytes of the filesystem holding the image store (OSError)."""
    usage = shutil.disk_usage(storage_path)
    return usage.free, usage.total


def verify_folder(folder: Path, pace=None) -> list[str]:
    """Check every file of a manifest for size, SHA-256 and chunk digests; return problems.

    `pace(n)` is called after each block read (the scheduled check keeps to its rate).
    """
    manifest = read_manifest(folder)
    if manifest is None:
        return ["no manifest.json"]
    problems = [verify_folder_entry(folder, entry, pace) for entry in manifest.get("files", [])]
    return [problem for problem in problems if problem]


def verify_folder_entry(folder: Path, entry: dict, pace=None) -> str | None:
    """Check one manifest file of a folder; return what is wrong with it, or None."""
    from app.receive.hashing import CHUNK_BYTES, hash_file

    try:
        path = safe_join(folder, entry["path"])
    except StorageError as exc:
        return str(exc)
    if not path.is_file():
        return f"{entry['path']}: missing"
    if path.stat().st_size != entry["size_bytes"]:
        return f"{entry['path']}: {path.stat().st_size} bytes, manifest says {entry['size_bytes']}"
    whole, chunks = hash_file(path, entry.get("chunk_bytes") or CHUNK_BYTES, pace=pace).finish()
    bad = [i for i, (a, b) in enumerate(zip(chunks, entry.get("chunks") or chunks,
                                             strict=False)) if a != b]
    if whole != entry["sha256"]:
        where = f" (chunk {', '.join(map(str, bad[:5]))})" if bad else ""
        return f"{entry['path']}: SHA-256 mismatch{where}"
    if bad:
        return f"{entry['path']}: chunk digests do not match the file"
    return None


def rename_image(storage_path: str | Path, old_name: str, new_name: str) -> None:
    """Rename an image's folder when the image is renamed."""
    source = image_dir(storage_path, old_name)
    target = image_dir(storage_path, new_name)
    if target.exists():
        raise StorageError(f"a folder named {new_name} already exists in the store")
    if source.exists():
        os.replace(source, target)


def delete_image(storage_path: str | Path, name: str) -> None:
    """Remove an image's folder and everything in it."""
    folder = image_dir(storage_path, name)
    if folder.exists():
        shutil.rmtree(folder)
