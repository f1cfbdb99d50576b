"""Building blocks of disk plans shared by the partition methods."""

from __future__ import annotations

from app.imaging.errors import PlanError
from app.imaging.geometry import (
    MBR_LIMIT_SECTORS,
    gpt_first_usable,
    gpt_tail_sectors,
    usable_range,
)
from app.imaging.units import align_sectors, human

METHODS = ("original", "dynamic", "standard", "custom_script")
SECTOR_SIZES = (512, 1024, 2048, 4096)


def check_destination(destination: dict) -> tuple[int, int, int]:
    """Return (size_bytes, logical, physical sector size) of a valid destination."""
    try:
        size = int(destination["size_bytes"])
        lss = int(destination.get("logical_sector_size") or 512)
        pss = int(destination.get("physical_sector_size") or lss)
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanError(f"a destination disk needs integer size_bytes and sector sizes "
                        f"({exc})") from exc
    if lss not in SECTOR_SIZES:
        raise PlanError(f"logical sector size {lss} is not one of {SECTOR_SIZES}")
    if size < 4 * 1024 * 1024:
        raise PlanError(f"destination disk of {size} bytes is too small for any table")
    return size, lss, pss


def partition_entry(part: dict, number: int, start: int, size: int, *, fixed: bool,
                    grow: bool, restore: bool, randomize: bool, gpt: bool) -> dict:
    """Return one planned partition as plain data (docs/planning.md)."""
    fs = part.get("filesystem")
    return {
        "number": number, "start_sector": start, "size_sectors": size,
        "type": part["type"], "uuid": None if (randomize or not gpt) else part.get("uuid"),
        "name": part.get("name") or "", "attributes": part.get("attributes") or "",
        "role": part["role"], "bootable": bool(part.get("bootable")),
        "filesystem": fs["type"] if fs else None,
        "source_partition": part.get("number") if restore else None,
        "grow": grow, "fixed": fixed, "restore": restore, "lv": None,
    }


def base_plan(disk: dict, method: str, table: str, size: int, lss: int, pss: int,
               options: dict, selection_disk: dict | None) -> dict:
    """Return the fields every disk plan has, before partitions are filled in."""
    total = size // lss
    _start, last = usable_range(table, total, lss)
    first = gpt_first_usable(lss) if table == "gpt" else 1
    randomize = bool(options.get("randomize_guids"))
    disk_id = disk.get("disk_id") if table == disk["table"] else None
    if table == "gpt" and randomize:
        disk_id = None
    return {
        "disk_index": disk["index"], "method": method, "table": table,
        "logical_sector_size": lss, "physical_sector_size": pss, "size_bytes": size,
        "total_sectors": total, "first_usable_sector": first, "last_usable_sector": last,
        "minimum_bytes": None, "disk_id": disk_id,
        "destination": (selection_disk or {}).get("destination"),
        "sfdisk_script": "", "partitions": [], "volume_groups": [],
        "randomize_guids": randomize, "restore_original_table": False, "custom_script": None,
    }


def too_small(disk: dict, size: int, lss: int, table: str):
    """Return a function building the 'destination too small' message from needed sectors."""

    def message(needed_sectors: int) -> str:
        align = align_sectors(lss)
        tail = gpt_tail_sectors(lss) if table == "gpt" else 0
        minimum = (align + needed_sectors + tail) * lss
        text = (f"destination disk {disk['index']} is too small: {size} bytes ({human(size)}) "
                f"given, the image needs at least {minimum} bytes ({human(minimum)})")
        if table == "mbr" and minimum > MBR_LIMIT_SECTORS * lss:
            text += f"; an MBR table addresses at most {human(MBR_LIMIT_SECTORS * lss)}"
        return text

    return message


def layout_region(plan: dict) -> tuple[int, int]:
    """Return (first aligned start, sectors up to the last usable one) of a plan's disk."""
    start = align_sectors(plan["logical_sector_size"])
    return start, plan["last_usable_sector"] + 1 - start
