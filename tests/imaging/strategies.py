"""Hypothesis strategies: random schema disks, selections and destination sizes."""

from __future__ import annotations

from hypothesis import strategies as st

from app.imaging.geometry import gpt_tail_sectors
from app.imaging.schema import normalise_schema
from app.imaging.units import GIB, MIB

FS_TYPES = ["ext4", "ntfs", "xfs", "vfat", "swap", "btrfs", None]
GPT_TYPES = ["0FC63DAF-8483-4772-8E79-3D69D8477DE4", "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
             "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"]
MBR_TYPES = ["83", "07", "0c", "82"]


@st.composite
def filesystems(draw, size_bytes: int) -> dict | None:
    """Draw a filesystem (or none) that fits a container of `size_bytes`."""
    fs_type = draw(st.sampled_from(FS_TYPES))
    if fs_type is None:
        return None
    used = draw(st.integers(0, size_bytes))
    minimum = draw(st.integers(used, size_bytes))
    fs = {"type": fs_type, "uuid": None, "label": "", "volume_bytes": size_bytes,
          "used_bytes": used, "min_bytes": minimum, "shrunk": False, "block_size": 4096}
    if fs_type in ("ext4", "ntfs") and draw(st.booleans()):
        fs["shrunk"] = True
        fs["image_bytes"] = draw(st.integers(minimum, size_bytes))
    return fs


def _guid(draw) -> str:
    """Draw a random upper-case GUID."""
    return str(draw(st.uuids())).upper()


@st.composite
def schema_disks(draw, table: str | None = None, sector_size: int | None = None,
                 max_parts: int = 8) -> dict:
    """Draw one valid schema disk with aligned partitions, MBR logicals included."""
    table = table or draw(st.sampled_from(["gpt", "mbr"]))
    ss = sector_size or draw(st.sampled_from([512, 4096]))
    align = MIB // ss
    # Sizes in MiB: mostly small, some above the 5 GiB fixed limit.
    sizes = draw(st.lists(st.one_of(st.integers(1, 600), st.integers(5 * 1024, 40 * 1024)),
                          min_size=1, max_size=max_parts))
    logical_count = 0
    if table == "mbr":
        sizes = sizes[:7]
        primaries = min(len(sizes), draw(st.integers(1, 3)))
        logical_count = len(sizes) - primaries
        if logical_count == 0 and len(sizes) == 4:
            primaries = 4
    parts = []
    pos = align
    for k, size_mib in enumerate(sizes):
        logical = table == "mbr" and k >= len(sizes) - logical_count
        if logical and k == len(sizes) - logical_count:
            ext = {"number": len(sizes) - logical_count + 1, "start_sector": pos,
                   "type": "05", "role": "extended"}
            parts.append(ext)
        if logical:
            pos += align
        size = size_mib * MIB // ss
        number = (5 + k - (len(sizes) - logical_count)) if logical else k + 1
        parts.append({
            "number": number, "start_sector": pos, "size_sectors": size,
            "type": draw(st.sampled_from(GPT_TYPES if table == "gpt" else MBR_TYPES)),
            "uuid": _guid(draw) if table == "gpt" else None,
            "name": draw(st.sampled_from(["", "root", "Basic data partition"])),
            "role": "logical" if logical else "primary",
            "filesystem": draw(filesystems(size * ss)),
        })
        pos += size
        if logical:
            ext["size_sectors"] = pos - ext["start_sector"]
        pos += draw(st.sampled_from([0, align]))
        pos = -(-pos // align) * align
    tail = gpt_tail_sectors(ss) if table == "gpt" else 0
    total = pos + tail + draw(st.integers(0, 4)) * align
    disk = {"index": 0, "size_bytes": total * ss, "logical_sector_size": ss, "table": table,
            "disk_id": _guid(draw) if table == "gpt" else "0x1234abcd", "partitions": parts}
    schema = normalise_schema({"format": "castor-schema", "version": 1, "disks": [disk]})
    return schema["disks"][0]


@st.composite
def selections(draw, disk: dict, allow_percent: bool = False) -> dict:
    """Draw a deploy selection of a disk: some partitions off, fixed or custom sized."""
    parts = []
    for part in disk["partitions"]:
        if part["role"] == "extended":
            continue
        entry = {"number": part["number"], "deploy": draw(st.booleans()),
                 "fixed": draw(st.booleans())}
        choice = draw(st.sampled_from(["none", "none", "mb", "pct"] if allow_percent
                                      else ["none", "none", "mb"]))
        original = part["size_sectors"] * disk["logical_sector_size"]
        if choice == "mb":
            entry["custom_size"] = {"value": draw(st.integers(original // 10**6 + 1,
                                                              original // 10**6 + 3000)),
                                    "unit": "MB"}
        elif choice == "pct":
            entry["custom_size"] = {"value": draw(st.integers(1, 30)), "unit": "%"}
        parts.append(entry)
    if not any(p["deploy"] for p in parts):
        parts[0]["deploy"] = True
    return {"index": disk["index"], "partitions": parts}


def destination_sizes(minimum: int, original: int, ss: int):
    """Return a strategy of destination sizes around the minimum and the original size."""
    low = max(4 * MIB, minimum // 2)
    high = max(3 * original + GIB, 2 * minimum)
    return st.one_of(st.just(minimum), st.just(original), st.integers(low, high),
                     st.integers(max(low, minimum - 8 * MIB), minimum + 8 * MIB)).map(
        lambda n: max(4 * MIB, n // ss * ss))
