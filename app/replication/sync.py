"""The replication algorithm: compare with the target, send what differs, commit last."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

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


def _read_chunk(handle: BinaryIO, count: int) -> tuple[bytes, str]:
    """Read the next chunk of a file and hash it (runs beside the upload of the previous)."""
    data = handle.read(count)
    return data, hashlib.sha256(data).hexdigest()


def send_plan(peer: Peer, name: str, folder: Path, plan: TransferPlan, chunk_bytes: int,
              on_sent: Callable[[int], None]) -> int:
    """Send every planned file in chunks; return the number of files completed.

    The next chunk is read and hashed while the current one is on the wire, so disk,
    CPU and network work at the same time.
    """
    done = 0
    with ThreadPoolExecutor(max_workers=1) as reader:
        for item in plan.send:
            with open(folder / item.path, "rb") as handle:
                handle.seek(item.offset)
                offset = item.offset
                pending = reader.submit(_read_chunk, handle,
                                        min(chunk_bytes, item.size_bytes - offset))
                while True:
                    data, digest = pending.result()
                    if len(data) != min(chunk_bytes, item.size_bytes - offset):
                        raise SyncError(f"{item.path} changed while it was being sent")
                    following = offset + len(data)
                    if following < item.size_bytes:
                        pending = reader.submit(_read_chunk, handle,
                                                min(chunk_bytes, item.size_bytes - following))
                    peer.put_chunk(name, item.path, offset, item.size_bytes, item.sha256,
                                   data, on_sent, digest)
                    offset = following
                    if offset >= item.size_bytes:
                        break
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
            result.files_sent += send_plan(peer, name, folder, plan, chunk_bytes, on_sent)
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

