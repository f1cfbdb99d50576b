"""After the partitions are written: GUIDs, growing, boot sector, names, modules, NVRAM.

`finish_disk` is shared by unicast and multicast deploys.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from client import lvm
from client.bcd import update_bcd
from client.devices import Disk
from client.run import ClientError

log = logging.getLogger("castor.client")

GROWABLE = ("ext2", "ext3", "ext4", "ntfs", "xfs", "btrfs")
MOUNTABLE = ("ext2", "ext3", "ext4", "ntfs", "xfs", "btrfs")


def _partitions(plan: dict) -> list[dict]:
    return [p for p in plan.get("partitions") or [] if p.get("role") != "extended"]


def _fs(part: dict) -> str | None:
    fs = part.get("filesystem")
    return fs.get("type") if isinstance(fs, dict) else fs


def _device(disk: Disk, part: dict) -> str:
    return disk.partition_device(part["number"], part["start_sector"], part["size_sectors"])


def set_guids(disk: Disk, plan: dict, options: dict, schema: dict | None = None) -> None:
    """Restore the source's partition GUIDs and disk id, or randomize them."""
    from client import bootcfg

    if plan.get("randomize_guids") or options.get("randomize_guids"):
        if plan.get("table") == "gpt":
            bootcfg.randomize_guids(disk.path)
            from client.guidrefs import follow_new_guids

            # PARTUUID= references in fstab and loader configs follow the new GUIDs.
            follow_new_guids(disk, plan, _source_guids(plan, schema or {}))
        return
    bootcfg.restore_partition_guids(disk.path, plan.get("table", "gpt"),
                                    [p for p in _partitions(plan) if p.get("uuid")],
                                    plan.get("disk_id"))


def _source_guids(plan: dict, schema: dict) -> dict[int, str]:
    """The source disk's partition GUIDs, by partition number."""
    disk = next((d for d in schema.get("disks", []) if d["index"] == plan["disk_index"]), {})
    return {p["number"]: p["uuid"].upper() for p in disk.get("partitions", []) if p.get("uuid")}


def _room_to_grow(part: dict, plan: dict, schema: dict) -> bool:
    """Tell whether the partition has at least one filesystem block more than the volume."""
    disk = next((d for d in schema.get("disks", []) if d["index"] == plan["disk_index"]), {})
    source = next((p for p in disk.get("partitions", [])
                   if p["number"] == part.get("source_partition")), {})
    fs = source.get("filesystem") or {}
    if not fs.get("volume_bytes"):
        return True
    room = part["size_sectors"] * plan["logical_sector_size"] - int(fs["volume_bytes"])
    # NTFS keeps its backup boot sector past the volume: that sector is not room to grow.
    return room >= int(fs.get("block_size") or 4096) + 512


def grow_filesystems(disk: Disk, plan: dict, options: dict,
                     schema: dict | None = None) -> list[int | str]:
    """Grow each restored filesystem to fill its partition or LV (unless the profile says
    not); return the partition numbers and `vg-lv` names grown."""
    if options.get("dont_expand_volumes"):
        return []
    from client.resize import expand

    grown: list[int | str] = []
    for part in _partitions(plan):
        fs_type = _fs(part)
        if fs_type in GROWABLE and part.get("grow") and part.get("source_partition"):
            if schema is not None and not _room_to_grow(part, plan, schema):
                continue  # already fills its partition: a resize would only re-check it
            expand(_device(disk, part), fs_type)
            grown.append(part["number"])
    for group, volume in _volumes(plan):
        if volume.get("filesystem") in GROWABLE and volume.get("grow"):
            source = _source_lv(schema or {}, plan, group["name"], volume["name"])
            fs = source.get("filesystem") or {}
            room = volume["size_bytes"] - int(fs.get("volume_bytes") or 0)
            if fs.get("volume_bytes") and room < int(fs.get("block_size") or 4096) + 512:
                continue
            expand(lvm.node(group["name"], volume["name"]), volume["filesystem"])
            grown.append(volume["source"])
    return grown


def _volumes(plan: dict) -> list[tuple[dict, dict]]:
    """Every planned (volume group, LV) pair of a disk plan, in plan order."""
    return [(g, v) for g in plan.get("volume_groups") or [] for v in g["logical_volumes"]]


def _source_lv(schema: dict, plan: dict, vg_name: str, lv_name: str) -> dict:
    """The schema's LV a planned LV restores (empty dict when none)."""
    disk = next((d for d in schema.get("disks", []) if d["index"] == plan["disk_index"]), {})
    for group in disk.get("volume_groups") or []:
        if group["name"] == vg_name:
            return next((v for v in group["logical_volumes"] if v["name"] == lv_name), {})
    return {}


def fix_boot_sectors(disk: Disk, plan: dict, options: dict) -> None:
    """Write each NTFS partition's start sector into its boot sectors (MBR and GPT disks).

    Windows formats GPT partitions with the start LBA as "hidden sectors" too, and its boot
    code reads the field on either table, so a partition that moved needs it rewritten.
    """
    if not options.get("fix_boot_sector", True):
        return
    from client.bootcfg import fix_ntfs_boot_sector, ntfs_boot_fields

    for part in _partitions(plan):
        if _fs(part) == "ntfs" and part.get("source_partition"):
            dev = _device(disk, part)
            if ntfs_boot_fields(dev)["hidden_sectors"] != part["start_sector"]:
                log.info("partition %d moved: NTFS hidden sectors set to %d", part["number"],
                         part["start_sector"])
            fix_ntfs_boot_sector(dev, part["start_sector"])


def _download_module(api, module: dict, into: Path) -> Path:
    """Fetch a file-copy module's files from the server into a folder."""
    listing = api.get(f"/modules/{module['module_id']}/files")
    for item in listing.get("files", []):
        target = into / item["path"]
        if into.resolve() not in target.resolve().parents:
            raise ClientError(f"module file {item['path']!r} leaves its folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as handle:
            for data in api.download(f"/modules/{module['module_id']}/files/{item['path']}",
                                     size=item.get("size_bytes")):
                handle.write(data)
    return into


def customize(disk: Disk, plan: dict, options: dict, api, env: dict) -> None:
    """Computer name, sysprep edits, before-file-copy scripts and file copies per partition."""
    from client import customize as steps
    from client.mount import mounted

    name = options.get("computer_name") or ""
    syspreps = options.get("syspreps") or []
    scripts = options.get("scripts") or []
    copies = options.get("file_copies") or []
    groups = {g["pv_partition"] for g in plan.get("volume_groups") or []}
    # Each restored filesystem: (its name for file copies, device, filesystem type).
    targets = [(str(p["number"]), _device(disk, p), _fs(p)) for p in _partitions(plan)
               if p.get("source_partition") and p["number"] not in groups]
    targets += [(v["source"], lvm.node(g["name"], v["name"]), v.get("filesystem"))
                for g, v in _volumes(plan)]
    for where, dev, fs_type in targets:
        wants_copy = [c for c in copies if str(c.get("destination_partition")) == where]
        mounted_work = (fs_type in MOUNTABLE and (
            (name and options.get("change_computer_name")) or syspreps
            or any(s.get("run_when") == "before_file_copy" for s in scripts)))
        if mounted_work:
            with mounted(dev, fs_type) as root:
                if name and options.get("change_computer_name"):
                    steps.set_computer_name(root, name)
                if syspreps:
                    steps.apply_sysprep(root, syspreps)
                steps.run_scripts(scripts, "before_file_copy",
                                  {**env, "CASTOR_PARTITION": where,
                                   "CASTOR_MOUNT_POINT": str(root)}, cwd=root)
        for module in steps.by_priority(wants_copy):
            if api is None:
                raise ClientError("file copy modules need the server")
            with tempfile.TemporaryDirectory(prefix="castor-module-") as tmp:
                source = _download_module(api, module, Path(tmp))
                steps.copy_files(dev, fs_type or "", source,
                                 module.get("destination_folder") or "/",
                                 bool(module.get("unzip")))


def update_boot_entries(disk: Disk, plan: dict, schema: dict, options: dict) -> None:
    """Recreate EFI boot entries from the schema (unless the profile disables it)."""
    if options.get("dont_update_nvram"):
        log.info("not updating NVRAM: the profile's Don't Update NVRAM is on")
        return
    source = next((d for d in schema.get("disks", []) if d["index"] == plan["disk_index"]), {})
    entries, esp = [], None
    for part in source.get("partitions", []):
        if part.get("efi_boot"):
            entries.append(part["efi_boot"])
            esp = part["number"]
    if entries and esp is not None:
        from client.bootcfg import update_nvram

        update_nvram(disk.path, esp, entries)


def finish_disk(disk: Disk, plan: dict, schema: dict, options: dict, *, api=None,
                env: dict | None = None) -> None:
    """Every step after the partitions of one disk are restored, in the reference order."""
    env = dict(env or {})
    disk.release_partitions()
    set_guids(disk, plan, options, schema)
    grow_filesystems(disk, plan, options, schema)
    fix_boot_sectors(disk, plan, options)
    update_bcd(disk, plan, schema, options)
    customize(disk, plan, options, api, env)
    scripts = options.get("scripts") or []
    if any(s.get("run_when") == "after_file_copy" for s in scripts):
        from client.customize import run_scripts

        run_scripts(scripts, "after_file_copy", env)
    update_boot_entries(disk, plan, schema, options)
    for group in plan.get("volume_groups") or []:
        lvm.deactivate(group["name"])
    disk.release_partitions()
