"""The built imaging environment for tests, cached by the hash of its build inputs."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from app.bootenv import build, inputs

CACHE = Path(os.environ.get("CASTOR_TEST_CACHE", "/var/cache/castor-test")) / "bootenv"


def boot_files() -> Path:
    """Return a folder holding vmlinuz, initrd.img and castor-env.json of these inputs."""
    folder = CACHE / f"files-{inputs.inputs_hash()}"
    if (folder / build.VERSION_NAME).exists():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / build.VERSION_NAME).exists():
            partial = CACHE / f"partial-{inputs.inputs_hash()}"
            build.build(partial, cache=CACHE)
            partial.rename(folder)
            for old in CACHE.glob("files-*"):  # builds of older inputs are never used again
                if old != folder:
                    shutil.rmtree(old, ignore_errors=True)
    return folder
