"""Build small but real Windows registry hives for tests (the regf format, filled by hivexsh)."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

HBIN_SIZE = 4096
ROOT_OFFSET = 0x20  # the first cell, right after the hbin header


def _cell(data: bytes) -> bytes:
    """Wrap data in an allocated cell (negative size, 8-byte aligned)."""
    size = (len(data) + 4 + 7) // 8 * 8
    return struct.pack("<i", -size) + data + bytes(size - 4 - len(data))


def empty_hive() -> bytes:
    """Return a hive holding only its root key and one security cell."""
    name = b"ROOT"
    root_size = len(_cell(bytes(0x4C + len(name))))
    sk_offset = ROOT_OFFSET + root_size
    none = 0xFFFFFFFF
    root = (b"nk" + struct.pack("<HQI", 0x2C, 0, 0)
            + struct.pack("<IIIIIIIIIIIIIIHH", none, 0, 0, none, none, 0, none, sk_offset,
                          none, 0, 0, 0, 0, 0, len(name), 0) + name)
    # A self-relative security descriptor with no owner, group or ACLs.
    descriptor = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 0)
    security = b"sk" + struct.pack("<HIIII", 0, sk_offset, sk_offset, 1, len(descriptor))
    body = _cell(root) + _cell(security + descriptor)
    free = HBIN_SIZE - 0x20 - len(body)
    hbin = (b"hbin" + struct.pack("<II", 0, HBIN_SIZE) + bytes(20) + body
            + struct.pack("<i", free) + bytes(free - 4))
    base = bytearray(4096)
    base[0:4] = b"regf"
    struct.pack_into("<IIQIIIIIII", base, 4, 1, 1, 0, 1, 3, 0, 1, ROOT_OFFSET, HBIN_SIZE, 1)
    checksum = 0
    for (word,) in struct.iter_unpack("<I", bytes(base[:0x1FC])):
        checksum ^= word
    struct.pack_into("<I", base, 0x1FC, checksum)
    return bytes(base) + hbin


def build_hive(path: Path, keys: dict[str, list[tuple[str, str]]]) -> Path:
    """Write a hive with the given keys and values (hivexsh value syntax) using hivexsh."""
    path.write_bytes(empty_hive())
    script, created = [], set()
    for key, values in keys.items():
        script.append("cd \\")
        walked = ""
        for part in key.split("\\"):
            walked += "\\" + part
            if walked not in created:  # hivexsh refuses to add a key twice
                script.append(f"add {part}")
                created.add(walked)
            script.append(f"cd {part}")
        script.append(f"setval {len(values)}")
        for name, value in values:
            script += [name, value]
    script.append("commit")
    subprocess.run(["hivexsh", "-w", str(path)], input="\n".join(script) + "\n", text=True,
                   check=True, capture_output=True)
    return path


def hive_value(path: Path, key: str, name: str) -> str:
    """Read one value with hivexget."""
    return subprocess.run(["hivexget", str(path), key, name], capture_output=True, text=True,
                          check=True).stdout.strip()
