"""Read the optional keys of a selection (modified deploy schema) with their defaults."""

from __future__ import annotations

from app.imaging.errors import PlanError

EMPTY: dict = {}
UNITS = ("MB", "GB", "%")


def selected_disk(selection: dict | None, index: int) -> dict | None:
    """Return the selection's entry for schema disk `index`, or None."""
    if not selection:
        return None
    for disk in selection.get("disks") or []:
        if disk.get("index") == index:
            return disk
    return None


def selected_partition(selection_disk: dict | None, number: int) -> dict | None:
    """Return the selection's entry for partition `number`, or None."""
    if not selection_disk:
        return None
    for part in selection_disk.get("partitions") or []:
        if part.get("number") == number:
            return part
    return None


def selected_lv(selection_disk: dict | None, vg_name: str, lv_name: str) -> dict | None:
    """Return the selection's entry for logical volume `vg_name/lv_name`, or None."""
    if not selection_disk:
        return None
    for group in selection_disk.get("volume_groups") or []:
        if group.get("name") == vg_name:
            for lv in group.get("logical_volumes") or []:
                if lv.get("name") == lv_name:
                    return lv
    return None


def deploys(entry: dict | None) -> bool:
    """Tell whether a disk, partition or LV is selected for deploy (default yes)."""
    return (entry or EMPTY).get("deploy", True) is not False


def forced_fixed(entry: dict | None) -> bool:
    """Tell whether the user marked a partition or LV fixed."""
    return bool((entry or EMPTY).get("fixed", False))


def custom_size(entry: dict | None) -> dict | None:
    """Return the custom size `{"value", "unit"}` of a partition or LV, or None."""
    return (entry or EMPTY).get("custom_size") or None


def _check_entry(entry: object, where: str) -> None:
    """Check one partition or LV entry's selection keys."""
    if not isinstance(entry, dict):
        raise PlanError(f"selection {where}: must be an object")
    for key in ("deploy", "fixed"):
        if key in entry and not isinstance(entry[key], bool):
            raise PlanError(f"selection {where}.{key}: must be true or false")
    custom = entry.get("custom_size")
    if custom is None:
        return
    value = custom.get("value") if isinstance(custom, dict) else None
    if (not isinstance(value, int | float) or isinstance(value, bool) or value <= 0
            or custom.get("unit") not in UNITS):
        raise PlanError(f"selection {where}.custom_size: needs a positive value and a unit "
                        f"of {', '.join(UNITS)} (got {custom!r})")
    if custom["unit"] == "%" and value > 100:
        raise PlanError(f"selection {where}.custom_size: {value} % is more than 100 %")


def check_selection(selection: dict | None) -> None:
    """Raise PlanError naming the first malformed selection key (docs/schema.md)."""
    if selection is None:
        return
    if not isinstance(selection, dict) or not isinstance(selection.get("disks", []), list):
        raise PlanError("selection: must be an object with a list of disks")
    for i, disk in enumerate(selection.get("disks") or []):
        if not isinstance(disk, dict):
            raise PlanError(f"selection disks[{i}]: must be an object")
        for j, part in enumerate(disk.get("partitions") or []):
            _check_entry(part, f"disks[{i}].partitions[{j}]")
        for k, group in enumerate(disk.get("volume_groups") or []):
            for n, lv in enumerate((group or {}).get("logical_volumes") or []):
                _check_entry(lv, f"disks[{i}].volume_groups[{k}].logical_volumes[{n}]")
