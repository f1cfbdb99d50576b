"""Where a deploy's bytes come from: the server over HTTP (unicast) or a multicast session.

The deploy loop (`client.deploy.deploy_plans`) is the same for both; it asks its source for
the bytes of each manifest entry. `HttpSource` downloads them; `client.multicast` has a
source that receives partitions from udp-receiver and completes them over HTTP. Every source
also gives the head of a file (`head`) for the preflight, over HTTP for both: a multicast
stream cannot be read before its session sends it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator

from client.api import Api, ChunkMismatch, damaged_chunk

# What the preflight may read of each stored partition image: a partclone header sits in the
# first compressed block (zstd, gzip: a few KiB), an lz4 block can reach 4 MiB.
HEAD_RANGES = ((0, 256 << 10), (256 << 10, 8 << 20))
HEAD_LIMIT_BYTES = HEAD_RANGES[-1][1]


class ChunkChecker:
    """Checks a file's bytes, in order, against the manifest's per-chunk SHA-256 digests."""

    def __init__(self, entry: dict, offset: int = 0) -> None:
        self.path = entry["path"]
        self.digests = entry.get("chunks") or []
        self.chunk_bytes = int(entry.get("chunk_bytes") or 0)
        self.size = int(entry["size_bytes"])
        if self.enabled and offset % self.chunk_bytes:
            raise ValueError(f"offset {offset} is not on a chunk boundary")
        self.index = offset // self.chunk_bytes if self.enabled else 0
        self.verified = offset  # bytes from the start of the file known good
        self.buffer = bytearray()

    @property
    def enabled(self) -> bool:
        """Tell whether the manifest carries per-chunk digests for this file."""
        return bool(self.digests) and self.chunk_bytes > 0

    def _want(self) -> int:
        return min(self.chunk_bytes, self.size - self.index * self.chunk_bytes)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield every chunk completed by `data` once its digest matched (ChunkMismatch if not)."""
        self.buffer += data
        while self.index < len(self.digests) and 0 < self._want() <= len(self.buffer):
            take = self._want()
            chunk = bytes(self.buffer[:take])
            if hashlib.sha256(chunk).hexdigest() != self.digests[self.index]:
                raise ChunkMismatch(f"{self.path}: chunk {self.index} (from byte "
                                    f"{self.verified}) does not match its SHA-256")
            del self.buffer[:take]
            self.index += 1
            self.verified += take
            yield chunk


def http_head(api: Api, path: str, size: int) -> Iterator[bytes]:
    """Yield the first bytes of a stored file over HTTP, by bounded Range requests.

    The first HEAD_RANGES[0] bytes, and the rest of the second range only if the caller
    reads on (an lz4 block can hold the header deep inside): the server never sends more
    than 8 MiB, however the reader stops. Nothing is chunk-verified: a partclone header has
    its own CRC, and these bytes are only looked at, never written.
    """
    for start, stop in HEAD_RANGES:
        stop = min(stop, size)
        if start >= stop:
            return
        yield from api.download(path, offset=start, stop=stop)


def checked(stream: Iterable[bytes], checker: ChunkChecker) -> Iterator[bytes]:
    """Yield a stream's bytes chunk by chunk, each only after it verified."""
    if not checker.enabled:
        yield from stream
        return
    for data in stream:
        yield from checker.feed(data)
    if checker.buffer or checker.verified != checker.size:
        raise ChunkMismatch(f"{checker.path}: the data does not fill the manifest's chunks")


class HttpSource:
    """Image files downloaded from the server (a broken connection resumes with Range)."""

    # A SHA-256 mismatch of a downloaded file means the stored file is damaged: no retry.
    retries_over_http = False

    def __init__(self, api: Api, image: str) -> None:
        self.api = api
        self.image = image

    def http(self, entry: dict, offset: int = 0) -> Iterator[bytes]:
        """Yield an image file's bytes from `offset` on, over HTTP, each chunk verified.

        `offset` must be on a chunk boundary when the manifest has chunk digests.
        """
        path = f"/images/{self.image}/files/{entry['path']}"
        if offset == 0:
            yield from self.api.download_verified(path, entry)
            return
        stream = self.api.download(path, offset=offset, size=entry.get("size_bytes"))
        yield from checked(stream, ChunkChecker(entry, offset))

    def head(self, entry: dict) -> Iterator[bytes]:
        """Yield the start of an image file for the preflight: its first chunk, verified.

        A unicast deploy downloads every byte of the file over HTTP anyway, so checking the
        first chunk (at most 16 MiB, one bounded Range request) costs one chunk more and
        finds damage there before the table is written. Files without chunk digests give a
        bounded head (`http_head`).
        """
        path = f"/images/{self.image}/files/{entry['path']}"
        size, chunk = int(entry.get("size_bytes") or 0), int(entry.get("chunk_bytes") or 0)
        if not entry.get("chunks") or chunk <= 0:
            yield from http_head(self.api, path, size)
            return
        data = b"".join(self.api.download(path, stop=min(chunk, size)))
        if hashlib.sha256(data).hexdigest() != entry["chunks"][0]:
            raise damaged_chunk(path, 0, chunk)
        # In slices, so the reader decompresses no more than the header needs.
        for start in range(0, len(data), HEAD_RANGES[0][1]):
            yield data[start:start + HEAD_RANGES[0][1]]

    def file_bytes(self, entry: dict) -> bytes:
        """Return a small image file (table dump, head sectors) completely."""
        return b"".join(self.http(entry))

    def partition(self, entry: dict) -> Iterable[bytes]:
        """Return the compressed stream of one partition's image file."""
        return self.http(entry)

    def restored(self, entry: dict, again_over_http: bool = False) -> None:
        """Record that a partition was restored and verified (nothing to do over HTTP)."""

    def close(self) -> None:
        """Finish with the source once every disk is done (nothing to do over HTTP)."""


class FunctionSource(HttpSource):
    """Image files from a function `entry -> bytes iterable` (a local folder, a test)."""

    def __init__(self, fetch: Callable[[dict], Iterable[bytes]]) -> None:
        self.fetch = fetch

    def head(self, entry: dict) -> Iterator[bytes]:
        """Yield the file's bytes from its start (the reader stops after the header)."""
        return self.http(entry)

    def http(self, entry: dict, offset: int = 0) -> Iterator[bytes]:
        """Yield the file's bytes from `offset` on."""
        skip = offset
        for data in self.fetch(entry):
            if skip >= len(data):
                skip -= len(data)
                continue
            yield data[skip:]
            skip = 0


def as_source(source: HttpSource | Callable[[dict], Iterable[bytes]]) -> HttpSource:
    """Return a byte source, wrapping a plain function that yields a file's bytes."""
    return source if isinstance(source, HttpSource) else FunctionSource(source)
