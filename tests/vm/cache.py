"""The test cache folder and a lock so two test processes never build the same thing at once."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE = Path(os.environ.get("CASTOR_TEST_CACHE", "/var/cache/castor-test"))


@contextmanager
def build_lock(name: str) -> Iterator[None]:
    """Hold an exclusive file lock named after what is being built."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_image(image: Path, lock: str, build: Callable[[Path], None]) -> Path:
    """A cached image file, built (into a .partial file, renamed when done) when missing."""
    if image.exists():
        return image
    with build_lock(lock):
        if not image.exists():
            image.parent.mkdir(parents=True, exist_ok=True)
            partial = image.with_suffix(".partial.img")
            build(partial)
            partial.rename(image)
    return image
