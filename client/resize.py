"""Shrink filesystems before capture, grow them back and after deploy, and report their sizes."""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from client.bootblocks import shrink_floor_bytes
from client.mount import mounted
from client.run import ClientError, CommandError, run

log = logging.getLogger("castor.client")

MIB = 1 << 20
GIB = 1 << 30
DEFAULT_THRESHOLD_BYTES = 5 * GIB
EXT_FILESYSTEMS = ("ext2", "ext3", "ext4")
SHRINKABLE = (*EXT_FILESYSTEMS, "ntfs")
NTFS_BACKUP_BOOT_BYTES = 512  # ntfsresize counts the backup boot sector in the volume size
PinsAt = tuple[int, int]  # a partition's start sector and sector size on its disk


def device_bytes(dev: str) -> int:
    """Return the size of a block device or image file in bytes."""
    if stat.S_ISBLK(os.stat(dev).st_mode):
        return int(run(["blockdev", "--getsize64", dev]).strip())
    return os.path.getsize(dev)


def _number(pattern: str, text: str, what: str) -> int:
    """Return the integer the first group of pattern finds in text (spaces allowed inside)."""
    match = re.search(pattern, text, re.MULTILINE)
    if not match:
        raise ClientError(f"could not read {what} from the tool's output")
    return int(re.sub(r"\s", "", match.group(1)))


def parse_dumpe2fs(text: str) -> dict:
    """Read volume, used and block size from `dumpe2fs -h` output."""
    blocks = _number(r"^Block count:\s+(\d+)", text, "the block count")
    free = _number(r"^Free blocks:\s+(\d+)", text, "the free blocks")
    size = _number(r"^Block size:\s+(\d+)", text, "the block size")
    return {"volume_bytes": blocks * size, "used_bytes": (blocks - free) * size,
            "block_size": size}


def parse_resize2fs_minimum(text: str) -> int:
    """Read the minimum size in blocks from `resize2fs -P` output."""
    return _number(r"minimum size of the filesystem:\s*(\d+)", text, "the minimum size")


def parse_ntfsresize_info(text: str) -> dict:
    """Read volume size, cluster size and (when shown) the minimum from `ntfsresize -i`."""
    info = {
        "volume_bytes": _number(r"^Current volume size:\s*(\d+) bytes", text, "the volume size"),
        "block_size": _number(r"^Cluster size\s*:\s*(\d+) bytes", text, "the cluster size"),
        "min_bytes": None,
    }
    if re.search(r"You might resize at", text):
        info["min_bytes"] = _number(r"You might resize at (\d+) bytes", text, "the minimum")
    return info


def parse_ntfscluster_free(text: str) -> int:
    """Read the free bytes from `ntfscluster -i` output."""
    return _number(r"^bytes of free space\s*:\s*(\d+)", text, "the free space")


def parse_xfs_db(text: str) -> dict:
    """Read sizes from `xfs_db -r -c 'sb 0' -c 'p dblocks blocksize fdblocks'` output."""
    blocks = _number(r"^dblocks = (\d+)", text, "the data blocks")
    size = _number(r"^blocksize = (\d+)", text, "the block size")
    free = _number(r"^fdblocks = (\d+)", text, "the free blocks")
    return {"volume_bytes": blocks * size, "used_bytes": (blocks - free) * size,
            "block_size": size}


def parse_fat(minfo: str, mdir: str) -> dict:
    """Read sizes of a FAT volume from `minfo` and the free space line of `mdir`."""
    sector = _number(r"^sector size: (\d+) bytes", minfo, "the sector size")
    cluster = _number(r"^cluster size: (\d+) sectors", minfo, "the cluster size")
    sectors = _number(r"^big size: (\d+) sectors", minfo, "the volume size")
    if not sectors:
        sectors = _number(r"^small size: (\d+) sectors", minfo, "the volume size")
    free = _number(r"^\s*([\d ]+) bytes free", mdir, "the free space")
    volume = sectors * sector
    return {"volume_bytes": volume, "used_bytes": volume - free, "block_size": sector * cluster}


def parse_btrfs_super(text: str) -> dict:
    """Read sizes from `btrfs inspect-internal dump-super` output."""
    return {"volume_bytes": _number(r"^total_bytes\s+(\d+)", text, "the total bytes"),
            "used_bytes": _number(r"^bytes_used\s+(\d+)", text, "the used bytes"),
            "block_size": _number(r"^sectorsize\s+(\d+)", text, "the sector size")}


def filesystem_info(dev: str, fs_type: str) -> dict:
    """Return {"volume_bytes", "used_bytes", "block_size"} (NTFS adds "min_bytes") of dev."""
    if fs_type in EXT_FILESYSTEMS:
        return parse_dumpe2fs(run(["dumpe2fs", "-h", dev]))
    if fs_type == "ntfs":
        info = parse_ntfsresize_info(run(["ntfsresize", "-i", "-f", dev], timeout=600))
        free = parse_ntfscluster_free(run(["ntfscluster", "-i", "-f", dev], timeout=600))
        # min_bytes comes free with ntfsresize's answer; callers may skip a second scan.
        return {"volume_bytes": info["volume_bytes"],
                "used_bytes": max(info["volume_bytes"] - free, 0),
                "block_size": info["block_size"], "min_bytes": info["min_bytes"]}
    if fs_type == "xfs":
        return parse_xfs_db(run(["xfs_db", "-r", "-c", "sb 0", "-c",
                                 "p dblocks blocksize fdblocks", dev]))
    if fs_type in ("vfat", "fat", "fat16", "fat32", "msdos"):
        return parse_fat(run(["minfo", "-i", dev, "::"]), run(["mdir", "-i", dev, "::"]))
    if fs_type == "btrfs":
        return parse_btrfs_super(run(["btrfs", "inspect-internal", "dump-super", dev]))
    # Anything else is copied whole: the device is both its size and its used space.
    size = device_bytes(dev)
    return {"volume_bytes": size, "used_bytes": size, "block_size": 512}


def check_ext(dev: str) -> None:
    """Force an e2fsck repair pass; resize2fs refuses to work without one."""
    try:
        run(["e2fsck", "-f", "-y", dev])
    except CommandError as exc:
        # Exit codes 1-3 mean errors were corrected; 4 and above mean some are left.
        if exc.returncode not in (1, 2, 3):
            raise


def minimum_bytes(dev: str, fs_type: str) -> int | None:
    """Return the smallest size the filesystem can be shrunk to, or None if it cannot."""
    if fs_type in EXT_FILESYSTEMS:
        blocks = parse_resize2fs_minimum(run(["resize2fs", "-P", dev]))
        return blocks * filesystem_info(dev, fs_type)["block_size"]
    if fs_type == "ntfs":
        return parse_ntfsresize_info(run(["ntfsresize", "-i", "-f", dev], timeout=600))[
            "min_bytes"]
    return None


def default_slack(fs_type: str, min_bytes: int) -> int:
    """Return the room left above the minimum so the captured system still has space to run."""
    if fs_type == "ntfs":
        return 500 * MIB  # Windows writes on first boot; less than this breaks some deploys
    return max(min_bytes // 20, 64 * MIB)


def _round_up(value: int, unit: int) -> int:
    """Round value up to a multiple of unit."""
    return -(-value // unit) * unit


def limit_by_pins(dev: str, fs_type: str, target: int, info: dict, pins_at: PinsAt,
                  record: dict | None) -> int | None:
    """Raise a shrink target above every block a boot loader addresses; None: don't shrink."""
    floor, pins = shrink_floor_bytes(dev, fs_type, info["block_size"], *pins_at)
    if record is not None:
        record["shrink_limited_by"] = [pin.as_dict() for pin in pins] or None
    if floor < 0:
        if record is not None:
            record["shrink_limited_by"] = [{"path": None, "reason": "boot loader blocks "
                                            "unknown", "first_block": 0, "last_block": 0}]
        return None
    if floor <= target:
        return target
    names = ", ".join(f"{pin.path} (blocks {pin.first_block}-{pin.last_block}: {pin.reason})"
                      for pin in pins)
    limited = _round_up(floor, info["block_size"])
    if limited >= info["volume_bytes"]:
        log.warning("not shrinking %s on %s: a boot loader addresses blocks near its end: %s",
                    fs_type, dev, names)
        return None
    log.warning("shrinking %s on %s only to %d bytes (not %d): a boot loader addresses "
                "blocks that must not move: %s", fs_type, dev, limited, target, names)
    return limited


def shrink(dev: str, fs_type: str, slack_bytes: int | None = None,
           record: dict | None = None, pins_at: PinsAt = (0, 512)) -> int | None:
    """Shrink an ext or NTFS filesystem to its minimum plus slack; return its new size or None.

    An ext volume is never shrunk below a block a boot loader addresses (see
    `client.bootblocks`); record (the schema's filesystem object) gets `shrink_limited_by`.
    pins_at is the partition's (start sector, sector size) on its disk.
    """
    if fs_type in EXT_FILESYSTEMS:
        check_ext(dev)
        info = filesystem_info(dev, fs_type)
        minimum = minimum_bytes(dev, fs_type) or info["volume_bytes"]
        slack = default_slack(fs_type, minimum) if slack_bytes is None else slack_bytes
        target = _round_up(minimum + slack, info["block_size"])
        if target >= info["volume_bytes"]:
            return None
        target = limit_by_pins(dev, fs_type, target, info, pins_at, record)
        if target is None:
            return None
        try:
            run(["resize2fs", dev, f"{target // 1024}K"])
        except CommandError as exc:
            # resize2fs stops before moving data when it cannot make it; prove the filesystem
            # is still sound (check_ext raises if not) and capture it at full size.
            log.warning("not shrinking %s on %s: %s", fs_type, dev, exc)
            check_ext(dev)
            return None
        return filesystem_info(dev, fs_type)["volume_bytes"]
    if fs_type == "ntfs":
        try:
            info = parse_ntfsresize_info(run(["ntfsresize", "-i", "-f", dev], timeout=600))
            minimum = info["min_bytes"] or info["volume_bytes"]
            slack = default_slack(fs_type, minimum) if slack_bytes is None else slack_bytes
            target = _round_up(minimum + slack, info["block_size"]) + NTFS_BACKUP_BOOT_BYTES
            if target >= info["volume_bytes"]:
                return None
            output = run(["ntfsresize", "-f", "-P", "-s", str(target), dev], input="y\n")
        except CommandError as exc:
            # A volume ntfsresize cannot shrink is still worth capturing at full size.
            log.warning("not shrinking NTFS on %s: %s", dev, exc)
            return None
        clear_ntfs_dirty(dev)
        return _number(r"^New volume size\s*:\s*(\d+) bytes", output, "the new volume size")
    return None


def clear_ntfs_dirty(dev: str) -> None:
    """Clear the check-disk mark ntfsresize leaves, which partclone.ntfs refuses to read."""
    # ntfsresize only schedules chkdsk as a precaution; the volume it leaves is consistent.
    try:
        run(["ntfsfix", "-d", dev], timeout=600)
    except CommandError as exc:
        log.warning("could not clear the dirty flag of %s: %s", dev, exc)


def expand(dev: str, fs_type: str, size_bytes: int | None = None) -> None:
    """Grow the filesystem on dev to fill its device (or to size_bytes when given)."""
    if fs_type in EXT_FILESYSTEMS:
        check_ext(dev)
        size = [f"{size_bytes // 1024}K"] if size_bytes else []
        run(["resize2fs", dev, *size])
    elif fs_type == "ntfs":
        size = ["-s", str(size_bytes)] if size_bytes else []
        # ntfsresize asks for confirmation before the dangerous part even with -f.
        output = run(["ntfsresize", "-f", "-P", *size, dev], input="y\n", timeout=3600)
        if "Nothing to do" not in output:
            clear_ntfs_dirty(dev)
    elif fs_type == "xfs":
        with mounted(dev, fs_type) as root:
            run(["xfs_growfs", str(root)])
    elif fs_type == "btrfs":
        with mounted(dev, fs_type) as root:
            run(["btrfs", "filesystem", "resize", "max", str(root)])
    else:
        log.debug("not expanding %s: %s cannot grow", dev, fs_type or "no filesystem")


def _expand_back(dev: str, fs_type: str, before: dict) -> None:
    """Give a shrunk filesystem back its size from before the capture."""
    fills_device = (device_bytes(dev) - before["volume_bytes"]
                    < before["block_size"] + NTFS_BACKUP_BOOT_BYTES)
    expand(dev, fs_type, None if fills_device else before["volume_bytes"])


@contextmanager
def shrunk_for_capture(dev: str, fs_type: str, enabled: bool,
                       threshold_bytes: int = DEFAULT_THRESHOLD_BYTES,
                       slack_bytes: int | None = None, record: dict | None = None,
                       pins_at: PinsAt = (0, 512)) -> Iterator[int | None]:
    """Shrink a big ext/NTFS filesystem for the capture and always grow it back afterwards.

    record and pins_at are handed to `shrink` (boot loader blocks, schema record).
    """
    if not enabled or fs_type not in SHRINKABLE:
        yield None
        return
    try:
        before = filesystem_info(dev, fs_type)
    except CommandError as exc:
        # Unreadable sizes mean no safe shrink; the capture itself says if the volume is bad.
        log.warning("not shrinking %s on %s: %s", fs_type, dev, exc)
        before = None
    if before is None or before["volume_bytes"] <= threshold_bytes:
        yield None
        return
    try:
        new_size = shrink(dev, fs_type, slack_bytes, record, pins_at)
    except BaseException:
        _expand_back(dev, fs_type, before)
        raise
    try:
        yield new_size
    finally:
        if new_size is not None:
            log.info("growing %s back to %d bytes after the capture", dev,
                     before["volume_bytes"])
            _expand_back(dev, fs_type, before)
