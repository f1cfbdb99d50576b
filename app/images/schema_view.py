"""Turn a schema v1 disk (docs/schema.md) into rows for the read-only Schema tab."""

from __future__ import annotations

# MBR type codes worth naming; GPT type GUIDs worth naming.
TYPE_NAMES = {
    "05": "Extended", "0f": "Extended (LBA)", "07": "NTFS/exFAT", "0b": "FAT32",
    "0c": "FAT32 (LBA)",
    "82": "Linux swap", "83": "Linux", "8e": "Linux LVM", "ef": "EFI System", "27": "WinRE",
    "C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI System",
    "E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
    "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Microsoft basic data",
    "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery",
    "0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux filesystem",
    "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
    "E6D6D379-F507-44C2-A23C-238F2A3DF928": "Linux LVM",
    "21686148-6449-6E6F-744E-656564454649": "BIOS boot",
    "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "Linux root (x86-64)",
}


def type_name(code: str | None) -> str:
    """Return a readable name for an MBR type code or GPT type GUID, else the code itself."""
    if not code:
        return ""
    return TYPE_NAMES.get(code) or TYPE_NAMES.get(code.upper()) or TYPE_NAMES.get(code.lower()) \
        or code


def _filesystem_cells(fs: dict | None) -> dict:
    """Return the filesystem columns of a partition or logical volume row."""
    fs = fs or {}
    return {
        "fs_type": fs.get("type") or "",
        "fs_uuid": fs.get("uuid") or "",
        "fs_label": fs.get("label") or "",
        "volume_bytes": fs.get("volume_bytes"),
        "used_bytes": fs.get("used_bytes"),
        "min_bytes": fs.get("min_bytes"),
        "shrunk": bool(fs.get("shrunk")),
    }


def describe_disk(disk: dict) -> dict:
    """Return a disk's facts, partition rows and LVM rows, sizes in bytes."""
    sector = int(disk.get("logical_sector_size") or 512)
    partitions = []
    for part in disk.get("partitions", []):
        row = {
            "number": part.get("number"),
            "role": part.get("role") or "primary",
            "start_bytes": int(part.get("start_sector") or 0) * sector,
            "size_bytes": int(part.get("size_sectors") or 0) * sector,
            "type": type_name(part.get("type")),
            "name": part.get("name") or "",
            "uuid": part.get("uuid") or "",
            "bootable": bool(part.get("bootable")),
            "lvm_vg": part.get("lvm_vg") or "",
            "efi_boot": part.get("efi_boot"),
        }
        row.update(_filesystem_cells(part.get("filesystem")))
        partitions.append(row)
    volume_groups = []
    for vg in disk.get("volume_groups") or []:
        lvs = []
        for lv in vg.get("logical_volumes", []):
            lv_row = {"name": lv.get("name", ""), "uuid": lv.get("uuid") or "",
                      "size_bytes": lv.get("size_bytes")}
            lv_row.update(_filesystem_cells(lv.get("filesystem")))
            lvs.append(lv_row)
        volume_groups.append({
            "name": vg.get("name", ""), "uuid": vg.get("uuid") or "",
            "pv_partition": vg.get("pv_partition"), "size_bytes": vg.get("size_bytes"),
            "logical_volumes": lvs,
        })
    return {
        "index": disk.get("index"),
        "name": disk.get("name") or f"disk {disk.get('index', '?')}",
        "size_bytes": disk.get("size_bytes"),
        "table": (disk.get("table") or "").upper(),
        "disk_id": disk.get("disk_id") or "",
        "logical_sector_size": sector,
        "physical_sector_size": disk.get("physical_sector_size"),
        "boot_partition": disk.get("boot_partition"),
        "partitions": partitions,
        "volume_groups": volume_groups,
    }
