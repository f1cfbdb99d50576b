"""Plan a deploy: schema + profile options + destination disks → partition plans.

Every refusal raises PlanError before anything is written. The plan's shape is documented
in docs/planning.md; the client executes it.
"""

from __future__ import annotations

from app.imaging import selection as sel
from app.imaging.dynamic import (
    dynamic_items,
    needs_grow,
    original_volume_group,
    place,
    plan_partition_sizes,
    plan_volume_group,
)
from app.imaging.errors import PlanError
from app.imaging.geometry import gpt_tail_sectors
from app.imaging.minsize import active_partitions, layout_cost_sectors
from app.imaging.plans import (
    METHODS,
    base_plan,
    check_destination,
    layout_region,
    partition_entry,
    too_small,
)
from app.imaging.schema import validate_schema
from app.imaging.sfdisk import render_script
from app.imaging.standard import plan_standard
from app.imaging.units import align_sectors, human

__all__ = ["METHODS", "PlanError", "plan_deploy", "plan_disk"]

def plan_dynamic(plan: dict, disk: dict, selection_disk: dict | None, options: dict) -> dict:
    """Fill a plan with the dynamic layout: fixed sizes kept, the rest shared."""
    lss, table = plan["logical_sector_size"], plan["table"]
    image_type = options.get("image_type") or "block"
    dont_expand = bool(options.get("dont_expand_volumes"))
    gpt = table == "gpt"
    items = dynamic_items(disk, selection_disk, image_type, plan["size_bytes"])
    first, region = layout_region(plan)
    message = too_small(disk, plan["size_bytes"], lss, table)
    percent = sum(need.percent or 0 for _p, need in items)
    if percent > 100:
        raise PlanError(f"the custom % sizes of disk {disk['index']} add up to {percent:g} %, "
                        "more than 100 %")
    sizes = plan_partition_sizes(items, region, lss, message)
    align = align_sectors(lss)
    placed, extended = place(items, sizes, first, align)
    groups = {g["pv_partition"]: g for g in disk.get("volume_groups") or []}
    partitions = []
    next_logical = 5
    for (part, start, size), (_p, need) in zip(placed, items, strict=True):
        number = part["number"]
        if part["role"] == "logical":
            number, next_logical = next_logical, next_logical + 1
        partitions.append(partition_entry(
            part, number, start, size, fixed=need.kind != "dynamic",
            grow=needs_grow(part["filesystem"], size * lss, image_type, dont_expand),
            restore=True, randomize=plan["randomize_guids"], gpt=gpt))
        if part["number"] in groups:
            group = groups[part["number"]]
            planned = plan_volume_group(
                group, part["size_sectors"] * disk["logical_sector_size"], size, lss,
                selection_disk, image_type, dont_expand)
            planned["pv_partition"] = number
            plan["volume_groups"].append(planned)
    if extended is not None:
        ext = next(p for p in disk["partitions"] if p["role"] == "extended")
        partitions.append(partition_entry(
            ext, ext["number"], extended[0], extended[1], fixed=False, grow=False,
            restore=False, randomize=plan["randomize_guids"], gpt=gpt))
        partitions.sort(key=lambda p: (p["start_sector"], p["role"] != "extended"))
    plan["partitions"] = partitions
    plan["minimum_bytes"] = _minimum_of(items, lss, table, message)
    return plan


def _minimum_of(items: list, lss: int, table: str, message) -> int | None:
    """Return the disk minimum (bytes) for the plan's record, None with % sizes."""
    if any(need.percent is not None for _p, need in items):
        return None
    cost = layout_cost_sectors(items, lss)
    tail = gpt_tail_sectors(lss) if table == "gpt" else 0
    return None if cost is None else (align_sectors(lss) + cost + tail) * lss


def plan_original(plan: dict, disk: dict, selection_disk: dict | None, options: dict) -> dict:
    """Fill a plan that restores the source table as it was (same starts and sizes)."""
    lss = plan["logical_sector_size"]
    image_type = options.get("image_type") or "block"
    dont_expand = bool(options.get("dont_expand_volumes"))
    gpt = disk["table"] == "gpt"
    chosen = {p["number"] for p in active_partitions(disk, selection_disk)}
    groups = {g["pv_partition"]: g for g in disk.get("volume_groups") or []}
    for part in disk["partitions"]:
        restore = part["number"] in chosen and part["role"] != "extended"
        plan["partitions"].append(partition_entry(
            part, part["number"], part["start_sector"], part["size_sectors"], fixed=True,
            grow=restore and needs_grow(part["filesystem"], part["size_sectors"] * lss,
                                        image_type, dont_expand),
            restore=restore, randomize=plan["randomize_guids"], gpt=gpt))
        if restore and part["number"] in groups:
            plan["volume_groups"].append(original_volume_group(
                groups[part["number"]], part["size_sectors"] * lss, selection_disk,
                image_type, dont_expand))
    plan["restore_original_table"] = True
    plan["minimum_bytes"] = disk["size_bytes"]
    if gpt:
        plan["first_usable_sector"] = disk["first_usable_sector"]
    return plan


def plan_disk(schema_disk: dict, selection_disk: dict | None, destination: dict,
              options: dict) -> dict:
    """Plan one schema disk onto one destination disk; raise PlanError to refuse."""
    size, lss, pss = check_destination(destination)
    method = options.get("partition_method") or "dynamic"
    if method not in METHODS:
        raise PlanError(f"unknown partition method {method!r}; use one of {METHODS}")
    image_type = options.get("image_type") or "block"
    source_lss = schema_disk["logical_sector_size"]
    if schema_disk["table"] == "gpt" and any(p["number"] > 128
                                             for p in schema_disk["partitions"]):
        raise PlanError(f"disk {schema_disk['index']} uses GPT partition numbers above 128; "
                        "only the standard 128-entry table is planned")
    if lss != source_lss and image_type == "block":
        raise PlanError(f"destination disk {schema_disk['index']} has {lss}-byte logical "
                        f"sectors but this block image was captured on {source_lss}-byte "
                        "sectors: a block image only restores onto the same sector size")
    if method == "custom_script":
        plan = base_plan(schema_disk, method, schema_disk["table"], size, lss, pss, options,
                          selection_disk)
        plan.update(partitions=None, volume_groups=None,
                    custom_script=options.get("custom_partition_script") or "")
        return plan
    same_size = size == schema_disk["size_bytes"] and lss == source_lss
    if method == "dynamic" and same_size and not options.get("force_dynamic_exact_match"):
        method = "original"  # an exact match restores the table as is, unless forced
    if method == "original":
        if lss != source_lss:
            raise PlanError(f"method Original needs {source_lss}-byte sectors like the source "
                            f"disk; destination disk {schema_disk['index']} has {lss}")
        if size < schema_disk["size_bytes"]:
            raise PlanError(
                f"method Original cannot restore disk {schema_disk['index']} of "
                f"{schema_disk['size_bytes']} bytes ({human(schema_disk['size_bytes'])}) onto a "
                f"smaller disk of {size} bytes ({human(size)}); use Dynamic")
        plan = base_plan(schema_disk, "original", schema_disk["table"], size, lss, pss,
                          options, selection_disk)
        plan_original(plan, schema_disk, selection_disk, options)
    elif method == "standard":
        plan = plan_standard(schema_disk, selection_disk, size, lss, pss, options)
    else:
        plan = base_plan(schema_disk, "dynamic", schema_disk["table"], size, lss, pss,
                          options, selection_disk)
        plan_dynamic(plan, schema_disk, selection_disk, options)
    first_lba = schema_disk["first_usable_sector"] if plan["method"] == "original" else None
    plan["sfdisk_script"] = render_script(plan["table"], lss, plan["partitions"],
                                          plan["disk_id"], first_lba)
    return plan


def plan_deploy(schema: dict, selection: dict | None, destinations: list[dict],
                options: dict) -> list[dict]:
    """Plan every deployed schema disk onto the destinations, in order; refuse as a whole.

    The schema may be raw JSON data: it is validated (SchemaError) and normalised first.
    """
    schema = validate_schema(schema)
    sel.check_selection(selection)
    if not isinstance(destinations, list) or not all(isinstance(d, dict) for d in destinations):
        raise PlanError("destinations must be a list of objects with size_bytes")
    options = dict(options or {})
    if not options.get("image_type"):
        options["image_type"] = schema.get("image_type", "block")
    disks = [d for d in schema["disks"] if sel.deploys(sel.selected_disk(selection, d["index"]))]
    if not disks:
        raise PlanError("no disk of this image is selected for deploy")
    if len(destinations) > len(disks):
        raise PlanError(f"{len(destinations)} destination disks given but the image deploys "
                        f"only {len(disks)} disk(s): more destination disks than schema disks")
    if len(destinations) < len(disks):
        raise PlanError(f"the image deploys {len(disks)} disks but only {len(destinations)} "
                        "destination disk(s) were given; deselect disks in the modified "
                        "deploy schema to deploy fewer")
    return [plan_disk(disk, sel.selected_disk(selection, disk["index"]), destination, options)
            for disk, destination in zip(disks, destinations, strict=True)]
