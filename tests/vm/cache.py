"""The test cache folder and a lock so two test processes never build the same thing at once."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
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
