"""Custom upload schema and modified deploy schema: copies of a schema with selection keys.

See docs/schema.md "Selections". A stored selection is always rebuilt from the image's own
schema, taking only the selection keys from what the user sent, so the disks and partitions
it describes can never drift from what was uploaded.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping

UNITS = ("MB", "GB", "%")
DEVICE_RE = re.compile(r"^/dev/[A-Za-z0-9][A-Za-z0-9._:/-]{0,120}$")

UPLOAD_KEYS = {"upload": True, "fixed": False}
DEPLOY_DISK_KEYS = {"deploy": True, "destination": None}
DEPLOY_PART_KEYS = {"deploy": True, "fixed": False, "custom_size": None}


class SelectionError(ValueError):
    """A selection that cannot be saved; `errors` lists every problem found."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def load(value: str | dict | None) -> dict | None:
    """Return a selection given as JSON text or a dict, None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return value
    try:
        data = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise SelectionError([f"the schema is not valid JSON: {exc}"]) from exc
    if not isinstance(data, dict):
        raise SelectionError(["the schema must be a JSON object"])
    return data


def image_schema(image: object) -> dict | None:
    """Return an image's schema, or None before the first upload or when it is unreadable."""
    text = getattr(image, "schema_json", None)
    if not text or getattr(image, "schema_status", "") == "invalid":
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("disks"), list) else None


def _volumes(disk: dict) -> list[tuple[int, int, dict]]:
    """Return (vg index, lv index, lv) for every logical volume of a disk."""
    return [
        (v, n, lv)
        for v, group in enumerate(disk.get("volume_groups") or [])
        for n, lv in enumerate(group.get("logical_volumes") or [])
    ]


def _take(target: dict, source: dict | None, defaults: dict) -> None:
    """Copy the selection keys of `defaults` from source into target, defaults if absent."""
    source = source if isinstance(source, dict) else {}
    for key, default in defaults.items():
        target[key] = copy.deepcopy(source.get(key, default))


def merge(schema: dict, stored: dict | None, mode: str) -> dict:
    """Return a copy of the schema carrying the selection keys of `stored` (mode upload|deploy)."""
    part_keys = UPLOAD_KEYS if mode == "upload" else DEPLOY_PART_KEYS
    disk_keys = {"upload": True} if mode == "upload" else DEPLOY_DISK_KEYS
    result = copy.deepcopy(schema)
    stored_disks = {d.get("index"): d for d in (stored or {}).get("disks") or []
                    if isinstance(d, dict)}
    for disk in result.get("disks", []):
        old_disk = stored_disks.get(disk.get("index"), {})
        _take(disk, old_disk, disk_keys)
        old_parts = {p.get("number"): p for p in old_disk.get("partitions") or []
                     if isinstance(p, dict)}
        for part in disk.get("partitions", []):
            _take(part, old_parts.get(part.get("number")), part_keys)
        old_groups = {g.get("name"): g for g in old_disk.get("volume_groups") or []
                      if isinstance(g, dict)}
        for group in disk.get("volume_groups") or []:
            old_lvs = {lv.get("name"): lv for lv in
                       (old_groups.get(group.get("name")) or {}).get("logical_volumes") or []
                       if isinstance(lv, dict)}
            for lv in group.get("logical_volumes") or []:
                _take(lv, old_lvs.get(lv.get("name")), part_keys)
    return result


def _size_from_form(form: Mapping, prefix: str) -> dict | None:
    """Read a custom size `{value, unit}` from form fields, None when left empty."""
    raw = (form.get(f"{prefix}.size") or "").strip()
    if not raw:
        return None
    unit = form.get(f"{prefix}.unit") or "GB"
    try:
        value: float | int | str = float(raw)
        value = int(value) if value == int(value) else value
    except ValueError:
        value = raw  # kept as given so validation can name it
    return {"value": value, "unit": unit}


def from_form(schema: dict, form: Mapping, mode: str) -> dict:
    """Build a selection from the schema table's fields (`d0.deploy`, `d0.p1.size`, ...)."""
    flag = "upload" if mode == "upload" else "deploy"
    result = merge(schema, None, mode)
    for disk in result.get("disks", []):
        prefix = f"d{disk['index']}"
        disk[flag] = f"{prefix}.{flag}" in form
        if mode == "deploy":
            disk["destination"] = (form.get(f"{prefix}.destination") or "").strip() or None
        items = [(f"{prefix}.p{p['number']}", p) for p in disk.get("partitions", [])]
        items += [(f"{prefix}.v{v}.l{n}", lv) for v, n, lv in _volumes(disk)]
        for item_prefix, item in items:
            item[flag] = f"{item_prefix}.{flag}" in form
            item["fixed"] = f"{item_prefix}.fixed" in form
            if mode == "deploy":
                item["custom_size"] = _size_from_form(form, item_prefix)
    return result


# A custom size above this is a typo, not a disk (100 TB; the largest disks sold are ~30 TB).
MAX_SIZE_MB = 100_000_000


def _check_size(label: str, size: object, errors: list[str]) -> float:
    """Validate one custom size; return its percentage (0 when not in %)."""
    if not isinstance(size, dict):
        errors.append(f"{label}: custom size must be an object with value and unit")
        return 0.0
    value, unit = size.get("value"), size.get("unit")
    if unit not in UNITS:
        errors.append(f"{label}: size unit must be MB, GB or %")
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        errors.append(f"{label}: custom size must be a number above 0")
        return 0.0
    if unit in ("MB", "GB") and value * (1000 if unit == "GB" else 1) > MAX_SIZE_MB:
        errors.append(f"{label}: {value:g} {unit} is larger than any disk (the limit is "
                      f"{MAX_SIZE_MB // 1_000_000} TB)")
        return 0.0
    if unit == "%":
        if value > 100:
            errors.append(f"{label}: {value}% is over 100%")
        return float(value)
    return 0.0


def _any_volume(disk: dict, flag: str) -> bool:
    """Tell whether any partition or logical volume of a disk is ticked for `flag`."""
    return any(p.get(flag) for p in disk.get("partitions", [])) or any(
        lv.get(flag) for _v, _n, lv in _volumes(disk))


def validate(selection: dict, mode: str, partition_method: str = "dynamic") -> list[str]:
    """Return every problem of a merged selection; an empty list means it can be saved."""
    return [message for _row, message in validate_rows(selection, mode, partition_method)]


def row_errors(selection: dict, mode: str, partition_method: str = "dynamic"
               ) -> dict[str, list[str]]:
    """Return the problems of a selection by table row (`d0`, `d0.p2`, `d0.v0.l1`)."""
    rows: dict[str, list[str]] = {}
    for row, message in validate_rows(selection, mode, partition_method):
        if row is not None:
            rows.setdefault(row, []).append(message)
    return rows


def validate_rows(selection: dict, mode: str, partition_method: str = "dynamic"
                  ) -> list[tuple[str | None, str]]:
    """Return (table row or None, problem) for every problem of a merged selection.

    A row is named as the schema tables name their inputs: `d<disk index>` for a disk,
    `.p<number>` for a partition, `.v<group>.l<volume>` for a logical volume.
    """
    found: list[tuple[str | None, str]] = []
    flag = "upload" if mode == "upload" else "deploy"
    disks = selection.get("disks", [])
    if not any(d.get(flag) for d in disks):
        found.append((None, f"select at least one disk to {flag}"))
    for disk in disks:
        name = disk.get("name") or f"disk {disk.get('index')}"
        row = f"d{disk.get('index')}"
        if disk.get(flag) and not _any_volume(disk, flag):
            found.append((row, f"Disk {name} is ticked but none of its partitions is: tick at "
                               f"least one partition to {flag}, or untick the disk"))
        if not disk.get(flag) or mode == "upload":
            continue
        destination = disk.get("destination")
        if destination is not None and (
            not isinstance(destination, str) or not DEVICE_RE.match(destination)
            or ".." in destination.split("/")
        ):
            found.append((row, f"{name}: destination {destination!r} is not a device path "
                               "such as /dev/sdb"))
        parts = [p for p in disk.get("partitions", []) if p.get("deploy")]
        lvs = [(v, n, lv) for v, n, lv in _volumes(disk) if lv.get("deploy")]
        sized = [(f"{row}.p{p.get('number')}", f"{name} partition {p.get('number')}", p)
                 for p in parts]
        sized += [(f"{row}.v{v}.l{n}", f"{name} LV {lv.get('name')}", lv) for v, n, lv in lvs]
        if any(item.get("custom_size") for _r, _label, item in sized) and (
            partition_method != "dynamic"
        ):
            found.append((row, f"{name}: custom sizes are only used by the Dynamic partition "
                               "method; clear them or choose Dynamic"))
        for item_row, label, item in sized:
            if item.get("fixed") and item.get("custom_size"):
                found.append((item_row, f"{label}: Fixed keeps the partition's original size, "
                                        "so it can't also have a custom size; clear one of them"))

        def size_of(item_row: str, label: str, item: dict) -> float:
            problems: list[str] = []
            percent = _check_size(label, item["custom_size"], problems)
            found.extend((item_row, problem) for problem in problems)
            return percent

        percent = sum(size_of(r, label, p) for r, label, p in sized[: len(parts)]
                      if p.get("custom_size"))
        if percent > 100:
            found.append((row, f"{name}: custom sizes add up to {percent:g}% of the disk, "
                               "over 100%"))
        lv_rows = sized[len(parts):]
        for v in {v for v, _n, _lv in lvs}:
            lv_percent = sum(size_of(r, label, lv)
                             for (r, label, lv), (w, _n, _l) in zip(lv_rows, lvs, strict=True)
                             if w == v and lv.get("custom_size"))
            if lv_percent > 100:
                found.append((row, f"{name}: logical volume sizes add up to {lv_percent:g}%, "
                                   "over 100%"))
        if partition_method == "standard" and len(parts) != 1:
            found.append((row, f"{name}: the Standard method deploys exactly one partition per "
                               f"disk; {len(parts)} selected"))
    return found


def clean(schema: dict | None, value: str | dict | None, mode: str,
          partition_method: str = "dynamic") -> str | None:
    """Return the selection as JSON text to store, raising SelectionError when invalid."""
    data = load(value)
    if data is None:
        return None
    if schema is None:
        raise SelectionError(["the image has no schema yet; the tables appear after the "
                              "first upload (Upload schema only)"])
    merged = merge(schema, data, mode)
    errors = validate(merged, mode, partition_method)
    if errors:
        raise SelectionError(errors)
    return json.dumps(merged, sort_keys=True)
