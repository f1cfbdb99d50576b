"""Stored files of file-copy modules, under STORAGE_PATH/modules/<module_id>/.

Every user-given path goes through `app.storage.safe_join`. Zip archives are checked member
by member when uploaded, because the client extracts them into a deployed partition: a
member reaching outside the destination folder would write anywhere on that disk.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
import zipfile
from pathlib import Path
from typing import BinaryIO

from app.storage import StorageError, safe_join


class UploadError(ValueError):
    """An upload refused as a whole; nothing of it was kept."""


def modules_root(storage_path: str | Path) -> Path:
    """Return the folder holding the files of every file-copy module."""
    return Path(storage_path) / "modules"


def module_dir(storage_path: str | Path, module_id: int) -> Path:
    """Return the folder of one file-copy module's files."""
    return modules_root(storage_path) / str(int(module_id))


def list_files(storage_path: str | Path, module_id: int) -> list[dict]:
    """Return the module's files as {path, size_bytes}, sorted by path."""
    root = module_dir(storage_path, module_id)
    if not root.is_dir():
        return []
    return [{"path": p.relative_to(root).as_posix(), "size_bytes": p.stat().st_size}
            for p in sorted(root.rglob("*")) if p.is_file()]


def zip_problems(path: Path) -> list[str]:
    """Return why a zip archive is unsafe to extract (traversal, absolute paths, links)."""
    problems = []
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename
                mode = info.external_attr >> 16
                parts = name.replace("\\", "/").split("/")
                if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
                    problems.append(f"{name}: absolute path")
                elif ".." in parts:
                    problems.append(f"{name}: leaves the destination folder ('..')")
                elif stat.S_ISLNK(mode):
                    problems.append(f"{name}: symbolic link")
    except zipfile.BadZipFile as exc:
        problems.append(f"not a valid zip archive ({exc})")
    return problems


def save_uploads(storage_path: str | Path, module_id: int,
                 uploads: list[tuple[str, BinaryIO]]) -> list[str]:
    """Store uploaded files (relative names may hold folders); all or nothing.

    Returns the stored relative paths; raises UploadError and keeps nothing on any problem.
    """
    if not uploads:
        raise UploadError("choose at least one file or folder to upload")
    root = module_dir(storage_path, module_id)
    staging = modules_root(storage_path) / f".staging-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    stored: list[str] = []
    try:
        for name, stream in uploads:
            relative = (name or "").strip()
            try:
                target = safe_join(staging, relative)
                safe_join(root, relative)
            except StorageError as exc:
                raise UploadError(f"refused file name: {exc}") from exc
            if target.exists() or any(p.is_file() for p in target.parents):
                raise UploadError(f"{relative} is given twice, or as both a file and a folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as handle:
                shutil.copyfileobj(stream, handle)
            if relative.lower().endswith(".zip"):
                problems = zip_problems(target)
                if problems:
                    raise UploadError(f"{relative} is refused: " + "; ".join(problems[:5]))
            stored.append(target.relative_to(staging.resolve()).as_posix())
        destinations = [(relative, safe_join(root, relative)) for relative in stored]
        for relative, destination in destinations:  # checked before anything moves
            if destination.is_dir() or any(p.is_file() for p in destination.parents):
                raise UploadError(f"{relative} would replace a stored folder, or sit below a "
                                  "stored file of the same name")
        for relative, destination in destinations:
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(safe_join(staging, relative), destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return stored


def delete_file(storage_path: str | Path, module_id: int, relative: str) -> None:
    """Remove one stored file of a module."""
    root = module_dir(storage_path, module_id)
    try:
        target = safe_join(root, relative)
    except StorageError as exc:
        raise UploadError(str(exc)) from exc
    if not target.is_file():
        raise UploadError(f"{relative} is not a file of this module")
    target.unlink()


def remove_all(storage_path: str | Path, module_id: int) -> None:
    """Remove every stored file of a module."""
    shutil.rmtree(module_dir(storage_path, module_id), ignore_errors=True)
