"""Dynamic partitioning: exact proportional shares above minimums, 1 MiB aligned."""

from __future__ import annotations

from app.imaging import selection as sel
from app.imaging.errors import PlanError
from app.imaging.minsize import (
    GROWABLE,
    Need,
    active_partitions,
    held_bytes,
    lv_needs,
    partition_need,
    volume_group_overhead,
)
from app.imaging.units import align_sectors, ceil_div, human, round_up, to_sectors


def waterfill(available: int, minimums: list[int], weights: list[int]) -> list[int]:
    """Share `available` units in proportion to weights, none below its minimum, all used.

    Items whose proportional share falls below their minimum get exactly the minimum and
    leave the share; the rest split what remains. Sorting by minimum/weight makes this
    one pass: pinning an item only lowers the share per weight of the others. Rounding
    leftovers go to the last item that was not pinned.
    """
    count = len(minimums)
    if sum(minimums) > available:
        raise ValueError("minimums exceed the available units")
    if count == 0:
        return []
    order = sorted(range(count), key=lambda i: minimums[i] / weights[i], reverse=True)
    result = [0] * count
    left, weight = available, sum(weights)
    k = 0
    while k < count:
        i = order[k]
        if minimums[i] * weight <= left * weights[i]:
            break
        result[i] = minimums[i]
        left -= minimums[i]
        weight -= weights[i]
        k += 1
    rest = order[k:]
    given = 0
    for i in rest:
        result[i] = left * weights[i] // weight
        given += result[i]
    result[max(rest)] += left - given
    return result


def _target_sectors(need: Need, region: int, ss: int, align: int, what: str) -> int:
    """Return the sectors of a fixed or custom item; refuse a custom size below its content."""
    if need.kind == "fixed":
        return to_sectors(need.original_bytes, ss)
    if need.percent is not None:
        size = max(align, region * need.percent // 100 // align * align)
    else:
        size = to_sectors(need.min_bytes, ss)
    if size * ss < need.content_bytes:
        raise PlanError(f"the custom size of {what} ({human(size * ss)}) is smaller than its "
                        f"content needs ({need.content_bytes} bytes, "
                        f"{human(need.content_bytes)})")
    return int(size)


def plan_partition_sizes(items: list[tuple[dict, Need]], region: int, ss: int,
                         minimum_message) -> list[int]:
    """Return the size in sectors of each item so all fit in `region` sectors, aligned."""
    align = align_sectors(ss)
    sizes: list[int | None] = []
    reserved = 0
    dynamic: list[int] = []
    for k, (part, need) in enumerate(items):
        if part["role"] == "logical":
            reserved += align  # its EBR
        if need.kind == "dynamic":
            sizes.append(None)
            dynamic.append(k)
            continue
        size = _target_sectors(need, region, ss, align, f"partition {part['number']}")
        sizes.append(size)
        reserved += round_up(size, align)
    mins = [ceil_div(to_sectors(items[k][1].min_bytes, ss), align) for k in dynamic]
    chunks = (region - reserved) // align if region >= reserved else -1
    if chunks < sum(mins):
        raise PlanError(minimum_message(reserved + sum(mins) * align))
    shares = waterfill(chunks, mins, [items[k][1].original_bytes for k in dynamic])
    for k, share in zip(dynamic, shares, strict=True):
        sizes[k] = share * align
    if dynamic and dynamic[-1] == len(items) - 1:
        # The sub-alignment rest of the disk goes to a dynamic partition that ends it.
        sizes[-1] += region - reserved - chunks * align
    return [int(s) for s in sizes]


def dynamic_items(disk: dict, selection_disk: dict | None, image_type: str,
                  destination_bytes: int) -> list[tuple[dict, Need]]:
    """Return (partition, need) for every deployed partition except the extended one."""
    return [(p, partition_need(p, disk, sel.selected_partition(selection_disk, p["number"]),
                               selection_disk, image_type, destination_bytes))
            for p in active_partitions(disk, selection_disk) if p["role"] != "extended"]


def place(items: list[tuple[dict, Need]], sizes: list[int], first: int,
          align: int) -> tuple[list[tuple[dict, int, int]], tuple[int, int] | None]:
    """Return (partition, start, size) in order and the extended span (start, size) or None."""
    placed = []
    pos = first
    ext_start = ext_end = None
    for (part, _need), size in zip(items, sizes, strict=True):
        if part["role"] == "logical":
            if ext_start is None:
                ext_start = pos
            pos += align  # the EBR sits on the aligned sector before the logical
        placed.append((part, pos, size))
        pos += size
        if part["role"] == "logical":
            ext_end = pos
        pos = round_up(pos, align)
    extended = (ext_start, ext_end - ext_start) if ext_start is not None else None
    return placed, extended


def plan_volume_group(group: dict, original_pv_bytes: int, pv_sectors: int, ss: int,
                      selection_disk: dict | None, image_type: str, dont_expand: bool) -> dict:
    """Plan the LVs of a volume group inside its (planned) PV partition, in extents."""
    extent = group["extent_bytes"]
    overhead = volume_group_overhead(group, original_pv_bytes)
    extents = (pv_sectors * ss - overhead) // extent
    needs = lv_needs(group, selection_disk, image_type)
    sizes: list[int | None] = []
    reserved = 0
    dynamic = []
    for k, (lv, need) in enumerate(needs):
        if need.kind == "dynamic":
            sizes.append(None)
            dynamic.append(k)
            continue
        if need.kind == "fixed":
            size = ceil_div(need.original_bytes, extent)
        elif need.percent is not None:
            size = max(1, int(extents * need.percent // 100))
        else:
            size = ceil_div(need.min_bytes, extent)
        if need.kind == "custom" and size * extent < need.content_bytes:
            raise PlanError(f"the custom size of logical volume {group['name']}/{lv['name']} "
                            f"({human(size * extent)}) is smaller than its content needs "
                            f"({human(need.content_bytes)})")
        sizes.append(size)
        reserved += size
    mins = [ceil_div(needs[k][1].min_bytes, extent) for k in dynamic]
    if reserved + sum(mins) > extents:
        raise PlanError(f"the logical volumes of {group['name']} need "
                        f"{(reserved + sum(mins)) * extent} bytes but the volume group "
                        f"has {extents * extent} bytes")
    shares = waterfill(extents - reserved, mins, [needs[k][1].original_bytes for k in dynamic])
    for k, share in zip(dynamic, shares, strict=True):
        sizes[k] = share
    volumes = []
    for (lv, need), size in zip(needs, sizes, strict=True):
        fs = lv["filesystem"]
        volumes.append({
            "name": lv["name"], "uuid": lv["uuid"], "extents": size,
            "size_bytes": size * extent, "filesystem": fs["type"] if fs else None,
            "source": f"{group['name']}-{lv['name']}", "fixed": need.kind != "dynamic",
            "grow": needs_grow(fs, size * extent, image_type, dont_expand),
        })
    return {"name": group["name"], "uuid": group["uuid"], "extent_bytes": extent,
            "extents": extents, "size_bytes": extents * extent, "metadata_bytes": overhead,
            "logical_volumes": volumes}


def original_volume_group(group: dict, pv_bytes: int, selection_disk: dict | None,
                          image_type: str, dont_expand: bool) -> dict:
    """Plan the LVs of a volume group as they were on the source (method Original)."""
    extent = group["extent_bytes"]
    overhead = volume_group_overhead(group, pv_bytes)
    volumes = []
    for lv, _need in lv_needs(group, selection_disk, image_type):
        fs = lv["filesystem"]
        size = ceil_div(lv["size_bytes"], extent)
        volumes.append({
            "name": lv["name"], "uuid": lv["uuid"], "extents": size,
            "size_bytes": size * extent, "filesystem": fs["type"] if fs else None,
            "source": f"{group['name']}-{lv['name']}", "fixed": True,
            "grow": needs_grow(fs, size * extent, image_type, dont_expand),
        })
    extents = (pv_bytes - overhead) // extent
    return {"name": group["name"], "uuid": group["uuid"], "extent_bytes": extent,
            "extents": extents, "size_bytes": extents * extent, "metadata_bytes": overhead,
            "pv_partition": group["pv_partition"], "logical_volumes": volumes}


def needs_grow(fs: dict | None, planned_bytes: int, image_type: str, dont_expand: bool) -> bool:
    """Tell whether a restored block-image filesystem must be expanded to its container."""
    if fs is None or dont_expand or image_type == "file" or fs["type"] not in GROWABLE:
        return False
    return planned_bytes > held_bytes(fs)
