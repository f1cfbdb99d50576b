"""Load and validate image schemas (format v1, docs/schema.md) and return them normalised."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from app.imaging.geometry import MBR_LIMIT_SECTORS, gpt_first_usable, gpt_tail_sectors

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "schema-v1.json"
EXTENDED_TYPES = ("05", "0f", "85")
FILESYSTEM_DEFAULTS = {"uuid": None, "label": None, "shrunk": False, "block_size": None,
                       "image_bytes": None}


class SchemaError(ValueError):
    """A schema that cannot be used; the message names the path of the bad field."""


def _inline(node, definitions: dict):
    """Return a copy of a schema node with every local `$ref` replaced by its definition."""
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            return _inline(definitions[node["$ref"].rsplit("/", 1)[1]], definitions)
        return {k: _inline(v, definitions) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, definitions) for v in node]
    return node


@cache
def _validator() -> Draft202012Validator:
    """Return the JSON Schema validator of docs/schema-v1.json (read once)."""
    document = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(document)
    # The schema has no recursion: inlining its $defs makes validation ~10x faster.
    return Draft202012Validator(_inline(document, document.get("$defs", {})))


def _path(parts) -> str:
    """Format a JSON path like `disks[0].partitions[2].type`."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def parse_schema(text: str | bytes) -> dict:
    """Parse schema JSON text and return the validated, normalised schema."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"the schema is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SchemaError("(root): the schema must be a JSON object")
    return validate_schema(data)


def validate_schema(data: dict) -> dict:
    """Validate a schema (or selection) and return a normalised copy; raise SchemaError."""
    if not isinstance(data, dict):
        raise SchemaError("(root): the schema must be a JSON object")
    error = best_match(_validator().iter_errors(data))
    if error is not None:
        raise SchemaError(f"{_path(error.absolute_path)}: {error.message}")
    return normalise_schema(data)


def normalise_schema(data: dict) -> dict:
    """Return a copy with defaults filled and the layout rules checked (no JSON Schema pass)."""
    schema = copy.deepcopy(data)
    schema.setdefault("image_type", "block")
    seen: set[int] = set()
    for i, disk in enumerate(schema["disks"]):
        where = f"disks[{i}]"
        if disk["index"] in seen:
            raise SchemaError(f"{where}.index: disk index {disk['index']} appears twice")
        seen.add(disk["index"])
        _normalise_disk(disk, where)
    return schema


def _normalise_disk(disk: dict, where: str) -> None:
    """Fill a disk's defaults and check its partitions fit and do not overlap."""
    lss = disk["logical_sector_size"]
    if disk["size_bytes"] % lss:
        raise SchemaError(f"{where}.size_bytes: {disk['size_bytes']} is not a whole number "
                          f"of {lss}-byte sectors")
    total = disk["size_bytes"] // lss
    gpt = disk["table"] == "gpt"
    disk.setdefault("name", "")
    disk.setdefault("physical_sector_size", lss)
    disk.setdefault("disk_id", None)
    disk.setdefault("boot_partition", None)
    disk.setdefault("first_usable_sector", gpt_first_usable(lss) if gpt else 1)
    disk.setdefault("last_usable_sector", total - 1 - gpt_tail_sectors(lss) if gpt else total - 1)
    if disk.get("volume_groups") is None:
        disk["volume_groups"] = []
    numbers: set[int] = set()
    for j, part in enumerate(disk["partitions"]):
        _normalise_partition(part, gpt, lss, f"{where}.partitions[{j}]")
        if part["number"] in numbers:
            raise SchemaError(f"{where}.partitions[{j}].number: partition {part['number']} "
                              "appears twice")
        numbers.add(part["number"])
    disk["partitions"].sort(key=lambda p: p["start_sector"])
    if disk["table"] == "mbr":
        # The active flag may come as boot_partition or per partition: keep both in step.
        for part in disk["partitions"]:
            part["bootable"] = bool(part["bootable"]) or part["number"] == disk["boot_partition"]
            if part["bootable"] and disk["boot_partition"] is None:
                disk["boot_partition"] = part["number"]
    starts = [p["start_sector"] for p in disk["partitions"]]
    disk.setdefault("table_area_sectors", min(starts) if starts else disk["first_usable_sector"])
    if disk["table_area_sectors"] is None:
        disk["table_area_sectors"] = min(starts) if starts else disk["first_usable_sector"]
    _check_layout(disk, total, where)
    _check_volume_groups(disk, numbers, where)


def _normalise_partition(part: dict, gpt: bool, lss: int, where: str) -> None:
    """Fill a partition's defaults and normalise its type code."""
    code = part["type"]
    if gpt:
        if len(code) != 36:
            raise SchemaError(f"{where}.type: a GPT partition type must be a GUID, not {code!r}")
        part["type"] = code.upper()
    else:
        if len(code) == 36:
            raise SchemaError(f"{where}.type: an MBR partition type is two hex digits, "
                              f"not {code!r}")
        part["type"] = code.lower().rjust(2, "0")
    part.setdefault("uuid", None)
    part["name"] = part.get("name") or ""
    part["attributes"] = part.get("attributes") or ""
    part.setdefault("bootable", False)
    default_role = "extended" if not gpt and part["type"] in EXTENDED_TYPES else (
        "logical" if not gpt and part["number"] > 4 else "primary")
    part.setdefault("role", default_role)
    if gpt and part["role"] != "primary":
        raise SchemaError(f"{where}.role: GPT partitions are primary, not {part['role']}")
    if not gpt and (part["role"] == "logical") != (part["number"] > 4):
        raise SchemaError(f"{where}.number: MBR logical partitions are numbered from 5, "
                          f"primary and extended ones 1-4 (got {part['number']} "
                          f"as {part['role']})")
    part.setdefault("efi_boot", None)
    part.setdefault("lvm_vg", None)
    part["filesystem"] = normalise_filesystem(part.get("filesystem"),
                                              part["size_sectors"] * lss, where)


def normalise_filesystem(fs: dict | None, container_bytes: int, where: str) -> dict | None:
    """Fill a filesystem's size defaults from its partition or LV size and check them."""
    if fs is None:
        return None
    for key, value in FILESYSTEM_DEFAULTS.items():
        fs.setdefault(key, value)
    if fs.get("volume_bytes") is None:
        fs["volume_bytes"] = container_bytes
    if fs.get("used_bytes") is None:
        fs["used_bytes"] = fs["volume_bytes"]
    if fs.get("min_bytes") is None:
        fs["min_bytes"] = fs["volume_bytes"]
    for key in ("used_bytes", "min_bytes", "image_bytes"):
        value = fs[key]
        if value is not None and value > fs["volume_bytes"]:
            raise SchemaError(f"{where}.filesystem.{key}: {value} is larger than "
                              f"volume_bytes {fs['volume_bytes']}")
    return fs


def _check_layout(disk: dict, total: int, where: str) -> None:
    """Check every partition lies on the disk, without overlaps, MBR rules kept."""
    parts = disk["partitions"]
    for j, part in enumerate(parts):
        end = part["start_sector"] + part["size_sectors"]
        if end > total:
            raise SchemaError(f"{where}.partitions[{j}]: partition {part['number']} ends at "
                              f"sector {end - 1}, past the disk's last sector {total - 1}")
        if disk["table"] == "mbr" and end > MBR_LIMIT_SECTORS:
            raise SchemaError(f"{where}.partitions[{j}]: partition {part['number']} ends "
                              "beyond the 2^32 sectors an MBR can address")
    extended = [p for p in parts if p["role"] == "extended"]
    if len(extended) > 1:
        raise SchemaError(f"{where}.partitions: an MBR has at most one extended partition")
    logicals = [p for p in parts if p["role"] == "logical"]
    if logicals and not extended:
        raise SchemaError(f"{where}.partitions: logical partitions need an extended partition")
    if extended:
        ext = extended[0]
        for part in logicals:
            if not (ext["start_sector"] < part["start_sector"] and
                    part["start_sector"] + part["size_sectors"]
                    <= ext["start_sector"] + ext["size_sectors"]):
                raise SchemaError(f"{where}.partitions: logical partition {part['number']} "
                                  f"lies outside extended partition {ext['number']}")
    # Logicals live inside the extended one: check overlaps within each level separately.
    for level in ([p for p in parts if p["role"] != "logical"], logicals):
        for before, after in zip(level, level[1:], strict=False):
            if before["start_sector"] + before["size_sectors"] > after["start_sector"]:
                raise SchemaError(f"{where}.partitions: partitions {before['number']} and "
                                  f"{after['number']} overlap")


def _check_volume_groups(disk: dict, numbers: set[int], where: str) -> None:
    """Check each volume group sits on a partition of this disk and its LVs fit in it."""
    lss = disk["logical_sector_size"]
    by_number = {p["number"]: p for p in disk["partitions"]}
    for k, group in enumerate(disk["volume_groups"]):
        here = f"{where}.volume_groups[{k}]"
        if group["pv_partition"] not in numbers:
            raise SchemaError(f"{here}.pv_partition: partition {group['pv_partition']} "
                              "is not on this disk")
        pv_bytes = by_number[group["pv_partition"]]["size_sectors"] * lss
        group.setdefault("uuid", None)
        lvs = group.setdefault("logical_volumes", [])
        used = 0
        names: set[str] = set()
        for n, lv in enumerate(lvs):
            if lv["name"] in names:
                raise SchemaError(f"{here}.logical_volumes[{n}].name: {lv['name']!r} "
                                  "appears twice")
            names.add(lv["name"])
            lv.setdefault("uuid", None)
            lv["filesystem"] = normalise_filesystem(
                lv.get("filesystem"), lv["size_bytes"], f"{here}.logical_volumes[{n}]")
            used += lv["size_bytes"]
        group.setdefault("size_bytes", pv_bytes)
        if group["size_bytes"] > pv_bytes:
            raise SchemaError(f"{here}.size_bytes: {group['size_bytes']} is larger than "
                              f"its physical volume ({pv_bytes} bytes)")
        if used > group["size_bytes"]:
            raise SchemaError(f"{here}.logical_volumes: the logical volumes take {used} "
                              f"bytes, more than the volume group's {group['size_bytes']}")
