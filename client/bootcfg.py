"""Make a deployed disk boot: partition GUIDs, NTFS boot sector geometry, NVRAM, final action."""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import struct
from pathlib import Path

from client.run import ClientError, run

log = logging.getLogger("castor.client")

EFI_FIRMWARE_DIR = Path("/sys/firmware/efi")
GUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
MBR_SIGNATURE = re.compile(r"^0x[0-9A-Fa-f]{1,8}$")
NTFS_OEM = b"NTFS    "
BOOT_ENTRY = re.compile(r"^Boot([0-9A-Fa-f]{4})\*?\s+(.*?)(?:\t.*)?$")
COMPLETED_ACTIONS = {"reboot": ["reboot"], "power_off": ["poweroff"], "exit_to_shell": []}


def restore_partition_guids(disk_path: str, table: str, partitions: list[dict],
                            disk_id: str | None = None) -> None:
    """Give the deployed partitions (and disk) the GUIDs of the source so boot entries match."""
    if table != "gpt":
        # An MBR disk has no partition GUIDs; Windows' BCD does find its disk by signature.
        if disk_id and MBR_SIGNATURE.match(disk_id):
            run(["sfdisk", "--disk-id", disk_path, disk_id])
        return
    argv = ["sgdisk"]
    for part in partitions:
        guid = part.get("uuid") or part.get("guid")
        if not guid:
            continue
        if not GUID.match(guid):
            raise ClientError(f"partition {part['number']}: {guid!r} is not a GUID")
        argv += ["-u", f"{int(part['number'])}:{guid}"]
    if disk_id:
        if not GUID.match(disk_id):
            raise ClientError(f"{disk_id!r} is not a disk GUID")
        argv += ["-U", disk_id]
    if len(argv) > 1:
        run([*argv, disk_path])


def randomize_guids(disk_path: str) -> None:
    """Give the disk and every partition new random GUIDs, so clones never collide."""
    run(["sgdisk", "-G", disk_path])


def fix_ntfs_boot_sector(dev: str, start_sector: int, heads: int | None = None,
                         sectors_per_track: int | None = None) -> None:
    """Write the partition's start LBA (and geometry) into both NTFS boot sectors."""
    if not 0 <= start_sector <= 0xFFFFFFFF:
        raise ClientError(f"start sector {start_sector} does not fit the NTFS boot sector")
    fd = os.open(dev, os.O_RDWR)
    try:
        boot = os.pread(fd, 512, 0)
        if boot[3:11] != NTFS_OEM:
            raise ClientError(f"{dev} does not start with an NTFS boot sector")
        sector_bytes = struct.unpack_from("<H", boot, 0x0B)[0]
        total_sectors = struct.unpack_from("<Q", boot, 0x28)[0]
        # The backup copy sits in the sector just after the volume's last counted sector.
        offsets = [0, total_sectors * sector_bytes]
        for offset in offsets:
            sector = bytearray(os.pread(fd, 512, offset))
            if sector[3:11] != NTFS_OEM:
                log.warning("%s: no NTFS boot sector at byte %d, left alone", dev, offset)
                continue
            struct.pack_into("<I", sector, 0x1C, start_sector)
            if sectors_per_track is not None:
                struct.pack_into("<H", sector, 0x18, sectors_per_track)
            if heads is not None:
                struct.pack_into("<H", sector, 0x1A, heads)
            os.pwrite(fd, bytes(sector), offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def ntfs_boot_fields(dev: str, offset: int = 0) -> dict:
    """Read the geometry fields of an NTFS boot sector (at offset bytes into dev)."""
    fd = os.open(dev, os.O_RDONLY)
    try:
        boot = os.pread(fd, 512, offset)
    finally:
        os.close(fd)
    return {"sectors_per_track": struct.unpack_from("<H", boot, 0x18)[0],
            "heads": struct.unpack_from("<H", boot, 0x1A)[0],
            "hidden_sectors": struct.unpack_from("<I", boot, 0x1C)[0],
            "total_sectors": struct.unpack_from("<Q", boot, 0x28)[0],
            "sector_bytes": struct.unpack_from("<H", boot, 0x0B)[0]}


def loader_path(loader: str) -> str:
    """Write an EFI loader path the way firmware expects it: backslashes, from the ESP root."""
    path = loader.replace("/", "\\")
    return path if path.startswith("\\") else "\\" + path


def parse_boot_entries(output: str) -> dict[str, list[str]]:
    """Map each boot entry label to its Boot#### numbers from `efibootmgr` output."""
    entries: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = BOOT_ENTRY.match(line.strip())
        if match:
            entries.setdefault(match.group(2).strip(), []).append(match.group(1).upper())
    return entries


def nvram_commands(disk_path: str, esp_partition: int, entries: list[dict],
                   existing: dict[str, list[str]] | None = None) -> list[list[str]]:
    """Return the efibootmgr commands that (re)create the boot entries, first entry first."""
    commands = []
    labels = {entry["label"] for entry in entries}
    for label, numbers in sorted((existing or {}).items()):
        if label in labels:
            # Entries left by an earlier deploy would pile up; replace them.
            commands += [["efibootmgr", "-q", "-b", number, "-B"] for number in numbers]
    # efibootmgr --create puts each new entry first in BootOrder: create the last one first.
    for entry in reversed(entries):
        commands.append(["efibootmgr", "-q", "--create", "--disk", disk_path,
                         "--part", str(int(esp_partition)), "--label", entry["label"],
                         "--loader", loader_path(entry["loader"])])
    return commands


def network_first_order(verbose: str, labels: set[str]) -> list[str] | None:
    """Return a BootOrder keeping this boot's network entry ahead of the new entries.

    `efibootmgr --create` puts a new entry first, so the machine would never boot from the
    network again, and Castor could not reach it with its next task. When this environment
    was network-booted (BootCurrent's device path names a MAC), that entry stays first, the
    new entries follow, then the rest; None when nothing needs to change.
    """
    current = re.search(r"^BootCurrent:\s*([0-9A-Fa-f]{4})", verbose, re.M)
    order = re.search(r"^BootOrder:\s*([0-9A-Fa-f,]+)", verbose, re.M)
    if not current or not order:
        return None
    paths, names = {}, {}
    for line in verbose.splitlines():
        match = re.match(r"^Boot([0-9A-Fa-f]{4})\*?\s+([^\t]*)\t?(.*)$", line.strip())
        if match:
            number = match.group(1).upper()
            names[number], paths[number] = match.group(2).strip(), match.group(3)
    number = current.group(1).upper()
    if "MAC(" not in paths.get(number, ""):
        return None
    numbers = [n.upper() for n in order.group(1).split(",") if n]
    new = [n for n in numbers if names.get(n) in labels]
    wanted = [number] + new + [n for n in numbers if n != number and n not in new]
    return None if wanted == numbers else wanted


def update_nvram(disk_path: str, esp_partition: int, entries: list[dict],
                 firmware_dir: Path = EFI_FIRMWARE_DIR) -> list[list[str]]:
    """Create the EFI boot entries when booted in EFI mode; return the commands run."""
    if not entries:
        return []
    if not firmware_dir.exists():
        log.info("not updating NVRAM: this machine did not boot in EFI mode")
        return []
    if not stat.S_ISBLK(os.stat(disk_path).st_mode):
        # An image file is another machine's disk: its entries belong in that machine's NVRAM.
        log.info("not updating NVRAM: %s is an image file, not this machine's disk", disk_path)
        return []
    if not shutil.which("efibootmgr"):
        raise ClientError("cannot update NVRAM: efibootmgr is not installed in the client")
    commands = nvram_commands(disk_path, esp_partition, entries,
                              parse_boot_entries(run(["efibootmgr"])))
    for argv in commands:
        log.info("NVRAM: %s", " ".join(argv))
        run(argv)
    order = network_first_order(run(["efibootmgr", "-v"]), {e["label"] for e in entries})
    if order:
        argv = ["efibootmgr", "-q", "-o", ",".join(order)]
        log.info("NVRAM: %s (the network entry this machine booted from stays first)",
                 " ".join(argv))
        run(argv)
        commands.append(argv)
    # What the firmware holds now, in the task's log: the entry and where BootOrder puts it.
    log.info("NVRAM boot entries now:\n%s", run(["efibootmgr"]).strip())
    return commands


def task_completed_action(action: str, dry_run: bool) -> list[str]:
    """Return the command for the profile's task completed action ([] when nothing to run)."""
    if action not in COMPLETED_ACTIONS:
        raise ClientError(f"unknown task completed action {action!r}")
    if dry_run:
        return []
    return list(COMPLETED_ACTIONS[action])
