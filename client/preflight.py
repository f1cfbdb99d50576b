"""Before the first byte is written: check that the deploy fits and can run, or refuse.

Every refusal of a deploy happens here, on what the client can see for itself: the opened
destination disks, the server's plans, the manifest and the head of each stored partition
image. Nothing is written by these checks (they read the disk sizes and download the first
bytes of each image file), so a refused deploy leaves the destination byte-identical.

Unicast and multicast run the same checks. What needs the image files' bytes is asked over
HTTP by bounded Range requests, never read from a multicast stream (the session has not sent
it yet, and reading it would take the stream from this machine): one byte at each file's
manifest size (`http_file_size`), and the head of each partclone or WIM file from the byte
source's `head`. A unicast deploy reads the file's first chunk (at most 16 MiB) and checks its
SHA-256, since it downloads the whole file right after; a multicast receiver reads only the
first 256 KiB, up to 8 MiB when an lz4 block holds the header deeper, so that the machines of
a session do not each download chunks over HTTP before it. No preflight downloads a whole
image; damage past what was read is found by the chunk and file SHA-256 as the file restores.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable

from client import lvm
from client.capture import PARTCLONE_TOOL
from client.compress import decompress_stage
from client.devices import Disk
from client.imagehead import (
    PARTCLONE_HEADER_BYTES,
    check_fs_name,
    check_wim_head,
    decompress_prefix,
    needs_no_check,
    parse_partclone_header,
)
from client.run import ClientError
from client.sources import HEAD_LIMIT_BYTES

log = logging.getLogger("castor.client")

GPT_ENTRIES_BYTES = 128 * 128  # the standard table: 128 entries of 128 bytes
MBR_SECTOR_LIMIT = 1 << 32
LVM_DATA_OFFSET_BYTES = 1 << 20  # pvcreate puts the first extent 1 MiB into the PV
GROW_TOOLS = {"ext2": ("e2fsck", "resize2fs"), "ext3": ("e2fsck", "resize2fs"),
              "ext4": ("e2fsck", "resize2fs"), "ntfs": ("ntfsresize", "ntfsfix"),
              "xfs": ("xfs_growfs",), "btrfs": ("btrfs",)}
MKFS_TOOLS = {"ext2": "mkfs.ext2", "ext3": "mkfs.ext3", "ext4": "mkfs.ext4",
              "ntfs": "mkfs.ntfs", "xfs": "mkfs.xfs", "btrfs": "mkfs.btrfs"}

# Given a manifest entry, return its stored bytes from the start (`HttpSource.head`); the
# reader stops once it holds the header.
HeadSource = Callable[[dict], Iterable[bytes]]
# Given a manifest entry, return how many bytes the server really holds for it.
SizeProbe = Callable[[dict], int]


class DeployRefused(ClientError):
    """The deploy cannot fit or cannot run; nothing was written."""


def gpt_usable(total_sectors: int, sector_size: int) -> tuple[int, int]:
    """Return the first and last usable sector of a standard GPT on a disk this size."""
    entries = -(-GPT_ENTRIES_BYTES // sector_size)
    return 2 + entries, total_sectors - 2 - entries


def table_problems(disk: Disk, plan: dict, schema_disk: dict, image_type: str) -> list[str]:
    """What stops this plan's table from fitting this destination disk."""
    index = plan.get("disk_index", 0)
    lss = disk.logical_sector_size
    problems = []
    if plan.get("logical_sector_size", lss) != lss:
        problems.append(f"disk {index}: planned for {plan['logical_sector_size']}-byte sectors "
                        f"but {disk.source} has {lss}-byte sectors")
    source_lss = schema_disk.get("logical_sector_size", lss)
    if image_type == "block" and source_lss != lss:
        problems.append(f"disk {index}: the block image was captured on {source_lss}-byte "
                        f"sectors but {disk.source} has {lss}-byte sectors (it would not boot)")
    minimum = plan.get("minimum_bytes")
    if minimum and disk.size_bytes < minimum:
        problems.append(f"disk {index}: {disk.source} is too small: {disk.size_bytes} bytes, "
                        f"the image needs at least {minimum} bytes")
    if problems or plan.get("partitions") is None:
        return problems  # a custom partition script makes its own table
    total = disk.size_bytes // lss
    if plan.get("table") == "gpt":
        first, last = gpt_usable(total, lss)
    else:
        first, last = 1, total - 1
    for part in plan["partitions"]:
        start, size = int(part["start_sector"]), int(part["size_sectors"])
        end = start + size - 1
        name = f"disk {index} partition {part['number']}"
        if size <= 0 or start < first:
            problems.append(f"{name}: starts at sector {start}, before the first usable "
                            f"sector {first}")
        elif end > last:
            where = "GPT's last usable sector" if plan.get("table") == "gpt" else "disk's end"
            problems.append(f"{name}: ends at sector {end}, past the {where} ({last}) of "
                            f"{disk.source}")
        elif plan.get("table") != "gpt" and (start >= MBR_SECTOR_LIMIT or
                                             size >= MBR_SECTOR_LIMIT):
            problems.append(f"{name}: an MBR table cannot address sector {end}")
    primaries = sorted((int(p["start_sector"]), int(p["size_sectors"]), p["number"])
                       for p in plan["partitions"] if p.get("role") != "logical")
    for (a_start, a_size, a_no), (b_start, _b_size, b_no) in zip(primaries, primaries[1:],
                                                                 strict=False):
        if a_start + a_size > b_start:
            problems.append(f"disk {index}: partitions {a_no} and {b_no} overlap")
    return problems


def tools_needed(plan: dict, manifest: dict, options: dict) -> set[str]:
    """The programs the deploy of one plan runs."""
    tools = {"blockdev", "losetup"}
    if plan.get("partitions") is None:
        return tools | {"bash"}
    tools |= {"wipefs", "sfdisk"} | ({"sgdisk"} if plan.get("table") == "gpt" else set())
    for part, entry in restored(plan, manifest):
        fs_type = _fs_type(part) or (entry or {}).get("filesystem")
        if fs_type == "swap":
            tools.add("mkswap")
            continue
        if entry is None:
            continue
        tools |= entry_tools(entry, fs_type)
        if part.get("grow") and not options.get("dont_expand_volumes"):
            tools |= set(GROW_TOOLS.get(fs_type or "", ()))
            tools |= {"mount", "umount"} if fs_type in ("xfs", "btrfs") else set()
    volumes = restored_volumes(plan, manifest)
    if volumes:
        tools |= set(lvm.TOOLS)
    for _group, volume, entry in volumes:
        fs_type = volume.get("filesystem")
        if fs_type == "swap":
            tools.add("mkswap")
        if entry is not None:
            tools |= entry_tools(entry, fs_type)
        if volume.get("grow") and not options.get("dont_expand_volumes"):
            tools |= set(GROW_TOOLS.get(fs_type or "", ()))
    return tools


def entry_tools(entry: dict, fs_type: str | None) -> set[str]:
    """The programs that restore one stored image file."""
    tools = set()
    if (stage := decompress_stage(entry.get("compression") or "none")) is not None:
        tools.add(stage[0])
    if entry["kind"] == "partclone":
        tool = PARTCLONE_TOOL.get(entry.get("filesystem") or "", entry.get("filesystem"))
        tools.add(f"partclone.{tool}")
    elif entry["kind"] == "dd":
        tools.add("partclone.dd")
    elif entry["kind"] == "wim":
        tools |= {"wimlib-imagex", MKFS_TOOLS.get(fs_type or "", f"mkfs.{fs_type}")}
        tools |= set() if fs_type == "ntfs" else {"mount", "umount"}
    return tools


def missing_tools(tools: Iterable[str]) -> list[str]:
    """The programs of tools not found on PATH."""
    return sorted(tool for tool in set(tools) if shutil.which(tool) is None)


def _fs_type(part: dict) -> str | None:
    fs = part.get("filesystem")
    return fs.get("type") if isinstance(fs, dict) else fs


def _entry(manifest: dict, disk: int, number: int | None, lv: str | None) -> dict | None:
    for entry in manifest.get("files", []):
        if entry["kind"] in ("partclone", "dd", "wim") and entry["disk"] == disk and (
                entry.get("partition") == number and not entry.get("lv") if lv is None
                else entry.get("lv") == lv):
            return entry
    return None


def restored_volumes(plan: dict, manifest: dict) -> list[tuple[dict, dict, dict | None]]:
    """The planned LVs the deploy writes: (volume group, LV, manifest entry or None)."""
    return [(group, volume, _entry(manifest, plan["disk_index"], None, volume["source"]))
            for group in plan.get("volume_groups") or []
            for volume in group["logical_volumes"]]


def volume_group_problems(disk: Disk, plan: dict, others: dict[str, set[str]],
                          targets: set[str]) -> list[str]:
    """What stops the planned volume groups: a name another disk's VG holds, or LVs that
    do not fit their planned PV partition.

    others is {vg name: whole disks holding its PVs} as LVM sees this machine now.
    """
    problems = []
    index = plan.get("disk_index", 0)
    sizes = {p["number"]: int(p["size_sectors"]) * disk.logical_sector_size
             for p in plan.get("partitions") or []}
    for group in plan.get("volume_groups") or []:
        elsewhere = sorted(others.get(group["name"], set()) - targets)
        if elsewhere:
            problems.append(f"disk {index}: a volume group named {group['name']} already "
                            f"exists on {', '.join(elsewhere)}, which this deploy does not "
                            "write; two VGs of one name cannot be active together")
        pv_bytes = sizes.get(group["pv_partition"], 0)
        room = max(pv_bytes - LVM_DATA_OFFSET_BYTES, 0) // int(group["extent_bytes"])
        wanted = sum(int(v["extents"]) for v in group["logical_volumes"])
        if wanted > room:
            problems.append(f"disk {index}: the logical volumes of {group['name']} take "
                            f"{wanted} extents but its partition {group['pv_partition']} "
                            f"holds {room}")
    return problems


def restored(plan: dict, manifest: dict) -> list[tuple[dict, dict | None]]:
    """The planned partitions the deploy writes, each with its manifest entry (or None)."""
    result = []
    for part in plan.get("partitions") or []:
        if (part.get("role") == "extended" or part.get("source_partition") is None
                or not part.get("restore", True)):
            continue
        result.append((part, _entry(manifest, plan["disk_index"], part["source_partition"],
                                    part.get("lv"))))
    return result


def read_head(source: HeadSource, entry: dict, want: int) -> bytes:
    """Download the first bytes of a stored image file and decompress up to want bytes."""
    stream = source(entry)
    taken = bytearray()
    head = b""
    iterator = iter(stream)
    try:
        for data in iterator:
            taken += data
            head = decompress_prefix(bytes(taken), entry.get("compression") or "none", want)
            if len(head) >= want or len(taken) >= HEAD_LIMIT_BYTES:
                break
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # stop the download: only the head was wanted
    return head


def restored_files(plan: dict, schema_disk: dict, manifest: dict,
                   sector_size: int) -> list[tuple[str, int, int, dict]]:
    """Each stored file the plan restores: (label, target bytes, source bytes, entry).

    The source bytes are the partition's or LV's size on the source: what a raw copy needs.
    """
    items = []
    index = plan["disk_index"]
    sources = {p["number"]: p for p in schema_disk.get("partitions", [])}
    source_lss = int(schema_disk.get("logical_sector_size", sector_size))
    for part, entry in restored(plan, manifest):
        if entry is not None:
            src = sources.get(part["source_partition"]) or {}
            items.append((f"disk {index} partition {part['number']} ({entry['path']})",
                          int(part["size_sectors"]) * sector_size,
                          int(src.get("size_sectors", 0)) * source_lss, entry))
    lvs = {(g["name"], v["name"]): v for g in schema_disk.get("volume_groups") or []
           for v in g.get("logical_volumes") or []}
    for group, volume, entry in restored_volumes(plan, manifest):
        if entry is not None:
            src = lvs.get((group["name"], volume["name"])) or {}
            items.append((f"disk {index} LV {group['name']}/{volume['name']} "
                          f"({entry['path']})", int(volume["size_bytes"]),
                          int(src.get("size_bytes", 0)), entry))
    return items


def image_problems(plan: dict, schema_disk: dict, manifest: dict, source: HeadSource | None,
                   file_size: SizeProbe | None, sector_size: int) -> list[str]:
    """What is wrong with the stored image files this plan restores."""
    problems = []
    for label, target, need, entry in restored_files(plan, schema_disk, manifest,
                                                     sector_size):
        try:
            if file_size is not None:
                held = file_size(entry)
                if held != entry["size_bytes"]:
                    problems.append(f"{label}: the server holds {held} bytes, the manifest says "
                                    f"{entry['size_bytes']}: the image file is damaged or "
                                    "truncated")
                    continue
            if entry["kind"] == "dd" and need > target:
                problems.append(f"{label}: a raw copy of {need} bytes does not fit the "
                                f"planned {target}-byte partition")
            if source is None or entry["kind"] not in ("partclone", "wim"):
                continue
            want = PARTCLONE_HEADER_BYTES if entry["kind"] == "partclone" else 8
            head = read_head(source, entry, want)
            if not head:
                continue
            if entry["kind"] == "wim":
                check_wim_head(head, label)
                continue
            header = parse_partclone_header(head, label)
            check_fs_name(header, entry.get("filesystem"), label)
            needs_no_check(header, target, label)
        except ClientError as exc:
            problems.append(str(exc))
    return problems


def check_deploy(opened: list[Disk], plans: list[dict], schema: dict, manifest: dict,
                 options: dict, source: HeadSource | None = None,
                 file_size: SizeProbe | None = None) -> None:
    """Refuse the whole deploy, before anything is written, when any disk would not work."""
    if len(plans) > len(opened):
        raise DeployRefused(f"the plan needs {len(plans)} disks, {len(opened)} given")
    image_type = schema.get("image_type") or "block"
    disks = {d.get("index"): d for d in schema.get("disks", [])}
    problems: list[str] = []
    tools: set[str] = set()
    others = lvm.groups_by_disk() if any(p.get("volume_groups") for p in plans) else {}
    targets = {disk.path for disk in opened}
    for disk, plan in zip(opened, plans, strict=False):
        schema_disk = disks.get(plan.get("disk_index"), {})
        problems += table_problems(disk, plan, schema_disk, image_type)
        problems += volume_group_problems(disk, plan, others, targets)
        tools |= tools_needed(plan, manifest, options)
    if missing := missing_tools(tools):
        problems.append(f"missing tools in this imaging environment: {', '.join(missing)}")
    if not problems:
        for disk, plan in zip(opened, plans, strict=False):
            problems += image_problems(plan, disks.get(plan.get("disk_index"), {}), manifest,
                                       source, file_size, disk.logical_sector_size)
    if problems:
        raise DeployRefused("deploy refused, nothing was written: " + "; ".join(problems))
    log.info("preflight: %d disk(s) checked, the deploy fits", len(plans))


def http_file_size(api, image: str) -> SizeProbe:
    """A size probe that asks the server for the byte at the manifest's last offset."""

    def probe(entry: dict) -> int:
        size = int(entry.get("size_bytes") or 0)
        if size <= 0:
            return size
        received = 0
        try:
            for data in api.download(f"/images/{image}/files/{entry['path']}",
                                     offset=size - 1, size=size):
                received += len(data)
        except ClientError as exc:
            if getattr(exc, "status", None) == 416:  # the file ends before that byte
                return size - 1
            raise
        return size - 1 + received

    return probe
