"""Mount a partition on a temporary directory for the steps that need its files."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from client.run import ClientError, run, run_ok

log = logging.getLogger("castor.client")

KERNEL_FILESYSTEMS = ("ext2", "ext3", "ext4", "xfs", "btrfs")
FAT_FILESYSTEMS = ("vfat", "fat", "fat12", "fat16", "fat32", "msdos")
UMOUNT_ATTEMPTS = 5


def mount_argv(dev: str, fs_type: str, target: Path, readonly: bool) -> list[str]:
    """Return the command that mounts dev (of fs_type) on target."""
    if fs_type in FAT_FILESYSTEMS:
        raise ClientError(f"cannot mount vfat ({dev}): use mtools")
    if fs_type == "ntfs":
        # ntfs-3g refuses read-write on a hibernated or dirty volume, which is what we want.
        return ["ntfs-3g", "-o", "ro" if readonly else "rw", dev, str(target)]
    if fs_type in KERNEL_FILESYSTEMS:
        # Read-only still lets the kernel replay a journal: a capture wants consistent files.
        options = "ro" if readonly else "rw"
        if fs_type == "xfs":
            # A deployed copy has its source's UUID; the kernel would refuse the second one.
            options += ",nouuid"
        return ["mount", "-t", fs_type, "-o", options, dev, str(target)]
    raise ClientError(f"cannot mount {dev}: filesystem {fs_type or 'unknown'} is not supported")


def is_mounted(target: Path) -> bool:
    """Tell whether a directory is a mount point right now."""
    wanted = str(target.resolve())
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 1 and fields[1].replace("\\040", " ") == wanted:
                return True
    return False


def wait_released(dev: str, timeout: float = 15.0) -> None:
    """Wait until no process holds dev exclusively (ntfs-3g exits after umount returns)."""
    try:
        if not stat.S_ISBLK(os.stat(dev).st_mode):
            return
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(dev, os.O_RDONLY | os.O_EXCL)
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                log.warning("%s still busy after unmount", dev)
                return
            time.sleep(0.1)
            continue
        os.close(fd)
        return


def unmount(target: Path) -> None:
    """Unmount target, retrying while it is busy and detaching lazily as a last resort."""
    run_ok(["sync"])
    for attempt in range(UMOUNT_ATTEMPTS):
        if not is_mounted(target):
            return
        if run_ok(["umount", str(target)]):
            return
        time.sleep(0.2 * (attempt + 1))
    if is_mounted(target):
        log.warning("%s is busy: detaching it lazily", target)
        run(["umount", "-l", str(target)])


@contextmanager
def mounted(dev: str, fs_type: str, readonly: bool = False) -> Iterator[Path]:
    """Mount dev on a temporary directory, yield it, and always unmount and remove it."""
    target = Path(tempfile.mkdtemp(prefix="castor-mnt-"))
    try:
        run(mount_argv(dev, fs_type, target, readonly), timeout=120)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    try:
        yield target
    finally:
        try:
            unmount(target)
            if fs_type == "ntfs":
                wait_released(dev)
        finally:
            if not is_mounted(target):
                try:
                    target.rmdir()
                except OSError as exc:
                    log.warning("could not remove %s: %s", target, exc)
