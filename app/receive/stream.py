"""Write a request body into a part file as it arrives, hashing it on the way.

Reading the socket, hashing and writing run side by side (hashlib and file writes release
the GIL), so a body costs one write of each byte and no spooled copy. Any failure gives the
appended bytes back, so the part file always ends where the last good body ended.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from app.receive.hashing import FileHasher

READ_BYTES = 1 << 20
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class ReceiveError(Exception):
    """A body or a commit was refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, **extra) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def ensure_space(folder: Path, needed: int, label: str) -> None:
    """Refuse with 507 before a byte is written when `needed` bytes cannot fit."""
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise ReceiveError(507, f"the server's disk is full: {label} needs {needed} bytes, "
                                f"{free} are free")


def append_body(part: Path, offset: int, read: Callable[[int], bytes], *,
                length: int | None, limit: int | None, hasher: FileHasher,
                durable: bool, label: str) -> str:
    """Append a body at `offset` of a part file; return the body's own SHA-256.

    `length` is the exact body size when declared (a shorter body is refused), `limit` the
    most bytes the file may still take (a longer body is refused). The hasher must stand at
    `offset`; on failure it is left unusable and the file is cut back to `offset`.
    """
    body = hashlib.sha256()
    written = [0]
    part.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT, 0o640)
    try:
        os.ftruncate(fd, offset)
        os.lseek(fd, offset, os.SEEK_SET)
        _pipeline(fd, read, length, limit, (hasher.update, body.update), written, label)
        if durable:
            os.fdatasync(fd)
    except OSError as exc:
        _cut(fd, offset)
        if exc.errno in DISK_FULL:
            raise ReceiveError(507, f"the server's disk is full: {label} stopped after "
                                    f"{written[0]} bytes") from None
        raise ReceiveError(400, f"{label}: the body broke after {written[0]} bytes: "
                                f"{exc}") from None
    except BaseException:
        _cut(fd, offset)
        raise
    finally:
        os.close(fd)
    return body.hexdigest()


def _cut(fd: int, offset: int) -> None:
    try:
        os.ftruncate(fd, offset)
    except OSError:
        pass


def _pipeline(fd: int, read: Callable[[int], bytes], length: int | None, limit: int | None,
              hashers: tuple[Callable, ...], written: list[int], label: str) -> None:
    """Read the body in this thread while two others hash and write what was read."""
    hash_queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
    write_queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
    errors: list[BaseException] = []

    def hash_all(data: bytes) -> None:
        for update in hashers:
            update(data)

    def write_all(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        written[0] += len(data)

    def consume(q: queue.Queue, work: Callable[[bytes], None]) -> None:
        while (data := q.get()) is not None:
            if not errors:
                try:
                    work(data)
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    errors.append(exc)

    workers = [threading.Thread(target=consume, args=(hash_queue, hash_all), daemon=True),
               threading.Thread(target=consume, args=(write_queue, write_all), daemon=True)]
    for worker in workers:
        worker.start()
    got = 0
    try:
        while not errors:
            want = READ_BYTES if length is None else min(READ_BYTES, length - got)
            if want <= 0:
                break
            try:
                data = read(want)
            except Exception as exc:  # the server's own "client went away" errors
                raise ConnectionResetError(f"the client disconnected: {exc}") from None
            if not data:
                break
            got += len(data)
            if limit is not None and got > limit:
                raise ReceiveError(400, f"{label}: the body is longer than declared "
                                        f"({limit} bytes expected)")
            hash_queue.put(data)
            write_queue.put(data)
    finally:
        hash_queue.put(None)
        write_queue.put(None)
        for worker in workers:
            worker.join()
    if errors:
        raise errors[0]
    if length is not None and got < length:
        raise ReceiveError(400, f"{label}: the body ended after {got} of {length} bytes")
