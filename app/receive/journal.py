"""Crash-safe swap of a verified copy into the image store, with startup recovery.

Before the first rename a journal entry (STORAGE_PATH/journal/<name>.json) names the staged
copy and what to do once it is in. Steps: move the current folder aside, move the new copy
in, remove the old folder, run the finisher (the database row), drop the journal entry.
`recover()` at startup rolls every interrupted swap forward from whatever step it reached
(the staged copy was verified before its journal entry was written), or back when the
staged copy is gone, so an image always serves its old or its new copy.

A swap holds an exclusive flock for its image; recovery skips an image whose lock is held
(a live process is swapping it), and a killed process's lock is released by the kernel.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app.storage import MANIFEST, image_dir, images_root, staging_root, write_json_atomic

log = logging.getLogger("castor.receive")

FAULT_ENV = "CASTOR_FAULT_FILE"
STEPS = ("journal-written", "old-moved-aside", "new-moved-in", "old-removed", "finished")
Finisher = Callable[[str, dict], None]


def checkpoint(step: str) -> None:
    """Fault injection for tests: die here (SIGKILL) once, when the file named by
    CASTOR_FAULT_FILE holds this step's name (the file is removed first)."""
    flag = os.environ.get(FAULT_ENV)
    if flag and os.path.isfile(flag):
        with open(flag) as handle:
            wanted = handle.read().strip()
        if wanted == step:
            os.unlink(flag)
            os.kill(os.getpid(), signal.SIGKILL)


def journal_dir(storage_path: str | Path) -> Path:
    """Return the folder of swap journal entries and swap locks."""
    return Path(storage_path) / "journal"


@contextmanager
def swap_lock(storage_path: str | Path, name: str, wait: bool = True) -> Iterator[bool]:
    """Hold the image's swap lock; yield False (not holding it) when busy and not waiting."""
    folder = journal_dir(storage_path)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _old(storage_path: str | Path, name: str) -> Path:
    return images_root(storage_path) / f".{name}.old"


def swap_in(storage_path: str | Path, name: str, staged: Path, kind: str, record: dict,
            finish: Finisher | None = None) -> None:
    """Swap a verified staged folder (manifest inside) in as image `name`, journaled.

    `kind` and `record` are kept in the journal so recovery can run the same finisher
    (`finish(name, record)`) when the process dies before it ran; `record["discard"]`, a
    folder relative to the store, is removed once the swap is done.
    """
    if not (staged / MANIFEST).is_file():
        raise ValueError(f"{staged} holds no manifest: not a complete copy")
    target, old = image_dir(storage_path, name), _old(storage_path, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    entry = journal_dir(storage_path) / f"{name}.json"
    with swap_lock(storage_path, name):
        if old.exists():
            shutil.rmtree(old)
        write_json_atomic(entry, {"name": name, "kind": kind, "record": record,
                                  "staged": os.path.relpath(staged, storage_path)})
        _fsync_dir(entry.parent)
        checkpoint("journal-written")
        _roll_forward(storage_path, name, staged, kind, record, finish)
        entry.unlink()


def _roll_forward(storage_path: str | Path, name: str, staged: Path, kind: str, record: dict,
                  finish: Finisher | None) -> None:
    """Carry a journaled swap on from whichever step it reached."""
    target, old = image_dir(storage_path, name), _old(storage_path, name)
    if (staged / MANIFEST).is_file():
        if target.exists():
            os.replace(target, old)
            _fsync_dir(target.parent)
        checkpoint("old-moved-aside")
        os.replace(staged, target)
        _fsync_dir(target.parent)
        checkpoint("new-moved-in")
    if old.exists():
        shutil.rmtree(old)
    checkpoint("old-removed")
    if finish is not None:
        finish(name, record)
    checkpoint("finished")
    if record.get("discard"):
        shutil.rmtree(Path(storage_path) / record["discard"], ignore_errors=True)


def recover(storage_path: str | Path, finishers: dict[str, Finisher]) -> list[str]:
    """Finish or roll back every interrupted swap; clean orphaned staging. Return what it did."""
    done = []
    folder = journal_dir(storage_path)
    for entry in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        name = entry.stem
        with swap_lock(storage_path, name, wait=False) as held:
            if not held:
                continue  # a live process is swapping this image
            try:
                data = json.loads(entry.read_text())
            except ValueError:
                data = None
            if not isinstance(data, dict) or data.get("name") != name:
                entry.unlink()  # torn before it was complete: no rename had started
                done.append(f"{name}: dropped an unfinished journal entry")
                continue
            staged = Path(storage_path) / data["staged"]
            target, old = image_dir(storage_path, name), _old(storage_path, name)
            if (staged / MANIFEST).is_file() or target.exists():
                _roll_forward(storage_path, name, staged, data["kind"], data["record"],
                              finishers.get(data["kind"]))
                done.append(f"{name}: interrupted swap finished")
            elif old.exists():
                os.replace(old, target)
                done.append(f"{name}: interrupted swap rolled back to the previous copy")
            entry.unlink()
    done.extend(clean_orphans(storage_path))
    for line in done:
        log.warning("recovery: %s", line)
    return done


def clean_orphans(storage_path: str | Path) -> list[str]:
    """Remove staging folders without a state file and stale `.X.old` folders."""
    done = []
    root = staging_root(storage_path)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.is_dir() and not (folder / "state.json").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            done.append(f"removed orphaned staging folder {folder.name}")
    images = images_root(storage_path)
    for old in sorted(images.glob(".*.old")) if images.is_dir() else []:
        name = old.name[1:-4]
        with swap_lock(storage_path, name, wait=False) as held:
            if held and image_dir(storage_path, name).exists():
                shutil.rmtree(old, ignore_errors=True)
                done.append(f"removed the old copy of {name} left by a finished swap")
    return done
