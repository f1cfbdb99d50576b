"""Minimum sizes of partitions, logical volumes, volume groups and disks (REFERENCE.md §4).

Rules, first that applies: forced fixed → original size; custom size (MB, GB, % of the
destination) → that; not a filesystem we can shrink (anything but ext2/3/4 and NTFS; XFS can
only grow), swap, or original ≤ 5 GiB → original size (fixed); otherwise the space the
content needs plus slack (see `content_need`). docs/planning.md explains the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.imaging import selection as sel
from app.imaging.geometry import gpt_tail_sectors
from app.imaging.units import GIB, MIB, align_sectors, custom_size_bytes, round_up, to_sectors

SHRINKABLE = frozenset({"ext2", "ext3", "ext4", "ntfs"})
GROW_ONLY = frozenset({"xfs"})
GROWABLE = SHRINKABLE | GROW_ONLY
SMALL_BYTES = 5 * GIB
SLACK_BASE_BYTES = 512 * MIB
LVM_METADATA_BYTES = MIB


@dataclass(slots=True)
class Need:
    """How a partition or LV is sized: fixed, custom or dynamic, with its byte figures."""

    kind: str  # "fixed" (original size), "custom" (a user size) or "dynamic"
    min_bytes: int | None  # fixed: original; custom: target (None for % unknown); dynamic: min
    original_bytes: int  # the source size, also the weight of a dynamic share
    content_bytes: int  # what the content needs at least (a custom size may not go below)
    percent: float | None = None  # custom % of the destination's usable space


def slack_bytes(used_bytes: int) -> int:
    """Return the free space kept in a shrunk filesystem: 10 % of its use plus 512 MiB."""
    return used_bytes // 10 + SLACK_BASE_BYTES


def held_bytes(fs: dict) -> int:
    """Return the size of the filesystem a block image holds (shrunk or as it was)."""
    if fs.get("shrunk"):
        return fs.get("image_bytes") or fs["min_bytes"]
    return fs["volume_bytes"]


def content_need(fs: dict | None, original_bytes: int, image_type: str = "block") -> int:
    """Return the smallest container that holds this filesystem's image, capped at original."""
    if fs is None or fs["type"] not in GROWABLE:
        return original_bytes
    if image_type == "file" and fs["type"] not in GROW_ONLY:
        # A file image is extracted onto a fresh filesystem: only the files count, not how
        # far resize2fs or ntfsresize could shrink the source (its blocks stay behind).
        return min(fs["used_bytes"] + slack_bytes(fs["used_bytes"]), original_bytes)
    need = max(fs["min_bytes"], fs["used_bytes"]) + slack_bytes(fs["used_bytes"])
    # partclone restores a filesystem only into a partition at least its size.
    return min(max(need, held_bytes(fs)), original_bytes)


def size_need(fs: dict | None, original_bytes: int, entry: dict | None,
              image_type: str = "block", destination_bytes: int | None = None) -> Need:
    """Classify one partition or LV by the rules, from its filesystem and selection entry."""
    content = content_need(fs, original_bytes, image_type)
    if sel.forced_fixed(entry):
        return Need("fixed", original_bytes, original_bytes, original_bytes)
    custom = sel.custom_size(entry)
    if custom is not None:
        percent = float(custom["value"]) if custom["unit"] == "%" else None
        fixed_fs = fs is None or fs["type"] not in GROWABLE
        return Need("custom", custom_size_bytes(custom, destination_bytes), original_bytes,
                    original_bytes if fixed_fs else content, percent)
    if (fs is None or fs["type"] not in GROWABLE or fs["type"] == "swap"
            or original_bytes <= SMALL_BYTES):
        return Need("fixed", original_bytes, original_bytes, original_bytes)
    return Need("dynamic", content, original_bytes, content)


def volume_group_overhead(group: dict, pv_bytes: int) -> int:
    """Return the PV bytes outside the VG's extents (metadata), at least 1 MiB."""
    return max(pv_bytes - group["size_bytes"], LVM_METADATA_BYTES)


def lv_needs(group: dict, selection_disk: dict | None, image_type: str = "block",
             destination_bytes: int | None = None) -> list[tuple[dict, Need]]:
    """Return (lv, need) for each LV of a volume group selected for deploy."""
    result = []
    for lv in group["logical_volumes"]:
        entry = sel.selected_lv(selection_disk, group["name"], lv["name"])
        if sel.deploys(entry):
            result.append((lv, size_need(lv["filesystem"], lv["size_bytes"], entry,
                                         image_type, destination_bytes)))
    return result


def volume_group_minimum(group: dict, pv_bytes: int, selection_disk: dict | None,
                         image_type: str = "block",
                         destination_bytes: int | None = None) -> int | None:
    """Return the smallest PV that holds the selected LVs at their minimums, or None."""
    extent = group["extent_bytes"]
    total = volume_group_overhead(group, pv_bytes)
    for _lv, need in lv_needs(group, selection_disk, image_type, destination_bytes):
        if need.min_bytes is None:
            return None
        total += round_up(max(need.min_bytes, 1), extent)
    return total


def _group_of(part: dict, disk: dict) -> dict | None:
    """Return the volume group whose PV is this partition, or None."""
    for group in disk.get("volume_groups") or []:
        if group["pv_partition"] == part["number"]:
            return group
    return None


def partition_need(part: dict, disk: dict, selection_part: dict | None,
                   selection_disk: dict | None = None, image_type: str = "block",
                   destination_bytes: int | None = None) -> Need:
    """Classify one (non-extended) partition, an LVM PV sized by its volume group."""
    original = part["size_sectors"] * disk["logical_sector_size"]
    group = _group_of(part, disk)
    need = size_need(part["filesystem"], original, selection_part, image_type,
                     destination_bytes)
    if group is None or need.kind == "fixed" and sel.forced_fixed(selection_part):
        return need
    minimum = volume_group_minimum(group, original, selection_disk, image_type,
                                   destination_bytes)
    if need.kind == "custom":
        # A PV may be given any custom size that still holds its volume group.
        need.content_bytes = minimum or 0
        return need
    return Need("dynamic", minimum, original, minimum or 0)


def partition_minimum(part: dict, disk: dict, selection_part: dict | None,
                      destination_bytes: int | None = None, *,
                      selection_disk: dict | None = None,
                      image_type: str = "block") -> int | None:
    """Return a partition's minimum bytes; an extended one holds its logicals and EBR gaps."""
    if part["role"] == "extended":
        total = 0
        for logical in active_partitions(disk, selection_disk):
            if logical["role"] == "logical":
                size = partition_minimum(
                    logical, disk, sel.selected_partition(selection_disk, logical["number"]),
                    destination_bytes, selection_disk=selection_disk, image_type=image_type)
                if size is None:
                    return None
                total += MIB + round_up(size, MIB)
        return total
    return partition_need(part, disk, selection_part, selection_disk, image_type,
                          destination_bytes).min_bytes


def active_partitions(disk: dict, selection_disk: dict | None) -> list[dict]:
    """Return the partitions deployed, in disk order; an extended one only with logicals."""
    chosen = [p for p in disk["partitions"]
              if p["role"] != "extended"
              and sel.deploys(sel.selected_partition(selection_disk, p["number"]))]
    if any(p["role"] == "logical" for p in chosen):
        chosen += [p for p in disk["partitions"] if p["role"] == "extended"]
        chosen.sort(key=lambda p: p["start_sector"])
    return chosen


def layout_cost_sectors(needs: list[tuple[dict, Need]], sector_size: int) -> int | None:
    """Return the sectors the partitions take at their minimums, with alignment and EBRs."""
    align = align_sectors(sector_size)
    total = 0
    for part, need in needs:
        if need.min_bytes is None:
            return None
        total += round_up(to_sectors(need.min_bytes, sector_size), align)
        if part["role"] == "logical":
            total += align  # the EBR that precedes every logical partition
    return total


def disk_minimum(disk: dict, selection_disk: dict | None = None,
                 destination_bytes: int | None = None, sector_size: int | None = None,
                 image_type: str = "block") -> int | None:
    """Return the smallest destination (bytes) a disk deploys to, None with unknown % sizes."""
    ss = sector_size or disk["logical_sector_size"]
    needs = [(p, partition_need(p, disk, sel.selected_partition(selection_disk, p["number"]),
                                selection_disk, image_type, destination_bytes))
             for p in active_partitions(disk, selection_disk) if p["role"] != "extended"]
    cost = layout_cost_sectors(needs, ss)
    if cost is None:
        return None
    tail = gpt_tail_sectors(ss) if disk["table"] == "gpt" else 0
    return (align_sectors(ss) + cost + tail) * ss


def disk_minimums(schema: dict, selection: dict | None) -> list[int | None]:
    """Return the minimum destination bytes of every schema disk, in schema order.

    The schema may be raw JSON data; an invalid schema or selection gives None per disk
    (nothing can be known), so pages listing profiles never fail on a bad upload.
    """
    from app.imaging.errors import PlanError
    from app.imaging.schema import SchemaError, validate_schema

    try:
        schema = validate_schema(schema)
        sel.check_selection(selection)
    except (SchemaError, PlanError):
        disks = schema.get("disks") if isinstance(schema, dict) else None
        return [None] * (len(disks) if isinstance(disks, list) else 0)
    image_type = schema.get("image_type", "block")
    return [disk_minimum(d, sel.selected_disk(selection, d["index"]), image_type=image_type)
            for d in schema["disks"]]
