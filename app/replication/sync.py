"""The replication algorithm: compare with the target, send what differs, commit last."""

from __future__ import annotations

import hashlib
import mmap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from app import storage
from app.replication.plan import TransferPlan, plan_transfer
from app.replication.remote import Peer, RemoteError

Progress = Callable[[int, int], None]


class SyncError(Exception):
    """Replication cannot go on; the message says why and `log` what was tried."""

    def __init__(self, message: str, log: list[str] | None = None) -> None:
        super().__init__(message)
        self.log = log or []


@dataclass
class SyncResult:
    """What one replication did."""

    bytes_sent: int = 0
    files_sent: int = 0
    up_to_date: bool = False
    attempts: int = 0
    log: list[str] = field(default_factory=list)


def source_files(folder: Path) -> tuple[dict, list[dict], list[dict]]:
    """Return our manifest, its files, and the folder's extra files (schema.json), hashed.

    Refuses a folder whose manifest is missing or whose files don't have the sizes it lists.
    """
    try:
        manifest = storage.read_manifest(folder)
    except ValueError:
        manifest = None
    if manifest is None:
        raise SyncError(f"{folder.name} has no complete copy here (no readable manifest.json)")
    files = manifest.get("files", [])
    listed = set()
    for entry in files:
        try:
            path = storage.safe_join(folder, entry["path"])
        except storage.StorageError as exc:
            raise SyncError(f"our manifest is unsafe: {exc}") from None
        if not path.is_file():
            raise SyncError(f"our copy is incomplete: {entry['path']} is missing")
        if path.stat().st_size != entry["size_bytes"]:
            raise SyncError(f"our manifest lies: {entry['path']} has {path.stat().st_size} "
                            f"bytes, the manifest says {entry['size_bytes']}")
        listed.add(entry["path"])
    extras = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if (path.is_file() and relative not in listed and relative != storage.MANIFEST
                and not relative.endswith(".tmp")):
            extras.append({"path": relative, "size_bytes": path.stat().st_size,
                           "sha256": storage.sha256_file(path)})
    return manifest, files, extras


class DamagedSource(SyncError):
    """Our own copy of a file does not match our manifest: nothing of it is sent."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def _checked(view: memoryview, expected: str | None, path: str, index: int) -> str:
    """Hash one chunk of our file (read-ahead thread); refuse it when it is damaged."""
    digest = hashlib.sha256(view).hexdigest()
    if expected is not None and digest != expected:
        raise DamagedSource(path, f"our copy of {path} is damaged: chunk {index} does not "
                                  "match the manifest; nothing of it was sent")
    return digest


def send_file(peer: Peer, name: str, folder: Path, item, entry: dict, piece: int,
              on_sent: Callable[[int], None], reader: ThreadPoolExecutor) -> None:
    """Send bytes item.offset.. of one file, each manifest chunk checked before it leaves.

    The file is mapped, not read: chunks are hashed from the page cache and sent from it,
    and the next chunk is checked while this one is on the wire.
    """
    path, size = folder / item.path, item.size_bytes
    chunks = entry.get("chunks") if entry.get("chunk_bytes") else None
    if chunks is None:
        # No digests per chunk (an older manifest, an extra file): check the whole file.
        if storage.sha256_file(path) != item.sha256:
            raise DamagedSource(item.path, f"our copy of {item.path} is damaged: its SHA-256 "
                                           "does not match the manifest; not sent")
    if size == 0:
        peer.put_chunk(name, item.path, 0, 0, item.sha256, b"", on_sent)
        return
    span = entry["chunk_bytes"] if chunks else piece
    count = -(-size // span)
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mapped)
    try:
        if len(view) != size:
            raise SyncError(f"{item.path} changed while it was being sent")

        def check(index: int):
            return reader.submit(_checked, view[index * span:min(size, (index + 1) * span)],
                                 chunks[index] if chunks else None, item.path, index)

        first = item.offset // span
        pending = check(first)
        for index in range(first, count):
            digest = pending.result()
            if index + 1 < count:
                pending = check(index + 1)
            low, high = max(item.offset, index * span), min(size, (index + 1) * span)
            for start in range(low, high, piece):
                stop = min(high, start + piece)
                whole = (start, stop) == (index * span, min(size, (index + 1) * span))
                body = view[start:stop]
                peer.put_chunk(name, item.path, start, size, item.sha256, body, on_sent,
                               digest if whole else hashlib.sha256(body).hexdigest())
                body.release()
    finally:
        pending = None
        view.release()
        try:
            mapped.close()
        except BufferError:
            pass  # a slice still referenced by a failed call; the collector closes it


def send_plan(peer: Peer, name: str, folder: Path, plan: TransferPlan, chunk_bytes: int,
              on_sent: Callable[[int], None], entries: dict[str, dict] | None = None) -> int:
    """Send every planned file in chunks; return the number of files completed."""
    done = 0
    with ThreadPoolExecutor(max_workers=1) as reader:
        for item in plan.send:
            send_file(peer, name, folder, item, (entries or {}).get(item.path, {}),
                      chunk_bytes, on_sent, reader)
            done += 1
    return done


def replicate(peer: Peer, name: str, folder: Path, *, chunk_bytes: int = 16 << 20,
              retries: int = 4, backoff: float = 2.0, max_backoff: float = 60.0,
              progress: Progress | None = None,
              sleep: Callable[[float], None] = time.sleep) -> SyncResult:
    """Bring the peer's copy of an image in line with ours, retrying with backoff."""
    result = SyncResult()
    manifest, files, extras = source_files(folder)
    wanted = files + extras
    while True:
        result.attempts += 1
        try:
            report = peer.report(name)
            plan = plan_transfer(manifest, wanted, report)
            if plan.up_to_date:
                result.up_to_date = True
                result.log.append("target is up to date; nothing sent")
                return result
            to_send = plan.bytes_to_send
            result.log.append(f"attempt {result.attempts}: {len(plan.send)} file(s), "
                              f"{to_send} byte(s) to send")
            sent_before = result.bytes_sent

            def on_sent(count: int, _base: int = sent_before, _total: int = to_send) -> None:
                result.bytes_sent += count
                if progress is not None:
                    progress(result.bytes_sent - _base, _total)

            if progress is not None:
                progress(0, to_send)
            result.files_sent += send_plan(peer, name, folder, plan, chunk_bytes, on_sent,
                                           {entry["path"]: entry for entry in files})
            peer.commit(name, manifest, extras)
            result.log.append("committed")
            return result
        except RemoteError as exc:
            result.log.append(f"attempt {result.attempts}: {exc}")
            if not exc.retryable or result.attempts > retries:
                raise SyncError(str(exc), result.log) from None
            sleep(min(max_backoff, backoff * 2 ** (result.attempts - 1)))
        finally:
            peer.close()

