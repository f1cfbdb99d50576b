"""The built imaging environment for tests, cached by the hash of its build inputs."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from app.bootenv import build, inputs

KEEP_BUILDS = 4  # about 95 MB each
CACHE = Path(os.environ.get("CASTOR_TEST_CACHE", "/var/cache/castor-test")) / "bootenv"


def boot_files() -> Path:
    """Return a folder holding vmlinuz, initrd.img and castor-env.json of these inputs."""
    folder = CACHE / f"files-{inputs.inputs_hash()}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / build.VERSION_NAME).exists():
            partial = CACHE / f"partial-{inputs.inputs_hash()}"
            shutil.rmtree(partial, ignore_errors=True)
            build.build(partial, cache=CACHE)
            partial.rename(folder)
        os.utime(folder)  # newest use first: the pruning below keeps builds in use
        _prune(folder)
    return folder


def _prune(keep: Path) -> None:
    """Remove all but the most recently used builds.

    Several checkouts (branches) may share this cache and run at once, each with its own
    inputs; a build another one is still booting from must survive, so recent ones stay.
    """
    builds = sorted(CACHE.glob("files-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[KEEP_BUILDS:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
