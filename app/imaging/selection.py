"""Read the optional keys of a selection (modified deploy schema) with their defaults."""

from __future__ import annotations

EMPTY: dict = {}


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
