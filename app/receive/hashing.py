"""SHA-256 of a whole file and of each fixed-size chunk of it, computed in one pass."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK_BYTES = 16 << 20  # manifest chunk size: what a client verifies before it writes
READ_BYTES = 1 << 20


class FileHasher:
    """Running SHA-256 of a file and of each `chunk_bytes` chunk, fed in any block sizes."""

    def __init__(self, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.chunk_bytes = chunk_bytes
        self.whole = hashlib.sha256()
        self.chunk = hashlib.sha256()
        self.in_chunk = 0
        self.size = 0
        self.chunks: list[str] = []

    def update(self, data: bytes | memoryview) -> None:
        """Add the next bytes of the file."""
        self.whole.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            take = min(len(view), self.chunk_bytes - self.in_chunk)
            self.chunk.update(view[:take])
            self.in_chunk += take
            view = view[take:]
            if self.in_chunk == self.chunk_bytes:
                self.chunks.append(self.chunk.hexdigest())
                self.chunk = hashlib.sha256()
                self.in_chunk = 0

    def finish(self) -> tuple[str, list[str]]:
        """Return the file's SHA-256 and its chunk digests (the last chunk may be short)."""
        chunks = list(self.chunks)
        if self.in_chunk:
            chunks.append(self.chunk.hexdigest())
        return self.whole.hexdigest(), chunks


def hash_file(path: Path, chunk_bytes: int = CHUNK_BYTES, limit: int | None = None,
              pace=None) -> FileHasher:
    """Hash a file (or its first `limit` bytes); `pace(n)` is called after each read."""
    hasher = FileHasher(chunk_bytes)
    left = limit
    with open(path, "rb") as handle:
        while left is None or left > 0:
            block = handle.read(READ_BYTES if left is None else min(READ_BYTES, left))
            if not block:
                break
            hasher.update(block)
            if left is not None:
                left -= len(block)
            if pace is not None:
                pace(len(block))
    return hasher
