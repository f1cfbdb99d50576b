"""Deploy: plan from the server, write the table, restore each partition, finish the disk.

`deploy_plans` is the one deploy loop: unicast (`deploy_image`) and multicast
(`client.multicast`) run the same per-disk steps and differ only in their byte source
(`client.sources`).
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import ExitStack

from client import lvm
from client.api import Api
from client.devices import Disk, open_disk
from client.finish import finish_disk
from client.preflight import SizeProbe, check_deploy, http_file_size
from client.progress import LogCollector, Progress, send_log
from client.restore import ChecksumError, make_swap, restore_partition
from client.run import ClientError, run
from client.sources import HttpSource, as_source

log = logging.getLogger("castor.client")

# Where a deploy's bytes come from (client.sources): HTTP, or multicast completed by HTTP.
StreamSource = HttpSource
IMAGE_KINDS = ("partclone", "dd", "wim")


def manifest_file(manifest: dict, kind: str | tuple[str, ...], disk: int,
                  partition: int | None = None, lv: str | None = None) -> dict | None:
    """Find a manifest entry by kind, disk, and partition or logical volume."""
    kinds = (kind,) if isinstance(kind, str) else kind
    for entry in manifest.get("files", []):
        if entry["kind"] in kinds and entry["disk"] == disk and (
                entry.get("partition") == partition and not entry.get("lv") if lv is None
                else entry.get("lv") == lv):
            return entry
    return None


def write_table(disk: Disk, plan: dict, manifest: dict, source: StreamSource,
                options: dict, env: dict) -> None:
    """Wipe the disk's signatures and write the planned (or original) partition table."""
    disk.release_partitions()
    # Active LVs on this disk would keep its old partitions busy through the rewrite.
    for name in lvm.release_disk(disk.path):
        log.info("volume group %s on %s deactivated before the table is written", name,
                 disk.path)
    index = plan["disk_index"]
    if plan.get("method") == "custom_script" or plan.get("custom_script"):
        from client.customize import run_scripts

        run_scripts([{"name": "partition script", "contents": plan.get("custom_script") or
                      options.get("custom_partition_script", ""), "priority": 0,
                      "run_when": "partition"}], "partition", env)
        return
    # wipefs erases every signature it knows, both GPT headers and the MBR included.
    run(["wipefs", "-a", "-q", disk.path])
    if plan.get("restore_original_table"):
        entry = manifest_file(manifest, "table", index)
        if entry is None:
            raise ClientError(f"the image has no saved table for disk {index}")
        script = source.file_bytes(entry).decode()
        # The saved dump names the source device; sfdisk only needs the table lines.
        script = "\n".join(line for line in script.splitlines()
                           if not line.startswith(("device:", "last-lba:")))
        run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", disk.path], input=script)
    else:
        run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "--wipe", "always",
             disk.path], input=plan["sfdisk_script"])
    _restore_boot_code(disk, plan, manifest, source)
    disk.reread_table()


def _restore_boot_code(disk: Disk, plan: dict, manifest: dict, source: StreamSource) -> None:
    """Put the MBR boot code back (and, on MBR disks, the sectors before partition 1)."""
    entry = manifest_file(manifest, "head", plan["disk_index"])
    if entry is None:
        return
    head = source.file_bytes(entry)
    sector = disk.logical_sector_size
    starts = [p["start_sector"] for p in plan.get("partitions") or []]
    fd = os.open(disk.path, os.O_WRONLY)
    try:
        os.pwrite(fd, head[:440], 0)
        if plan.get("table") == "mbr" and starts:
            # Boot loaders (GRUB core.img) live in the gap; the partition table does not.
            gap_end = min(len(head), min(starts) * sector)
            if gap_end > sector:
                os.pwrite(fd, head[sector:gap_end], sector)
        os.fsync(fd)
    finally:
        os.close(fd)


def fs_type_of(part: dict) -> str | None:
    """The filesystem type of a planned partition (a name, or a schema filesystem object)."""
    fs = part.get("filesystem")
    return fs.get("type") if isinstance(fs, dict) else fs


def source_partition(schema: dict, disk_index: int, number: int | None) -> dict:
    """The schema's partition a planned partition restores (empty dict when none)."""
    disk = next((d for d in schema.get("disks", []) if d["index"] == disk_index), {})
    return next((p for p in disk.get("partitions", []) if p["number"] == number), {})


def restore_disk(disk: Disk, plan: dict, manifest: dict, schema: dict, source: StreamSource,
                 progress: Progress, cancel: threading.Event | None = None) -> None:
    """Restore every planned partition (and LV) of one disk, stopping at the first bad file."""
    index = plan["disk_index"]
    groups = {g["pv_partition"]: g for g in plan.get("volume_groups") or []}
    for part in plan.get("partitions") or []:
        fs_type = fs_type_of(part)
        src_number = part.get("source_partition")
        if part.get("role") == "extended" or src_number is None or not part.get(
                "restore", True):
            continue
        source_part = source_partition(schema, index, src_number)
        dev = disk.partition_device(part["number"], part["start_sector"], part["size_sectors"])
        if part["number"] in groups:
            restore_volume_group(dev, groups[part["number"]], index, manifest,
                                 _source_group(schema, index, src_number), source, progress,
                                 cancel)
            continue
        source_fs = source_part.get("filesystem") or {}
        if fs_type == "swap":
            make_swap(dev, source_fs.get("uuid", ""), source_fs.get("label", ""))
            continue
        entry = manifest_file(manifest, IMAGE_KINDS, index, src_number)
        if entry is None:
            log.info("partition %d has no image file: left empty", part["number"])
            continue
        restore_file(source, entry, dev, source_fs, f"hd{index} part{part['number']}",
                     progress, cancel, disk=index, partition=part["number"])


def _source_group(schema: dict, disk_index: int, pv_partition: int) -> dict:
    """The schema's volume group on a source PV partition (empty dict when none)."""
    disk = next((d for d in schema.get("disks", []) if d["index"] == disk_index), {})
    return next((g for g in disk.get("volume_groups") or []
                 if g["pv_partition"] == pv_partition), {})


def restore_volume_group(dev: str, group: dict, index: int, manifest: dict,
                         source_group: dict, source: StreamSource, progress: Progress,
                         cancel: threading.Event | None = None) -> None:
    """Create a planned volume group on its PV partition and restore each of its LVs."""
    lvm.create_volume_group(dev, group)
    sources = {v["name"]: v for v in source_group.get("logical_volumes") or []}
    for volume in group["logical_volumes"]:
        lv_dev = lvm.node(group["name"], volume["name"])
        source_fs = (sources.get(volume["name"]) or {}).get("filesystem") or {}
        name = f"{group['name']}/{volume['name']}"
        if volume.get("filesystem") == "swap":
            make_swap(lv_dev, source_fs.get("uuid", ""), source_fs.get("label", ""))
            continue
        entry = manifest_file(manifest, IMAGE_KINDS, index, lv=volume["source"])
        if entry is None:
            log.info("logical volume %s has no image file: left empty", name)
            continue
        restore_file(source, entry, lv_dev, source_fs, f"hd{index} {name}", progress, cancel,
                     disk=index, partition=group["pv_partition"])


def restore_file(source: StreamSource, entry: dict, dev: str, source_fs: dict, what: str,
                 progress: Progress, cancel: threading.Event | None, *, disk: int,
                 partition: int) -> None:
    """Restore one stored image file onto a partition or LV device, verified as it flows."""
    progress.start("deploy", what, entry["size_bytes"], disk=disk, partition=partition)
    restore = {"compression": entry.get("compression", "none"),
               "fs_type": entry.get("filesystem"), "device": dev,
               "expected_sha256": entry.get("sha256"), "kind": entry["kind"],
               "label": f"{what} ({entry['path']})", "expected_size": entry["size_bytes"],
               "fs_label": source_fs.get("label", ""), "fs_uuid": source_fs.get("uuid", ""),
               "on_stderr_line": progress.tool_line, "on_bytes": progress.update,
               "cancel": cancel}
    try:
        restore_partition(source.partition(entry), **restore)
    except ChecksumError as exc:
        if not source.retries_over_http or (cancel is not None and cancel.is_set()):
            raise
        # Multicast bytes (or their HTTP completion) did not verify: start over by HTTP.
        log.warning("%s; restoring it again over HTTP", exc)
        progress.start("deploy", what, entry["size_bytes"], disk=disk, partition=partition)
        restore_partition(source.http(entry), **restore)
        source.restored(entry, again_over_http=True)
    else:
        source.restored(entry)
    progress.finish()


def disk_facts(disks: list[Disk]) -> list[dict]:
    """What the planner needs to know of each destination disk."""
    return [{"size_bytes": d.size_bytes, "logical_sector_size": d.logical_sector_size,
             "physical_sector_size": d.physical_sector_size, "name": d.name} for d in disks]


def deploy_image(api: Api, image: str, profile: str | int | None, disks: list[str],
                 options: dict | None = None) -> dict:
    """Deploy image `image` onto the disks; return the server's deploy answer."""
    options = dict(options or {})
    with ExitStack() as stack:
        opened = [stack.enter_context(open_disk(path)) for path in disks]
        answer = api.post("/deploys", {"image": image, "profile": profile,
                                       "disks": disk_facts(opened)})
        task_id = answer.get("task_id")
        # A web task is checked out (and its log sent) by task mode; on demand we do it here.
        own_id = task_id if answer.get("on_demand", True) else None
        progress = Progress(lambda body: api.post("/progress", {"task_id": task_id, **body}))
        collector = LogCollector()
        logging.getLogger("castor.client").addHandler(collector)
        try:
            deploy_plans(api, answer, opened, HttpSource(api, image), progress, options)
        except BaseException as exc:
            log.error("deploy failed: %s", exc)
            send_log(api, own_id, collector)
            api.checkout(own_id, False, str(exc) or type(exc).__name__,
                         progress.cancelled.is_set())
            raise
        send_log(api, own_id, collector)
        api.checkout(own_id, True)
    return answer


def deploy_plans(api: Api | None, answer: dict, opened: list[Disk], source: StreamSource,
                 progress: Progress, options: dict, file_size: SizeProbe | None = None) -> None:
    """Run the whole deploy of the server's plans on the opened disks."""
    source = as_source(source)
    profile_options = {**answer.get("profile", {}), **options}
    plans = answer["plans"]
    if len(plans) > len(opened):
        raise ClientError(f"the plan needs {len(plans)} disks, {len(opened)} given")
    # Every refusal happens before the first write (issue 11): sizes, sectors, tools, images.
    # File sizes and headers come over HTTP for unicast and multicast alike (a multicast
    # stream is never read before its turn): a byte and a bounded head per file
    # (client.preflight says how much each source reads).
    if file_size is None and api is not None:
        file_size = http_file_size(api, answer["image"]["name"])
    check_deploy(opened, plans, answer["schema"], answer["manifest"], profile_options,
                 source.head, file_size)
    for disk, plan in zip(opened, plans, strict=False):
        env = {"CASTOR_DISK": disk.path, "CASTOR_IMAGE": answer["image"]["name"],
               "CASTOR_COMPUTER_NAME": profile_options.get("computer_name", "")}
        _scripts(profile_options, "before_imaging", env)
        write_table(disk, plan, answer["manifest"], source, profile_options, env)
        restore_disk(disk, plan, answer["manifest"], answer["schema"], source, progress,
                     progress.cancelled)
        finish_disk(disk, plan, answer["schema"], profile_options, api=api, env=env)
    source.close()


def _scripts(options: dict, run_when: str, env: dict) -> None:
    """Run the profile's scripts for one moment of the deploy."""
    scripts = options.get("scripts") or []
    if not any(s.get("run_when") == run_when for s in scripts):
        return
    from client.customize import run_scripts

    run_scripts(scripts, run_when, env)

