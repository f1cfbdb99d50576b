"""Decide what a replication has to send: pure functions over manifests and target reports."""

from __future__ import annotations

from dataclasses import dataclass

from app.receive.manifest import SHA256_RE, entry_problems, manifest_problems

__all__ = ["SHA256_RE", "TransferPlan", "entry_problems", "manifest_problems", "plan_transfer"]


@dataclass(frozen=True)
class FileToSend:
    """One file the target lacks, and the offset to resume it from."""

    path: str
    size_bytes: int
    sha256: str
    offset: int = 0

    @property
    def remaining(self) -> int:
        """Bytes still to send for this file."""
        return self.size_bytes - self.offset


@dataclass(frozen=True)
class TransferPlan:
    """What one replication run does."""

    send: list[FileToSend]
    up_to_date: bool
    total_bytes: int

    @property
    def bytes_to_send(self) -> int:
        """Bytes this run will put on the wire."""
        return sum(item.remaining for item in self.send)


def index_files(entries: list[dict]) -> dict[str, tuple[int, str]]:
    """Map each file path to its (size, SHA-256)."""
    return {entry["path"]: (int(entry["size_bytes"]), entry["sha256"]) for entry in entries}


def plan_transfer(source_manifest: dict, source_files: list[dict], target: dict) -> TransferPlan:
    """Compare our files with what the target reports and list what must go over the wire.

    `source_files` are the manifest's files plus extra files of the folder (schema.json);
    `target` is the target's report: its manifest, the files it really holds (hashed) and
    what its incoming area already received.
    """
    wanted = index_files(source_files)
    held = index_files(target.get("files", []))
    total = sum(size for size, _ in wanted.values())
    if target.get("manifest") == source_manifest and held == wanted:
        return TransferPlan(send=[], up_to_date=True, total_bytes=total)

    received = {}
    partial = {}
    for entry in target.get("incoming", []):
        key = (int(entry["size_bytes"]), entry["sha256"])
        if entry.get("complete"):
            received[entry["path"]] = key
        else:
            partial[entry["path"]] = (key, int(entry.get("received_bytes", 0)))

    send = []
    for path, (size, sha) in sorted(wanted.items()):
        if held.get(path) == (size, sha) or received.get(path) == (size, sha):
            continue
        offset = 0
        if path in partial and partial[path][0] == (size, sha):
            offset = min(partial[path][1], size)
        send.append(FileToSend(path=path, size_bytes=size, sha256=sha, offset=offset))
    return TransferPlan(send=send, up_to_date=False, total_bytes=total)
