"""The Standard method: a fresh default layout with one OS partition restored into it."""

from __future__ import annotations

from app.imaging import selection as sel
from app.imaging.dynamic import needs_grow, place, plan_partition_sizes
from app.imaging.errors import PlanError
from app.imaging.minsize import Need, partition_need
from app.imaging.plans import base_plan, layout_region, partition_entry, too_small
from app.imaging.units import MIB, align_sectors

GPT_BASIC_DATA = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_MSR = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
GPT_RECOVERY = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC"
WINDOWS_FS = {"ntfs", "vfat", "exfat"}


def _extra(number: int, type_: str, name: str, fs: str | None, size_bytes: int,
           bootable: bool = False) -> tuple[dict, Need]:
    """Return a new (not restored) partition of the layout and its fixed need."""
    part = {"number": number, "type": type_, "name": name, "role": "primary",
            "bootable": bootable, "filesystem": {"type": fs} if fs else None}
    return part, Need("fixed", size_bytes, size_bytes, size_bytes)


def os_type(source: dict, gpt: bool) -> str:
    """Return the OS partition's type code in the new table (kept when the table matches)."""
    code = source["type"]
    fs = (source.get("filesystem") or {}).get("type")
    if gpt:
        if len(code) == 36:
            return code
        return GPT_LINUX if code == "83" or fs not in WINDOWS_FS else GPT_BASIC_DATA
    if len(code) == 2:
        return code
    if code == GPT_LINUX or fs not in WINDOWS_FS:
        return "83"
    return "07" if fs != "vfat" else "0c"


def chosen_partition(disk: dict, selection_disk: dict | None) -> dict:
    """Return the one partition selected for a Standard deploy, or refuse."""
    chosen = [p for p in disk["partitions"] if p["role"] != "extended"
              and sel.deploys(sel.selected_partition(selection_disk, p["number"]))]
    if len(chosen) != 1:
        raise PlanError(f"the Standard method restores exactly one OS partition: select "
                        f"one partition of disk {disk['index']} in the modified deploy schema "
                        f"({len(chosen)} are selected)")
    if chosen[0]["filesystem"] is None:
        raise PlanError(f"partition {chosen[0]['number']} has no filesystem to restore as "
                        "the OS partition of the Standard method")
    return chosen[0]


def plan_standard(disk: dict, selection_disk: dict | None, size: int, lss: int, pss: int,
                  options: dict) -> dict:
    """Plan the legacy (MBR) or EFI (GPT) standard layout around the selected partition."""
    source = chosen_partition(disk, selection_disk)
    efi = options.get("efi")
    efi = disk["table"] == "gpt" if efi is None else bool(efi)
    table = "gpt" if efi else "mbr"
    plan = base_plan(disk, "standard", table, size, lss, pss, options, selection_disk)
    image_type = options.get("image_type") or "block"
    need = partition_need(source, disk, sel.selected_partition(selection_disk, source["number"]),
                          selection_disk, image_type, size)
    os_part = dict(source, type=os_type(source, efi), role="primary", bootable=False)
    if efi:
        esp = 260 * MIB if lss == 4096 else 100 * MIB  # FAT32 needs 65527 clusters at 4Kn
        items = [_extra(1, GPT_RECOVERY, "Recovery", "ntfs", 500 * MIB),
                 _extra(2, GPT_ESP, "EFI system partition", "vfat", esp),
                 _extra(3, GPT_MSR, "Microsoft reserved partition", None, 16 * MIB),
                 (os_part, need)]
    else:
        items = [_extra(1, "07", "", "ntfs", 500 * MIB, bootable=True), (os_part, need)]
    first, region = layout_region(plan)
    sizes = plan_partition_sizes(items, region, lss, too_small(disk, size, lss, table))
    placed, _extended = place(items, sizes, first, align_sectors(lss))
    dont_expand = bool(options.get("dont_expand_volumes"))
    for number, ((part, start, length), (_p, item_need)) in enumerate(
            zip(placed, items, strict=True), start=1):
        restore = part is os_part
        plan["partitions"].append(partition_entry(
            part, number, start, length, fixed=item_need.kind != "dynamic",
            grow=restore and needs_grow(part["filesystem"], length * lss, image_type,
                                        dont_expand),
            restore=restore, randomize=plan["randomize_guids"], gpt=efi))
    plan["minimum_bytes"] = None
    return plan
