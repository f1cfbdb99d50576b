"""Find the blocks of an ext2/3/4 volume that a boot loader addresses by number, not by name.

Shrinking with resize2fs moves every block past the new end. A loader that recorded block
addresses (SYSLINUX/extlinux's boot sector points at `ldlinux.sys`, GRUB's boot.img in a
partition points at `core.img`, whose first sector lists the rest) then reads stale
blocks and the machine stops at "Boot error". These are the pins that a shrink must stay
above:

- immutable files (`chattr +i`): extlinux marks `ldlinux.sys` so, precisely because it must
  not move; any other immutable file is kept in place too;
- a GRUB boot.img in the partition's first sector: its kernel sector (offset 0x5C, absolute
  LBA) names the first sector of core.img; the whole file holding that block is pinned.

NTFS has no such case that Castor knows of: its boot code finds BOOTMGR through the MFT.
"""

from __future__ import annotations

import array
import fcntl
import logging
import os
import re
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

from client.mount import mounted
from client.run import CommandError, run

log = logging.getLogger("castor.client")

FS_IOC_GETFLAGS = 0x80086601
FS_IMMUTABLE_FL = 0x10
GRUB_BOOT_MARK = b"GRUB \0Geom\0Hard Disk\0Read\0 Error"
GRUB_KERNEL_SECTOR = 0x5C
SLACK_BLOCKS_BYTES = 16 << 20  # room kept above the highest pinned block


@dataclass(frozen=True)
class Pin:
    """A file whose blocks a boot loader addresses: where it is and why it stays."""

    path: str
    reason: str
    first_block: int
    last_block: int

    def as_dict(self) -> dict:
        """The pin as the schema records it."""
        return asdict(self)


def parse_debugfs_blocks(text: str) -> list[int]:
    """Read the block numbers `debugfs -R "blocks PATH"` prints."""
    return [int(word) for word in text.split() if word.isdigit()]


def parse_icheck(text: str) -> int | None:
    """Read the inode of the one block `debugfs -R "icheck B"` was asked about."""
    for line in text.splitlines():
        match = re.match(r"^\s*(\d+)\s+(\d+)\s*$", line)
        if match:
            return int(match.group(2))
    return None


def parse_ncheck(text: str) -> str | None:
    """Read the first path `debugfs -R "ncheck I"` found for an inode."""
    for line in text.splitlines():
        match = re.match(r"^\s*\d+\s+(/.*\S)\s*$", line)
        if match:
            return match.group(1)
    return None


def file_blocks(dev: str, path: str) -> list[int]:
    """The physical blocks of one file of an unmounted ext volume."""
    return parse_debugfs_blocks(run(["debugfs", "-R", f'blocks "{path}"', dev]))


def is_immutable(path: Path) -> bool:
    """Tell whether a file carries the immutable attribute (lsattr's `i`)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        return bool(flags[0] & FS_IMMUTABLE_FL)
    except OSError:
        return False
    finally:
        os.close(fd)


def immutable_files(dev: str, fs_type: str) -> list[str]:
    """Paths (from the volume's root) of every immutable regular file, read-only mounted."""
    found = []
    with mounted(dev, fs_type, readonly=True) as root:
        for folder, dirs, files in os.walk(root):
            base = Path(folder)
            dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
            for name in files:
                path = base / name
                if path.is_file() and not path.is_symlink() and is_immutable(path):
                    found.append("/" + path.relative_to(root).as_posix())
    return sorted(found)


def grub_core_sector(boot_sector: bytes) -> int | None:
    """The absolute LBA of core.img a GRUB boot.img records, or None for another sector."""
    if len(boot_sector) < 512 or GRUB_BOOT_MARK not in boot_sector[:512]:
        return None
    return struct.unpack_from("<Q", boot_sector, GRUB_KERNEL_SECTOR)[0]


def _pin(dev: str, path: str, reason: str) -> Pin | None:
    blocks = file_blocks(dev, path)
    if not blocks:
        return None
    return Pin(path, reason, min(blocks), max(blocks))


def pinned_files(dev: str, fs_type: str, start_sector: int = 0,
                 sector_size: int = 512, block_size: int = 4096) -> list[Pin]:
    """Every file of an ext volume a loader addresses by block, with its block range."""
    if fs_type not in ("ext2", "ext3", "ext4"):
        return []
    pins = []
    for path in immutable_files(dev, fs_type):
        reason = ("SYSLINUX/extlinux boot sector addresses it by block"
                  if Path(path).name.lower() in ("ldlinux.sys", "extlinux.sys")
                  else "immutable file")
        if (pin := _pin(dev, path, reason)) is not None:
            pins.append(pin)
    with open(dev, "rb") as handle:
        boot = handle.read(512)
    core = grub_core_sector(boot)
    if core is not None and core >= start_sector:
        block = (core - start_sector) * sector_size // block_size
        inode = parse_icheck(run(["debugfs", "-R", f"icheck {block}", dev]))
        path = parse_ncheck(run(["debugfs", "-R", f"ncheck {inode}", dev])) if inode else None
        if path is None:
            # core.img outside any file: the block itself is what the loader reads.
            pins.append(Pin(f"block {block}", "GRUB boot sector addresses it", block, block))
        elif all(p.path != path for p in pins):
            pin = _pin(dev, path, "GRUB boot sector in the partition addresses it by block")
            pins += [pin] if pin is not None else []
    return pins


def shrink_floor_bytes(dev: str, fs_type: str, block_size: int, start_sector: int = 0,
                       sector_size: int = 512) -> tuple[int, list[Pin]]:
    """The smallest size a shrink may go to without moving a pinned block, and the pins."""
    try:
        pins = pinned_files(dev, fs_type, start_sector, sector_size, block_size)
    except CommandError as exc:
        # Not knowing where the loader's blocks are means no shrink is safe.
        log.warning("cannot tell which blocks a boot loader addresses on %s: %s", dev, exc)
        return -1, []
    if not pins:
        return 0, []
    top = max(pin.last_block for pin in pins)
    return (top + 1) * block_size + SLACK_BLOCKS_BYTES, pins
