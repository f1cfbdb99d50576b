"""Capture one partition (or table area) as a compressed stream sent straight to the server."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

from client.api import Api
from client.compress import compress_stage, suffix
from client.pipeline import Pipeline
from client.probe import PARTCLONE_FILESYSTEMS
from client.run import ClientError

log = logging.getLogger("castor.client")

PARTCLONE_TOOL = {"vfat": "fat", "ext2": "extfs", "ext3": "extfs", "ext4": "extfs"}


@dataclass
class CaptureSpec:
    """What to capture from where, and where it goes in the image folder."""

    path: str
    kind: str
    stages: list[list[str]]
    compression: str
    level: int | None
    filesystem: str | None = None
    disk: int = 0
    partition: int | None = None
    lv: str | None = None
    source_bytes: int | None = None
    mount_fs: str | None = None  # file images of non-NTFS volumes are read from a mount

    def entry(self, size: int, sha256: str) -> dict:
        """The manifest entry of the captured file."""
        return {"path": self.path, "kind": self.kind, "disk": self.disk,
                "partition": self.partition, "lv": self.lv, "filesystem": self.filesystem,
                "compression": self.compression, "level": self.level, "size_bytes": size,
                "sha256": sha256, "source_bytes": self.source_bytes}


def partclone_stage(fs_type: str | None, device: str,
                    ignore_fschk: bool = False) -> tuple[str, list[str]]:
    """Return (kind, argv) imaging a partition: partclone per fs, partclone.dd otherwise."""
    if fs_type in PARTCLONE_FILESYSTEMS:
        tool = PARTCLONE_TOOL.get(fs_type, fs_type)
        # ntfsresize schedules a chkdsk on every volume it resizes; we just shrank it
        # cleanly ourselves, so partclone may ignore that flag.
        extra = ["-I"] if ignore_fschk else []
        return "partclone", [f"partclone.{tool}", "-c", *extra, "-s", device, "-o", "-"]
    return "dd", ["partclone.dd", "-s", device, "-o", "-"]


def block_spec(disk: int, number: int, fs_type: str | None, device: str, compression: str,
               level: int | None, source_bytes: int, lv: str | None = None,
               shrunk: bool = False) -> CaptureSpec:
    """Describe a block capture of one partition or logical volume."""
    kind, argv = partclone_stage(fs_type, device, ignore_fschk=shrunk)
    name = lv or f"part{number}"
    fs_name = fs_type or "raw"
    tool_name = "partclone" if kind == "partclone" else "dd"
    stages = [argv] + ([c] if (c := compress_stage(compression, level)) else [])
    return CaptureSpec(path=f"hd{disk}/{name}.{fs_name}.{tool_name}{suffix(compression)}",
                       kind=kind, stages=stages, compression=compression,
                       level=None if compression == "none" else level, filesystem=fs_type,
                       disk=disk, partition=number, lv=lv, source_bytes=source_bytes)


def file_spec(disk: int, number: int, fs_type: str, source: str, compression: str,
              level: int | None, source_bytes: int) -> CaptureSpec:
    """Describe a file-level (WIM) capture; source is an NTFS device or a mounted folder."""
    argv = ["wimlib-imagex", "capture", source, "-", f"part{number}", "--pipable",
            "--compress=none", "--no-acls" if fs_type != "ntfs" else "--strict-acls"]
    if fs_type != "ntfs":
        argv.append("--unix-data")
    stages = [argv] + ([c] if (c := compress_stage(compression, level)) else [])
    return CaptureSpec(path=f"hd{disk}/part{number}.{fs_type}.wim{suffix(compression)}",
                       kind="wim", stages=stages, compression=compression,
                       level=None if compression == "none" else level, filesystem=fs_type,
                       disk=disk, partition=number, source_bytes=source_bytes,
                       mount_fs=None if fs_type == "ntfs" else fs_type)


def _hashed(chunks: Iterator[bytes], digest, counter: list[int],
            on_bytes: Callable[[int], None] | None) -> Iterator[bytes]:
    for data in chunks:
        digest.update(data)
        counter[0] += len(data)
        if on_bytes is not None:
            on_bytes(counter[0])
        yield data


def send_capture(api: Api, upload_id: str, spec: CaptureSpec, *,
                 on_stderr_line: Callable[[int, str], None] | None = None,
                 on_bytes: Callable[[int], None] | None = None,
                 cancel: threading.Event | None = None) -> dict:
    """Run the capture pipeline and stream its output to the server; return the entry."""
    digest = hashlib.sha256()
    counter = [0]
    with ExitStack() as stack:
        stages = [list(s) for s in spec.stages]
        if spec.mount_fs is not None:
            from client.mount import mounted

            root = stack.enter_context(mounted(stages[0][2], spec.mount_fs, readonly=True))
            stages[0][2] = str(root)
        pipe = stack.enter_context(Pipeline(stages, on_stderr_line=on_stderr_line,
                                            cancel=cancel))
        answer = api.put_segments(f"/uploads/{upload_id}/files/{spec.path}",
                                  _hashed(pipe.chunks(), digest, counter, on_bytes))
    sha = digest.hexdigest()
    if answer.get("sha256") != sha or answer.get("size_bytes") != counter[0]:
        raise ClientError(f"{spec.path}: the server stored {answer.get('size_bytes')} bytes "
                          f"with another checksum than the {counter[0]} bytes sent")
    return spec.entry(counter[0], sha)


def send_bytes(api: Api, upload_id: str, path: str, data: bytes, kind: str,
               disk: int) -> dict:
    """Upload a small in-memory file (table dumps, head sectors) and return its entry."""
    answer = api.put_stream(f"/uploads/{upload_id}/files/{path}", [data],
                            {"X-Castor-Size": str(len(data)),
                             "X-Castor-Sha256": hashlib.sha256(data).hexdigest()})
    return {"path": path, "kind": kind, "disk": disk, "partition": None, "lv": None,
            "filesystem": None, "compression": "none", "level": None,
            "size_bytes": answer["size_bytes"], "sha256": answer["sha256"],
            "source_bytes": len(data)}
