"""*Update BCD*: make Windows' boot configuration name the deployed partitions.

The BCD store is a registry hive (`Boot/BCD` on an NTFS system partition, or
`EFI/Microsoft/Boot/BCD` on the ESP). Each object's device elements (element types whose
format nibble is 1, such as 11000001 *device* and 21000001 *osdevice*) hold a binary
descriptor naming a partition by disk signature and byte offset (MBR) or by disk and
partition GUID (GPT). After a deploy the offset changes when a partition moved, and the
GUIDs change when they were randomized; every such old value inside a device element is
replaced by the new one, read and written through libhivex. Nothing else in the store is
touched.
"""

from __future__ import annotations

import ctypes
import logging
import struct
import tempfile
import uuid
from pathlib import Path

from client.customize import _libhivex, _SetValue, find_case_insensitive
from client.mount import FAT_FILESYSTEMS, mounted
from client.run import ClientError, run

log = logging.getLogger("castor.client")

BCD_PATHS = ("Boot/BCD", "EFI/Microsoft/Boot/BCD")
REG_BINARY = 3


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Add the libhivex calls that list children and values and read binary data."""
    node = ctypes.c_size_t
    lib.hivex_node_children.restype = ctypes.POINTER(node)
    lib.hivex_node_children.argtypes = [ctypes.c_void_p, node]
    lib.hivex_node_values.restype = ctypes.POINTER(node)
    lib.hivex_node_values.argtypes = [ctypes.c_void_p, node]
    lib.hivex_node_name.restype = ctypes.c_void_p
    lib.hivex_node_name.argtypes = [ctypes.c_void_p, node]
    lib.hivex_value_key.restype = ctypes.c_void_p
    lib.hivex_value_key.argtypes = [ctypes.c_void_p, node]
    lib.hivex_value_value.restype = ctypes.c_void_p
    lib.hivex_value_value.argtypes = [ctypes.c_void_p, node, ctypes.POINTER(ctypes.c_int),
                                      ctypes.POINTER(ctypes.c_size_t)]
    return lib


def _list(pointer) -> list[int]:
    """Read a 0-terminated array of node or value handles."""
    items, index = [], 0
    while pointer and pointer[index]:
        items.append(pointer[index])
        index += 1
    return items


def _text(pointer: int | None) -> str:
    return ctypes.string_at(pointer).decode("utf-8", errors="replace") if pointer else ""


def is_device_element(name: str) -> bool:
    """Tell whether a BCD element type (8 hex digits) holds a device descriptor."""
    try:
        return (int(name, 16) >> 24) & 0xF == 1
    except ValueError:
        return False


def replace_all(data: bytes, changes: list[tuple[bytes, bytes]]) -> bytes:
    """Replace each old byte string by its new one (same lengths)."""
    for old, new in changes:
        if old != new:
            data = data.replace(old, new)
    return data


def update_store(path: Path, changes: list[tuple[bytes, bytes]]) -> int:
    """Rewrite the device elements of one BCD hive file; return how many changed."""
    lib = _bind(_libhivex())
    hive = lib.hivex_open(str(path).encode(), 4)  # HIVEX_OPEN_WRITE
    if not hive:
        raise ClientError(f"cannot open the BCD store {path}")
    changed = 0
    try:
        root = lib.hivex_root(hive)
        objects = lib.hivex_node_get_child(hive, root, b"Objects")
        for obj in _list(lib.hivex_node_children(hive, objects)) if objects else []:
            elements = lib.hivex_node_get_child(hive, obj, b"Elements")
            for element in _list(lib.hivex_node_children(hive, elements)) if elements else []:
                if not is_device_element(_text(lib.hivex_node_name(hive, element))):
                    continue
                value = lib.hivex_node_get_value(hive, element, b"Element")
                if not value:
                    continue
                kind, size = ctypes.c_int(), ctypes.c_size_t()
                raw = lib.hivex_value_value(hive, value, ctypes.byref(kind), ctypes.byref(size))
                data = ctypes.string_at(raw, size.value)
                new = replace_all(data, changes)
                if new == data:
                    continue
                setting = _SetValue(b"Element", REG_BINARY, len(new), new)
                if lib.hivex_node_set_value(hive, element, ctypes.byref(setting), 0) != 0:
                    raise ClientError(f"cannot write a device element of {path}")
                changed += 1
        if changed and lib.hivex_commit(hive, None, 0) != 0:
            raise ClientError(f"cannot write the BCD store {path}")
    finally:
        lib.hivex_close(hive)
    return changed


def identity_changes(source_disk: dict, plan: dict, new_guids: dict[int, str],
                     new_disk_id: str | None) -> list[tuple[bytes, bytes]]:
    """The old → new byte strings of a deploy: partition offsets, GUIDs, disk signature."""
    lss = source_disk.get("logical_sector_size", 512)
    sources = {p["number"]: p for p in source_disk.get("partitions", [])}
    changes = []
    for part in plan.get("partitions") or []:
        src = sources.get(part.get("source_partition") or -1)
        if src is None:
            continue
        old_offset, new_offset = src["start_sector"] * lss, part["start_sector"] * lss
        if source_disk.get("table") == "mbr" and old_offset != new_offset:
            changes.append((struct.pack("<Q", old_offset), struct.pack("<Q", new_offset)))
        new_guid = new_guids.get(part["number"])
        if src.get("uuid") and new_guid and src["uuid"].upper() != new_guid.upper():
            changes.append((uuid.UUID(src["uuid"]).bytes_le, uuid.UUID(new_guid).bytes_le))
    old_id = source_disk.get("disk_id") or ""
    if new_disk_id and old_id and old_id.lower() != new_disk_id.lower():
        if old_id.startswith("0x"):
            changes.append((struct.pack("<I", int(old_id, 16)),
                            struct.pack("<I", int(new_disk_id, 16))))
        else:
            changes.append((uuid.UUID(old_id).bytes_le, uuid.UUID(new_disk_id).bytes_le))
    return changes


def update_bcd_on(dev: str, fs_type: str, changes: list[tuple[bytes, bytes]]) -> int:
    """Update every BCD store on one partition (NTFS on a mount, FAT through mtools)."""
    if not changes:
        return 0
    if fs_type in FAT_FILESYSTEMS:
        with tempfile.TemporaryDirectory(prefix="castor-bcd-") as tmp:
            local = Path(tmp) / "BCD"
            run(["mcopy", "-n", "-i", dev, "::/EFI/Microsoft/Boot/BCD", str(local)],
                check=False, input="")
            if not local.exists():
                return 0  # no Windows boot manager on this ESP
            count = update_store(local, changes)
            if count:
                run(["mcopy", "-o", "-i", dev, str(local), "::/EFI/Microsoft/Boot/BCD"],
                    input="")
            return count
    count = 0
    with mounted(dev, fs_type) as root:
        for relative in BCD_PATHS:
            for store in find_case_insensitive(root, relative):
                count += update_store(store, changes)
    return count


def update_bcd(disk, plan: dict, schema: dict, options: dict) -> int:
    """Carry out *Update BCD* on a deployed disk; return how many device elements changed."""
    if not options.get("update_bcd") or plan.get("partitions") is None:
        return 0
    import json

    from client.guidrefs import partition_guids

    source = next((d for d in schema.get("disks", []) if d["index"] == plan["disk_index"]), {})
    table = json.loads(run(["sfdisk", "--json", disk.path]))["partitiontable"]
    new_guids = partition_guids(disk.path) if table["label"] == "gpt" else {}
    changes = identity_changes(source, plan, new_guids, table.get("id"))
    count = 0
    for part in plan["partitions"]:
        fs = part.get("filesystem")
        fs_type = fs.get("type") if isinstance(fs, dict) else fs
        if part.get("source_partition") and fs_type in ("ntfs", *FAT_FILESYSTEMS):
            dev = disk.partition_device(part["number"], part["start_sector"],
                                        part["size_sectors"])
            count += update_bcd_on(dev, fs_type, changes)
    log.info("Update BCD: %d device element(s) now name the deployed partitions", count)
    return count
