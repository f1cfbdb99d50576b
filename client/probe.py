"""Read disks and filesystems: parsers of real tool output, and the schema v1 builder.

The parsers are pure functions over the text the tools print; `probe_disk` runs the tools.
"""

from __future__ import annotations

import json
import logging
import re

from client import efiboot, lvm
from client.run import CommandError, run

log = logging.getLogger("castor.client")

SCHEMA_FORMAT = "castor-schema"
SCHEMA_VERSION = 1
EXTENDED_TYPES = {"05", "0f", "85"}
# Filesystems partclone images by their used blocks; anything else goes through partclone.dd.
PARTCLONE_FILESYSTEMS = {"ext2", "ext3", "ext4", "ntfs", "vfat", "xfs", "btrfs", "exfat",
                         "hfsplus", "f2fs"}


def parse_sfdisk_json(text: str) -> dict:
    """Return the partition table of `sfdisk --json` as schema-shaped data (no filesystems)."""
    table = json.loads(text)["partitiontable"]
    label = "gpt" if table["label"] == "gpt" else "mbr"
    partitions = []
    boot_partition = None
    for entry in table.get("partitions", []):
        number = int(re.search(r"(\d+)$", entry["node"]).group(1))
        ptype = entry["type"]
        if label == "mbr":
            ptype = f"{int(ptype, 16):02x}"
            role = ("extended" if ptype in EXTENDED_TYPES
                    else "logical" if number >= 5 else "primary")
        else:
            ptype = ptype.upper()
            role = "primary"
        bootable = bool(entry.get("bootable", False))
        if bootable and label == "mbr":
            boot_partition = number
        partitions.append({
            "number": number,
            "start_sector": int(entry["start"]),
            "size_sectors": int(entry["size"]),
            "type": ptype,
            "uuid": entry.get("uuid", "").upper() or None,
            "name": entry.get("name", ""),
            "attributes": entry.get("attrs", ""),
            "bootable": bootable,
            "role": role,
            "filesystem": None,
            "efi_boot": None,
            "lvm_vg": None,
        })
    disk_id = table.get("id", "")
    if label == "gpt":
        disk_id = disk_id.upper()
    return {
        "table": label,
        "disk_id": disk_id,
        "boot_partition": boot_partition,
        "sector_size": int(table.get("sectorsize", 512)),
        "first_lba": table.get("firstlba"),
        "last_lba": table.get("lastlba"),
        "partitions": partitions,
    }


def parse_blkid_export(text: str) -> dict[str, str]:
    """Return the KEY=value pairs of `blkid -o export` for one device."""
    values = {}
    for line in text.splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def parse_lsblk_json(text: str) -> list[dict]:
    """Return the flat device list of `lsblk --json -b` (children flattened)."""
    found: list[dict] = []

    def walk(devices: list[dict]) -> None:
        for device in devices:
            found.append({k: v for k, v in device.items() if k != "children"})
            walk(device.get("children") or [])

    walk(json.loads(text).get("blockdevices", []))
    return found


def parse_dumpe2fs(text: str) -> dict:
    """Return volume, used and block size in bytes from `dumpe2fs -h`."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    block = int(fields["Block size"])
    count = int(fields["Block count"])
    free = int(fields["Free blocks"])
    return {"volume_bytes": count * block, "used_bytes": (count - free) * block,
            "block_size": block}


def parse_ntfsresize_info(text: str) -> dict:
    """Return volume, minimum and cluster size in bytes from `ntfsresize -i -f`."""
    volume = re.search(r"Current volume size:\s*(\d+) bytes", text)
    cluster = re.search(r"Cluster size\s*:\s*(\d+) bytes", text)
    minimum = re.search(r"You might resize at (\d+) bytes", text)
    if volume is None:
        raise ValueError("no volume size in ntfsresize output")
    result = {"volume_bytes": int(volume.group(1)),
              "block_size": int(cluster.group(1)) if cluster else 4096,
              "min_bytes": int(minimum.group(1)) if minimum else int(volume.group(1))}
    # ntfsresize's minimum is the used space rounded up to whole clusters: the best figure.
    result["used_bytes"] = result["min_bytes"]
    return result


def parse_xfs_info(text: str) -> dict:
    """Return volume size and block size in bytes from `xfs_info`."""
    match = re.search(r"^data\s*=\s*bsize=(\d+)\s+blocks=(\d+)", text, re.M)
    if match is None:
        raise ValueError("no data section in xfs_info output")
    block, blocks = int(match.group(1)), int(match.group(2))
    return {"volume_bytes": block * blocks, "block_size": block}


PROGRESS_RE = re.compile(
    r"Elapsed:\s*([\d:]+), Remaining:\s*([\d:]+), Completed:\s*([\d.]+)%"
    r"(?:,\s*(?:Rate:\s*)?([\d.]+)\s*([KMGT]?B|byte)/min)?")
BLOCKS_RE = re.compile(r"current block:\s*(\d+), total block:\s*(\d+)")


def _seconds(clock: str) -> int:
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return total


def parse_partclone_progress(line: str) -> dict | None:
    """Parse one partclone progress line into percent/elapsed/remaining/rate, or None."""
    match = PROGRESS_RE.search(line)
    if match:
        result: dict = {"percent": float(match.group(3)), "elapsed_s": _seconds(match.group(1)),
                        "remaining_s": _seconds(match.group(2))}
        if match.group(4):
            unit = {"byte": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
            result["rate_bytes_s"] = float(match.group(4)) * unit[match.group(5)] / 60
        return result
    match = BLOCKS_RE.search(line)
    if match:
        current, total = int(match.group(1)), int(match.group(2))
        return {"current_block": current, "total_blocks": total,
                "percent": 100.0 * current / total if total else 0.0}
    return None


def filesystem_entry(blkid: dict[str, str], info: dict, partition_bytes: int) -> dict | None:
    """Combine blkid fields and size info into a schema filesystem object."""
    fs_type = blkid.get("TYPE")
    if not fs_type:
        return None
    volume = int(info.get("volume_bytes") or partition_bytes)
    used = int(info.get("used_bytes") or volume)
    return {
        "type": fs_type,
        "uuid": blkid.get("UUID", ""),
        "label": blkid.get("LABEL", ""),
        "volume_bytes": volume,
        "used_bytes": min(used, volume),
        "min_bytes": int(info.get("min_bytes") or volume),
        "shrunk": False,
        "block_size": int(info.get("block_size") or blkid.get("BLOCK_SIZE") or 512),
    }


def filesystem_info(dev: str, fs_type: str) -> dict:
    """Run the filesystem's own tool for its sizes (empty dict when there is none)."""
    try:
        from client import resize  # the client-steps module, when present
    except ImportError:
        resize = None
    if resize is not None and hasattr(resize, "filesystem_info"):
        try:
            info = dict(resize.filesystem_info(dev, fs_type))
            if fs_type == "ntfs" and "min_bytes" not in info:
                info["min_bytes"] = parse_ntfsresize_info(
                    run(["ntfsresize", "-i", "-f", dev], check=False)).get("min_bytes")
            return info
        except (CommandError, ValueError, KeyError):
            pass
    try:
        if fs_type in ("ext2", "ext3", "ext4"):
            return parse_dumpe2fs(run(["dumpe2fs", "-h", dev]))
        if fs_type == "ntfs":
            return parse_ntfsresize_info(run(["ntfsresize", "-i", "-f", dev]))
        if fs_type == "xfs":
            return parse_xfs_info(run(["xfs_db", "-r", "-c", "info", dev]))
    except (CommandError, ValueError, KeyError):
        return {}
    return {}


def probe_blkid(dev: str) -> dict[str, str]:
    """Return blkid's low-level probe of a device (empty when nothing is found)."""
    return parse_blkid_export(run(["blkid", "-p", "-o", "export", dev], check=False))


def probe_lvm(pv_device: str, number: int) -> dict | None:
    """Activate the volume group on a PV partition and describe it with each LV's filesystem.

    None when LVM cannot activate it here (no device-mapper, a VG over several PVs): the PV
    is then captured raw, as one partition.
    """
    try:
        group = lvm.probe_volume_group(pv_device, number)
        lvm.settle(group["name"], [v["name"] for v in group["logical_volumes"]])
        for volume in group["logical_volumes"]:
            dev = lvm.node(group["name"], volume["name"])
            blkid = probe_blkid(dev)
            fs_type = blkid.get("TYPE")
            info = filesystem_info(dev, fs_type) if fs_type else {}
            volume["filesystem"] = filesystem_entry(blkid, info, volume["size_bytes"])
    except (CommandError, lvm.LvmError) as exc:
        log.warning("partition %d is an LVM physical volume the client cannot open (%s): "
                    "capturing it raw", number, exc)
        return None
    log.info("partition %d: volume group %s with %d logical volume(s)", number, group["name"],
             len(group["logical_volumes"]))
    return group


def probe_disk(disk, index: int) -> dict:
    """Read one opened Disk into a schema disk object, filesystems included."""
    table = parse_sfdisk_json(run(["sfdisk", "--json", disk.path]))
    sector = disk.logical_sector_size
    total_sectors = disk.size_bytes // sector
    partitions = table["partitions"]
    volume_groups: list[dict] = []
    for part in partitions:
        if part["role"] == "extended":
            continue
        dev = disk.partition_device(part["number"], part["start_sector"], part["size_sectors"])
        blkid = probe_blkid(dev)
        fs_type = blkid.get("TYPE")
        if blkid.get("TYPE") == "LVM2_member":
            vg = run(["pvs", "--noheadings", "-o", "vg_name", dev], check=False).strip()
            part["lvm_vg"] = vg or None
            group = probe_lvm(dev, part["number"]) if vg else None
            if group:
                volume_groups.append(group)
            continue
        info = filesystem_info(dev, fs_type) if fs_type else {}
        part["filesystem"] = filesystem_entry(blkid, info, part["size_sectors"] * sector)
        if fs_type == "vfat" and efiboot.is_esp(part):
            part["efi_boot"] = efiboot.efi_boot_entry(dev, part)
    starts = [p["start_sector"] for p in partitions if p["role"] != "logical"]
    if table["table"] == "gpt":
        first, last = int(table["first_lba"]), int(table["last_lba"])
    else:
        first, last = 1, total_sectors - 1
    return {
        "index": index,
        "name": disk.name,
        "size_bytes": disk.size_bytes,
        "logical_sector_size": sector,
        "physical_sector_size": disk.physical_sector_size,
        "table": table["table"],
        "disk_id": table["disk_id"],
        "boot_partition": table["boot_partition"],
        "first_usable_sector": first,
        "last_usable_sector": last,
        "table_area_sectors": min(starts) if starts else first,
        "partitions": partitions,
        "volume_groups": volume_groups,
    }


def build_schema(disks: list[dict], image_type: str = "block") -> dict:
    """Wrap probed disk objects into a schema v1 document."""
    return {"format": SCHEMA_FORMAT, "version": SCHEMA_VERSION, "image_type": image_type,
            "disks": disks}
