"""Restore one partition from a compressed stream, verified by SHA-256 as it flows.

Where the stream comes from is the caller's business (HTTP download for unicast,
udp-receiver for multicast): `restore_partition` takes either an iterable of bytes or a list
of argv stages that produce the stream.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack

from client.capture import PARTCLONE_TOOL
from client.compress import decompress_stage
from client.imagehead import (
    PARTCLONE_HEADER_BYTES,
    check_fs_name,
    decompress_prefix,
    needs_no_check,
    parse_partclone_header,
)
from client.pipeline import Pipeline
from client.resize import device_bytes
from client.run import ClientError, run

log = logging.getLogger("castor.client")
PEEK_LIMIT_BYTES = 8 << 20  # lz4 blocks reach 4 MiB: the header is inside the first one


class ChecksumError(ClientError):
    """A stored image file did not match its manifest checksum."""


def verified(chunks: Iterable[bytes], expected_sha256: str | None, label: str,
             on_bytes: Callable[[int], None] | None = None,
             expected_size: int | None = None) -> Iterator[bytes]:
    """Pass chunks through, hashing them; raise ChecksumError at the end on a mismatch."""
    digest = hashlib.sha256()
    total = 0
    for data in chunks:
        digest.update(data)
        total += len(data)
        if on_bytes is not None:
            on_bytes(total)
        yield data
    if expected_size is not None and total != expected_size:
        raise ChecksumError(f"{label}: received {total} bytes, the manifest says "
                            f"{expected_size}: the image file is damaged")
    if expected_sha256 and digest.hexdigest() != expected_sha256.lower():
        raise ChecksumError(f"{label}: SHA-256 mismatch: the image file is damaged "
                            "(stopped before the next partition)")


def restore_stage(kind: str, fs_type: str | None, device: str,
                  no_check: bool = False) -> list[str] | None:
    """Return the argv that writes an uncompressed image stream onto device (None: wim).

    no_check adds partclone's `-C`, for a filesystem that fits a partition smaller than the
    one it was captured from (see `client.imagehead.needs_no_check`).
    """
    if kind == "partclone":
        tool = PARTCLONE_TOOL.get(fs_type or "", fs_type)
        return [f"partclone.{tool}", "-r", *(["-C"] if no_check else []), "-s", "-",
                "-o", device]
    if kind == "dd":
        return ["partclone.dd", "-s", "-", "-o", device]
    if kind == "wim":
        return None
    raise ClientError(f"cannot restore an image file of kind {kind!r}")


def make_filesystem(fs_type: str, device: str, label: str = "", uuid: str = "") -> None:
    """Create an empty filesystem (for file images) keeping the source's label and UUID."""
    if fs_type in ("ext2", "ext3", "ext4"):
        argv = [f"mkfs.{fs_type}", "-F", "-q"] + (["-L", label] if label else []) + (
            ["-U", uuid] if uuid else [])
    elif fs_type == "ntfs":
        argv = ["mkfs.ntfs", "-f", "-Q"] + (["-L", label] if label else [])
    elif fs_type == "xfs":
        argv = ["mkfs.xfs", "-f", "-q"] + (["-L", label] if label else []) + (
            ["-m", f"uuid={uuid}"] if uuid else [])
    elif fs_type == "btrfs":
        argv = ["mkfs.btrfs", "-f", "-q"] + (["-L", label] if label else []) + (
            ["-U", uuid] if uuid else [])
    else:
        raise ClientError(f"file images of {fs_type} filesystems are not supported")
    run([*argv, device])


def make_swap(device: str, uuid: str = "", label: str = "") -> None:
    """Recreate a swap area with the source's UUID (fstab and resume= find it by UUID)."""
    run(["mkswap"] + (["-U", uuid] if uuid else []) + (["-L", label] if label else [])
        + [device])


def ensure_ntfs_backup_boot(device: str) -> bool:
    """Write the NTFS backup boot sector when missing; return whether it was written.

    partclone restores the volume's clusters, but the backup boot sector sits just past the
    last cluster, so a restore onto a blank partition leaves it empty and chkdsk complains.
    """
    fd = os.open(device, os.O_RDWR)
    try:
        boot = os.pread(fd, 512, 0)
        if boot[3:11] != b"NTFS    ":
            return False
        sector = int.from_bytes(boot[0x0B:0x0D], "little") or 512
        boot = os.pread(fd, sector, 0)
        offset = int.from_bytes(boot[0x28:0x30], "little") * sector
        if offset + sector > os.lseek(fd, 0, os.SEEK_END):
            return False
        if os.pread(fd, sector, offset) == boot:
            return False
        os.pwrite(fd, boot, offset)
        os.fsync(fd)
        return True
    finally:
        os.close(fd)


def peek_head(feed: Iterator[bytes], compression: str,
               want: int = PARTCLONE_HEADER_BYTES) -> tuple[bytes, Iterator[bytes]]:
    """Read the start of a stream, decompressed, and give back the stream unchanged."""
    taken: list[bytes] = []
    size = 0
    tried_at = 0
    head = b""
    for data in feed:
        taken.append(data)
        size += len(data)
        # Decompressing the growing prefix again is cheap while it doubles each try.
        if size >= 2 * tried_at or size >= PEEK_LIMIT_BYTES:
            tried_at = size
            head = decompress_prefix(b"".join(taken), compression, want)
            if len(head) >= want or size >= PEEK_LIMIT_BYTES:
                break
    else:
        if taken:
            head = decompress_prefix(b"".join(taken), compression, want)
    return head, itertools.chain(taken, feed)


def partclone_no_check(feed: Iterator[bytes], compression: str, fs_type: str | None,
                       device: str, label: str) -> tuple[bool, Iterator[bytes]]:
    """Check a partclone stream's header against the target; tell whether `-C` is needed."""
    head, feed = peek_head(feed, compression)
    header = parse_partclone_header(head, label)
    check_fs_name(header, fs_type, label)
    return needs_no_check(header, device_bytes(device), label), feed


def restore_partition(source: Iterable[bytes] | list[list[str]], compression: str,
                      fs_type: str | None, device: str, expected_sha256: str | None, *,
                      kind: str = "partclone", label: str = "", expected_size: int | None = None,
                      fs_label: str = "", fs_uuid: str = "",
                      on_stderr_line: Callable[[int, str], None] | None = None,
                      on_bytes: Callable[[int], None] | None = None,
                      cancel: threading.Event | None = None) -> None:
    """Stream → verify SHA-256 → decompress → write one partition (partclone, dd or wim)."""
    label = label or device
    stages: list[list[str]] = []
    feed: Iterable[bytes] | None
    if isinstance(source, list):
        # The stream is produced by commands (udp-receiver): hash their output in between.
        producer = Pipeline(source, on_stderr_line=on_stderr_line, cancel=cancel)
        feed = verified(producer.chunks(), expected_sha256, label, on_bytes, expected_size)
    else:
        producer = None
        feed = verified(source, expected_sha256, label, on_bytes, expected_size)
    if (stage := decompress_stage(compression)) is not None:
        stages.append(stage)
    with ExitStack() as stack:
        if producer is not None:
            stack.enter_context(producer)
        no_check = False
        if kind == "partclone":
            no_check, feed = partclone_no_check(iter(feed), compression, fs_type, device,
                                                label)
            if no_check:
                log.info("%s: the image's filesystem fits the smaller partition: restoring "
                         "with partclone -C", label)
        writer = restore_stage(kind, fs_type, device, no_check)
        if writer is None:
            make_filesystem(fs_type or "", device, fs_label, fs_uuid)
            if fs_type == "ntfs":
                target = device  # wimlib writes NTFS volumes directly through libntfs-3g
                unix = []
            else:
                from client.mount import mounted

                target = str(stack.enter_context(mounted(device, fs_type or "")))
                unix = ["--unix-data"]
            writer = ["wimlib-imagex", "apply", "-", "1", target, *unix]
        if not stages:
            stages.append(["cat"])  # a pipe stage so the feed thread has a stdin to write
        stages.append(writer)
        with Pipeline(stages, source=feed, on_stderr_line=on_stderr_line, cancel=cancel,
                      stdout=None) as pipe:
            for _ in pipe.chunks():
                pass
    run(["blockdev", "--flushbufs", device], check=False)
    if fs_type == "ntfs" and kind == "partclone":
        ensure_ntfs_backup_boot(device)
