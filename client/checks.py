"""Checks before an upload: BitLocker, hibernation, and partition tables that cannot be imaged."""

from __future__ import annotations

import logging
import os
import re
import stat
import struct
import zlib

from client.resize import device_bytes
from client.run import ClientError, run

log = logging.getLogger("castor.client")

BITLOCKER_SIGNATURE = b"-FVE-FS-"
GPT_SIGNATURE = b"EFI PART"
MBR_PROTECTIVE = 0xEE
HIBERNATION_FILE = "hiberfil.sys"
VERIFY_ERROR = re.compile(r"^(Main|Backup) (header|partition table): ERROR", re.MULTILINE)


def read_at(path: str, offset: int, length: int) -> bytes:
    """Read length bytes at offset of a device or image file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def sector_size(disk_path: str) -> int:
    """Return the logical sector size of a block device (512 for an image file)."""
    if stat.S_ISBLK(os.stat(disk_path).st_mode):
        return int(run(["blockdev", "--getss", disk_path]).strip())
    return 512


def has_bitlocker(dev: str) -> bool:
    """Tell whether a partition holds a BitLocker volume (signature at offset 3 of sector 0)."""
    return read_at(dev, 3, len(BITLOCKER_SIGNATURE)) == BITLOCKER_SIGNATURE


def has_hibernation_file(dev: str, fs_type: str) -> bool:
    """Tell whether an NTFS volume has hiberfil.sys in its root (read without mounting)."""
    if fs_type != "ntfs":
        return False
    # ntfsls reads the volume directly, so a hibernated (unmountable) volume is seen too.
    names = run(["ntfsls", "-f", dev], timeout=120).splitlines()
    return any(name.strip().lower() == HIBERNATION_FILE for name in names)


def mbr_entries(sector: bytes) -> list[dict] | None:
    """Parse the four primary MBR entries; None when sector 0 has no boot signature."""
    if len(sector) < 512 or sector[510:512] != b"\x55\xaa":
        return None
    entries = []
    for slot in range(4):
        raw = sector[446 + 16 * slot: 462 + 16 * slot]
        kind = raw[4]
        start, count = struct.unpack_from("<II", raw, 8)
        if kind:
            entries.append({"slot": slot + 1, "type": kind, "start": start, "sectors": count})
    return entries


def gpt_header_valid(block: bytes) -> bool:
    """Tell whether a sector holds a GPT header with a correct CRC32."""
    if block[:8] != GPT_SIGNATURE:
        return False
    size, crc = struct.unpack_from("<II", block, 12)
    if size < 92 or size > len(block):
        return False
    header = bytearray(block[:size])
    header[16:20] = b"\0\0\0\0"
    return zlib.crc32(bytes(header)) == crc


def gpt_entries_valid(disk_path: str, block: bytes, sector: int) -> bool:
    """Tell whether the partition entry array a GPT header points to matches its CRC32."""
    entries_lba, count, size, crc = struct.unpack_from("<QIII", block, 72)
    if not count or size < 128 or count * size > 1 << 24:
        return False
    return zlib.crc32(read_at(disk_path, entries_lba * sector, count * size)) == crc


def sgdisk_verify_problems(output: str) -> list[str]:
    """Extract the problems from `sgdisk -v` output (stdout and stderr together)."""
    problems = [f"sgdisk: {m.group(0)}" for m in VERIFY_ERROR.finditer(output)]
    for paragraph in re.split(r"\n\s*\n", output):
        text = " ".join(paragraph.split())
        # A disk grown after partitioning (a VM disk) has its backup header short of the end;
        # the image is still whole and deploy writes a fresh table, so that is no reason to stop.
        if text.startswith("Problem:") and "doesn't reside at the end of the disk" not in text:
            problems.append(f"sgdisk: {text}")
    return problems


def gpt_state(disk_path: str) -> dict:
    """Read the MBR and both GPT headers of a disk and say what is there."""
    sector = sector_size(disk_path)
    last_lba = device_bytes(disk_path) // sector - 1
    primary = read_at(disk_path, sector, sector)
    backup_lba = last_lba
    if gpt_header_valid(primary):
        backup_lba = min(struct.unpack_from("<Q", primary, 32)[0], last_lba)
    backup = read_at(disk_path, backup_lba * sector, sector)
    return {
        "mbr": mbr_entries(read_at(disk_path, 0, 512)),
        "primary_signature": primary[:8] == GPT_SIGNATURE,
        "primary_valid": gpt_header_valid(primary)
        and gpt_entries_valid(disk_path, primary, sector),
        "backup_signature": backup[:8] == GPT_SIGNATURE,
        "backup_valid": gpt_header_valid(backup) and gpt_entries_valid(disk_path, backup, sector),
    }


def is_hybrid(state: dict) -> bool:
    """Tell whether a disk has GPT structures next to an MBR with real (non-0xEE) entries."""
    has_gpt = state["primary_signature"] or state["backup_signature"]
    mbr = state["mbr"] or []
    return has_gpt and any(entry["type"] != MBR_PROTECTIVE for entry in mbr)


def table_problems(disk_path: str) -> list[str]:
    """List what makes a disk's partition table unsafe to image (empty when it is fine)."""
    state = gpt_state(disk_path)
    mbr = state["mbr"] or []
    protective = any(entry["type"] == MBR_PROTECTIVE for entry in mbr)
    problems = []
    if is_hybrid(state):
        problems.append("the disk has both a GPT and a non-protective (hybrid) MBR")
    if not (state["primary_signature"] or state["backup_signature"] or protective):
        return problems  # a plain MBR disk (or no table): nothing GPT to verify
    if not state["primary_valid"]:
        problems.append("the primary GPT header or its partition entries are damaged")
    if not state["backup_valid"]:
        problems.append("the backup GPT header or its partition entries are damaged or missing")
    if not problems:
        proc_output = run(["sgdisk", "-v", disk_path], check=False, timeout=120)
        problems += sgdisk_verify_problems(proc_output)
    return problems


def remove_gpt_structures(disk_path: str) -> None:
    """Destroy the GPT structures of a disk whose real table is its MBR, keeping the MBR."""
    # sgdisk --zap erases both GPT headers and entry arrays and leaves sector 0 alone. It exits
    # 2 when it also found a valid MBR ("invalid partition data"), so judge by the result.
    run(["sgdisk", "--zap", disk_path], check=False, timeout=120, input="")
    sector = sector_size(disk_path)
    mbr = gpt_state(disk_path)["mbr"] or []
    fd = os.open(disk_path, os.O_RDWR)
    try:
        # sgdisk leaves a header it did not load (a lone backup, say): blank any header
        # sector still signed, which is all it takes for no tool to see a GPT there.
        for lba in (1, device_bytes(disk_path) // sector - 1):
            if os.pread(fd, len(GPT_SIGNATURE), lba * sector) == GPT_SIGNATURE:
                os.pwrite(fd, bytes(sector), lba * sector)
        if any(e["type"] != MBR_PROTECTIVE for e in mbr):
            # A hybrid MBR keeps its 0xEE entry; without a GPT behind it, it would only
            # confuse the firmware and partitioning tools, so clear that entry alone.
            for entry in mbr:
                if entry["type"] == MBR_PROTECTIVE:
                    os.pwrite(fd, bytes(16), 446 + 16 * (entry["slot"] - 1))
        os.fsync(fd)
    finally:
        os.close(fd)
    state = gpt_state(disk_path)
    if state["primary_signature"] or state["backup_signature"]:
        raise ClientError(f"could not remove the GPT structures of {disk_path}")
    log.info("removed the GPT structures of %s (its MBR is the table now)", disk_path)


def run_upload_checks(disk_path: str, partitions: list[dict], options: dict) -> None:
    """Refuse an upload the image would be broken by, honouring the profile's skip options."""
    problems = table_problems(disk_path)
    if problems and options.get("remove_gpt_structures") and is_hybrid(gpt_state(disk_path)):
        remove_gpt_structures(disk_path)
        problems = table_problems(disk_path)
    if problems:
        hint = ("if this disk is MBR, enable 'remove GPT structures'"
                if is_hybrid(gpt_state(disk_path)) else "repair the table (gdisk) first")
        raise ClientError(f"partition table check failed on {disk_path}: "
                          f"{'; '.join(problems)} ({hint})")
    for part in partitions:
        number, dev, fs_type = part["number"], part["device"], part.get("fs_type") or ""
        if not options.get("skip_bitlocker_check") and has_bitlocker(dev):
            raise ClientError(
                f"BitLocker check failed: partition {number} ({dev}) is BitLocker-encrypted; "
                "decrypt it first, or enable 'skip BitLocker check'")
        if not options.get("skip_hibernation_check") and has_hibernation_file(dev, fs_type):
            raise ClientError(
                f"hibernation check failed: partition {number} ({dev}) has {HIBERNATION_FILE}; "
                "shut Windows down fully (powercfg /h off), or enable 'skip hibernation check'")

