"""Upload: check, shrink, describe, and stream every partition of the disks to the server."""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack

from client import lvm
from client.api import Api
from client.capture import block_spec, file_spec, send_bytes, send_capture
from client.devices import Disk, open_disk
from client.pipeline import run_pipeline
from client.probe import build_schema, probe_disk
from client.progress import LogCollector, Progress, send_log
from client.run import ClientError, run

log = logging.getLogger("castor.client")

GIB = 1 << 30
DEFAULT_SHRINK_THRESHOLD = 5 * GIB
SHRINKABLE = ("ext2", "ext3", "ext4", "ntfs")


def _selection(options: dict) -> dict | None:
    """The profile's custom upload schema, when it is switched on."""
    if options.get("use_custom_upload_schema") and options.get("custom_upload_schema"):
        raw = options["custom_upload_schema"]
        return json.loads(raw) if isinstance(raw, str) else raw
    return None


def apply_selection(schema: dict, selection: dict | None) -> dict:
    """Mark the disks and partitions the custom upload schema leaves out (`upload: false`)."""
    if not selection:
        return schema
    chosen = {d.get("index", i): d for i, d in enumerate(selection.get("disks", []))}
    for disk in schema["disks"]:
        picked = chosen.get(disk["index"])
        if picked is None:
            continue
        disk["upload"] = picked.get("upload", True)
        parts = {p["number"]: p for p in picked.get("partitions", [])}
        for part in disk["partitions"]:
            mine = parts.get(part["number"], {})
            part["upload"] = mine.get("upload", True) and disk["upload"]
            if mine.get("fixed"):
                part["fixed"] = True
        for group in disk.get("volume_groups") or []:
            for volume in group["logical_volumes"]:
                mine = sel_lv(picked, group["name"], volume["name"])
                volume["upload"] = mine.get("upload", True) and disk["upload"]
                if mine.get("fixed"):
                    volume["fixed"] = True
    return schema


def sel_lv(selection_disk: dict, vg_name: str, lv_name: str) -> dict:
    """The custom upload schema's entry for one LV (empty when it has none)."""
    for group in selection_disk.get("volume_groups") or []:
        if group.get("name") == vg_name:
            for volume in group.get("logical_volumes") or []:
                if volume.get("name") == lv_name:
                    return volume
    return {}


def table_files(api: Api, upload_id: str, disk: Disk, info: dict) -> list[dict]:
    """Save the table area: sfdisk dump, sgdisk backup (GPT) and the raw head sectors."""
    index = info["index"]
    entries = [send_bytes(api, upload_id, f"hd{index}/table.sfdisk",
                          run(["sfdisk", "--dump", disk.path]).encode(), "table", index)]
    if info["table"] == "gpt":
        import tempfile

        with tempfile.NamedTemporaryFile(prefix="castor-gpt-") as tmp:
            run(["sgdisk", f"--backup={tmp.name}", disk.path])
            entries.append(send_bytes(api, upload_id, f"hd{index}/table.sgdisk",
                                      open(tmp.name, "rb").read(), "gpt-backup", index))
    head = bytearray()
    count = info["table_area_sectors"]
    run_pipeline([["dd", f"if={disk.path}", f"bs={disk.logical_sector_size}",
                   f"count={count}", "status=none"]], sink=head.extend)
    entries.append(send_bytes(api, upload_id, f"hd{index}/head.bin", bytes(head), "head",
                              index))
    return entries


def _shrink_all(stack: ExitStack, disk: Disk, info: dict, options: dict, block: bool) -> None:
    """Shrink big ext/NTFS filesystems (and their LVs) for the capture; the stack grows
    everything back when it unwinds, errors included."""
    if not block or options.get("dont_shrink_volumes"):
        return
    try:
        from client.resize import filesystem_info, shrunk_for_capture
    except ImportError:
        log.warning("resize support missing: capturing filesystems at full size")
        return
    threshold = int(options.get("shrink_threshold_bytes") or DEFAULT_SHRINK_THRESHOLD)
    slack = options.get("shrink_slack_bytes")
    slack = None if slack is None else int(slack)

    def shrink(dev: str, fs: dict, pins_at: tuple[int, int]) -> int | None:
        new_size = stack.enter_context(shrunk_for_capture(
            dev, fs["type"], True, threshold, slack, record=fs, pins_at=pins_at))
        if new_size is not None:
            fs.update(filesystem_info(dev, fs["type"]))
            fs["volume_bytes"] = new_size
            fs["min_bytes"] = new_size
            fs["shrunk"] = True
        return new_size

    for part in info["partitions"]:
        fs = part.get("filesystem")
        if not fs or not part.get("upload", True) or part.get("fixed"):
            continue
        if fs["type"] not in SHRINKABLE:
            continue
        dev = disk.partition_device(part["number"], part["start_sector"], part["size_sectors"])
        new_size = shrink(dev, fs, (part["start_sector"], disk.logical_sector_size))
        if new_size is not None:
            log.info("partition %d shrunk to %d bytes for the capture", part["number"],
                     new_size)
    if options.get("dont_shrink_lvm"):
        if info.get("volume_groups"):
            log.info("not shrinking logical volumes: the profile's Don't Shrink LVM Volumes "
                     "is on")
        return
    for group in uploaded_groups(info):
        for volume in group["logical_volumes"]:
            fs = volume.get("filesystem")
            if (not fs or not volume.get("upload", True) or volume.get("fixed")
                    or fs["type"] not in SHRINKABLE):
                continue
            new_size = shrink(lvm.node(group["name"], volume["name"]), fs, (0, 512))
            if new_size is None:
                continue
            extents = -(-new_size // group["extent_bytes"])
            if extents < volume["extents"]:
                # The LV follows its filesystem down; the stack extends it back before the
                # filesystem grows back (last in, first out).
                stack.enter_context(lvm.reduced(group["name"], volume["name"], extents,
                                                volume["extents"]))
                volume["captured_extents"] = extents
            log.info("logical volume %s/%s shrunk to %d bytes for the capture",
                     group["name"], volume["name"], new_size)


def uploaded_groups(info: dict) -> list[dict]:
    """The volume groups of a disk whose PV partition is uploaded."""
    numbers = {p["number"] for p in info["partitions"] if p.get("upload", True)}
    return [g for g in info.get("volume_groups") or [] if g["pv_partition"] in numbers]


def refuse_file_lvm(schema: dict) -> None:
    """Refuse a file (WIM) image of a disk holding logical volumes, before any capture."""
    if schema.get("image_type") != "file":
        return
    for disk in schema["disks"]:
        if disk.get("upload", True) and uploaded_groups(disk):
            names = ", ".join(g["name"] for g in uploaded_groups(disk))
            raise ClientError(f"disk {disk['index']} holds LVM volume group(s) {names}: file "
                              "(WIM) images of logical volumes are not supported; upload it "
                              "as a block image")


def _checks(disk: Disk, info: dict, options: dict) -> None:
    """Run the upload checks of REFERENCE §5 (each skippable by its profile option)."""
    try:
        from client.checks import run_upload_checks
    except ImportError:
        log.warning("upload checks missing: skipped")
        return
    parts = [{"number": p["number"],
              "device": disk.partition_device(p["number"], p["start_sector"],
                                              p["size_sectors"]),
              "fs_type": (p.get("filesystem") or {}).get("type")}
             for p in info["partitions"] if p["role"] != "extended" and p.get("upload", True)]
    run_upload_checks(disk.path, parts, options)


def capture_disk(api: Api, upload_id: str, disk: Disk, info: dict, options: dict,
                 image_type: str, progress: Progress) -> list[dict]:
    """Stream every selected partition of one disk; return the manifest entries."""
    entries = table_files(api, upload_id, disk, info)
    algorithm = options.get("compression_algorithm") or "zstd"
    level = options.get("compression_level")
    sector = disk.logical_sector_size
    groups = {g["pv_partition"]: g for g in uploaded_groups(info)}
    for part in info["partitions"]:
        fs = part.get("filesystem") or {}
        fs_type = fs.get("type")
        if part["role"] == "extended" or not part.get("upload", True) or fs_type == "swap":
            continue  # extended lives in the table; swap is recreated with mkswap -U
        if part["number"] in groups:
            entries += capture_volume_group(api, upload_id, info["index"], groups[
                part["number"]], options, progress)
            continue
        dev = disk.partition_device(part["number"], part["start_sector"], part["size_sectors"])
        source_bytes = int(fs.get("used_bytes") or part["size_sectors"] * sector)
        if image_type == "file" and fs_type in ("ntfs", "ext2", "ext3", "ext4", "xfs",
                                                "btrfs"):
            spec = file_spec(info["index"], part["number"], fs_type, dev, algorithm, level,
                             source_bytes)
        else:
            spec = block_spec(info["index"], part["number"], fs_type, dev, algorithm, level,
                              source_bytes, shrunk=bool(fs.get("shrunk")))
        progress.start("upload", f"hd{info['index']} part{part['number']}", source_bytes,
                       disk=info["index"], partition=part["number"])
        entries.append(send_capture(api, upload_id, spec, on_stderr_line=progress.tool_line,
                                    on_bytes=progress.update, cancel=progress.cancelled))
        progress.finish()
    return entries


def capture_volume_group(api: Api, upload_id: str, disk_index: int, group: dict,
                         options: dict, progress: Progress) -> list[dict]:
    """Stream every selected LV of a volume group with partclone by its filesystem.

    Swap LVs are recreated at deploy (mkswap with the same UUID), like swap partitions.
    """
    algorithm = options.get("compression_algorithm") or "zstd"
    level = options.get("compression_level")
    entries = []
    for volume in group["logical_volumes"]:
        fs = volume.get("filesystem") or {}
        if not volume.get("upload", True) or fs.get("type") == "swap":
            continue
        key = lvm.lv_key(group["name"], volume["name"])
        source_bytes = int(fs.get("used_bytes") or volume["size_bytes"])
        spec = block_spec(disk_index, group["pv_partition"], fs.get("type"),
                          lvm.node(group["name"], volume["name"]), algorithm, level,
                          source_bytes, lv=key, shrunk=bool(fs.get("shrunk")))
        progress.start("upload", f"hd{disk_index} {group['name']}/{volume['name']}",
                       source_bytes, disk=disk_index, partition=group["pv_partition"])
        entries.append(send_capture(api, upload_id, spec, on_stderr_line=progress.tool_line,
                                    on_bytes=progress.update, cancel=progress.cancelled))
        progress.finish()
    return entries


def upload_image(api: Api, image: str, profile: str | int | None, disks: list[str],
                 options: dict | None = None) -> dict:
    """Upload the disks as image `image`; return the server's answer (image + manifest)."""
    options = dict(options or {})
    session = api.post("/uploads", {"image": image, "profile": profile})
    upload_id, task_id = session["upload_id"], session.get("task_id")
    # A web task is checked out (and its log sent) by task mode; on demand we do it here.
    own_task = session.get("on_demand", True)
    profile_options = {**session.get("profile", {}), **options}
    image_type = session["image"]["type"] if session["image"]["type"] != "both" else "block"
    progress = Progress(lambda body: api.post("/progress", {"task_id": task_id, **body}))
    collector = LogCollector()
    logging.getLogger("castor.client").addHandler(collector)
    try:
        with ExitStack() as stack:
            opened = [stack.enter_context(open_disk(path)) for path in disks]
            infos = [probe_disk(disk, i) for i, disk in enumerate(opened)]
            for info in infos:
                for group in info["volume_groups"]:
                    stack.callback(lvm.deactivate, group["name"])
            schema = apply_selection(build_schema(infos, image_type),
                                     _selection(profile_options))
            refuse_file_lvm(schema)
            for disk, info in zip(opened, infos, strict=True):
                if info.get("upload", True):
                    _checks(disk, info, profile_options)
            # Shrunk filesystems are grown back when this stack unwinds, errors included.
            for disk, info in zip(opened, infos, strict=True):
                if info.get("upload", True):
                    _shrink_all(stack, disk, info, profile_options, image_type == "block")
            api.put_json(f"/uploads/{upload_id}/schema", schema)
            if profile_options.get("upload_schema_only"):
                answer = api.post(f"/uploads/{upload_id}/complete", {"schema_only": True})
                _close_task(api, task_id if own_task else None, collector, True)
                return {**answer, "task_id": task_id}
            entries: list[dict] = []
            for disk, info in zip(opened, infos, strict=True):
                if info.get("upload", True):
                    entries += capture_disk(api, upload_id, disk, info, profile_options,
                                            image_type, progress)
            answer = api.post(f"/uploads/{upload_id}/complete", {"files": entries})
    except BaseException as exc:
        try:
            api.request("DELETE", f"/uploads/{upload_id}", retry=False)
        except ClientError as abort_exc:
            log.warning("could not abort upload %s: %s", upload_id, abort_exc)
        log.error("upload failed: %s", exc)
        _close_task(api, task_id if own_task else None, collector, False, exc,
                    progress.cancelled.is_set())
        raise
    _close_task(api, task_id if own_task else None, collector, True)
    return {**answer, "task_id": task_id}


def _close_task(api: Api, task_id: int | None, collector: LogCollector, ok: bool,
                exc: BaseException | None = None, cancelled: bool = False) -> None:
    """Send the log and check the on-demand task out (task_id None: only stop collecting)."""
    send_log(api, task_id, collector)
    api.checkout(task_id, ok, "" if exc is None else (str(exc) or type(exc).__name__),
                 cancelled)
