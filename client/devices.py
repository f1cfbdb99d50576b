"""Open a disk (block device or raw disk-image file) and reach its partitions.

Partition nodes do not always exist (a partitioned loop device here gets none), so a
partition can always be reached through its own offset loop device. For a disk-image file the
offset loops sit directly on the file (a loop stacked on the disk's loop writes about a third
slower); the disk's own loop device keeps its own page cache, so it is flushed and
invalidated before partition loops are attached and after they are released.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from client.run import ClientError, CommandError, run

log = logging.getLogger("castor.client")


def is_block_device(path: str) -> bool:
    """Tell whether path is a block device."""
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def partition_node(disk_path: str, number: int) -> str:
    """Kernel name of a partition node: `p` separator when the disk name ends in a digit."""
    sep = "p" if re.search(r"\d$", disk_path) else ""
    return f"{disk_path}{sep}{number}"


def attach_loop(backing: str, offset: int = 0, size: int | None = None) -> str:
    """Attach a loop device over backing (file or block device), optionally a byte window."""
    argv = ["losetup", "-f", "--show"]
    if offset:
        argv += ["-o", str(offset)]
    if size is not None:
        argv += ["--sizelimit", str(size)]
    argv.append(backing)
    return run(argv).strip()


def detach_loop(device: str) -> None:
    """Detach a loop device, retrying while something still holds it."""
    for attempt in range(10):
        try:
            run(["losetup", "-d", device])
            return
        except CommandError as exc:
            if "No such device" in str(exc) or attempt == 9:
                log.warning("could not detach %s: %s", device, exc)
                return
            time.sleep(0.2)


def device_size(path: str) -> int:
    """Size of a block device in bytes."""
    return int(run(["blockdev", "--getsize64", path]).strip())


def flush(path: str) -> None:
    """Write back and drop the kernel's buffers of a block device."""
    run(["blockdev", "--flushbufs", path], check=False)


class Disk:
    """An opened disk: its block device path, sizes, and on-demand partition devices."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._own_loop: str | None = None
        self._part_loops: dict[tuple[int, int, int], str] = {}
        if is_block_device(source):
            self.path = source
        elif Path(source).is_file():
            self._own_loop = attach_loop(source)
            self.path = self._own_loop
        else:
            raise ClientError(f"{source} is neither a block device nor a disk-image file")
        try:
            self.size_bytes = device_size(self.path)
            self.logical_sector_size = int(run(["blockdev", "--getss", self.path]).strip())
            self.physical_sector_size = int(run(["blockdev", "--getpbsz", self.path]).strip())
        except BaseException:
            self.close()
            raise

    @property
    def is_image_file(self) -> bool:
        """True when the disk is a raw disk-image file attached to a loop device."""
        return self._own_loop is not None

    @property
    def name(self) -> str:
        """Short device name (`sda`, `loop3`)."""
        return Path(self.path).name

    def partition_device(self, number: int, start_sector: int, size_sectors: int) -> str:
        """Return a device for one partition: its node if the kernel made one, else a loop."""
        key = (number, start_sector, size_sectors)
        if key in self._part_loops:
            return self._part_loops[key]
        if not self.is_image_file and not Path(self.path).name.startswith("loop"):
            node = partition_node(self.path, number)
            if is_block_device(node):
                return node
        # A stale loop for the same partition number would alias a different window.
        for old in [k for k in self._part_loops if k[0] == number]:
            detach_loop(self._part_loops.pop(old))
        flush(self.path)
        sector = self.logical_sector_size
        backing = self.source if self.is_image_file else self.path
        dev = attach_loop(backing, start_sector * sector, size_sectors * sector)
        self._part_loops[key] = dev
        return dev

    def release_partitions(self) -> None:
        """Detach every partition loop (before the table is rewritten)."""
        for key in list(self._part_loops):
            dev = self._part_loops.pop(key)
            flush(dev)
            detach_loop(dev)
        flush(self.path)

    def reread_table(self) -> None:
        """Make the kernel see a new partition table (real disks) and drop stale buffers."""
        self.release_partitions()
        if not self.is_image_file and not self.name.startswith("loop"):
            run(["blockdev", "--rereadpt", self.path], check=False)
            run(["udevadm", "settle"], check=False)

    def close(self) -> None:
        """Detach every loop device this disk attached."""
        self.release_partitions()
        if self._own_loop is not None:
            flush(self._own_loop)
            detach_loop(self._own_loop)
            self._own_loop = None

    def __enter__(self) -> Disk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def open_disk(path: str) -> Iterator[Disk]:
    """Open a block device or disk-image file as a Disk and close it afterwards."""
    disk = Disk(path)
    try:
        yield disk
    finally:
        disk.close()
