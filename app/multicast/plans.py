"""Deploy plans for joining clients: the planner's when present, else the original layout."""

from __future__ import annotations

import json

from app.models import Image, ImageProfile

GPT_BACKUP_SECTORS = 33


class PlanError(Exception):
    """The image cannot go to the client's disks; the message says why."""


def profile_options(profile: ImageProfile | None) -> dict:
    """Return the profile's deploy options the client needs."""
    if profile is None:
        return {}
    from app.models.profiles import OPTION_FIELDS

    return {f: getattr(profile, f) for f in OPTION_FIELDS
            if f not in ("custom_upload_schema", "deploy_schema", "custom_partition_script")}


def plan_for(image: Image, profile: ImageProfile | None, disks: list[dict]) -> list[dict]:
    """Return one plan per destination disk, refusing disks the image cannot fit."""
    schema = image.schema
    if schema is None:
        raise PlanError(f"image {image.name} has no schema")
    try:
        from app.imaging.planner import PlanError as PlannerError
        from app.imaging.planner import plan_deploy
    except ImportError:
        return original_plans(schema, disks)
    selection = None
    if profile is not None and profile.modify_image_schema and profile.deploy_schema:
        selection = json.loads(profile.deploy_schema)
    try:
        return plan_deploy(schema, selection, disks, profile_options(profile))
    except PlannerError as exc:
        raise PlanError(str(exc)) from exc


def sfdisk_script(disk: dict) -> str:
    """Return an `sfdisk` script that recreates a schema disk's table as it was."""
    lines = [f"label: {'gpt' if disk['table'] == 'gpt' else 'dos'}", "unit: sectors"]
    if disk.get("disk_id"):
        lines.append(f"label-id: {disk['disk_id']}")
    lines.append("")
    for part in disk["partitions"]:
        fields = [f"start={part['start_sector']}", f"size={part['size_sectors']}",
                  f"type={part['type']}"]
        if disk["table"] == "gpt":
            if part.get("uuid"):
                fields.append(f"uuid={part['uuid']}")
            if part.get("name"):
                fields.append(f'name="{part["name"]}"')
        elif part.get("bootable"):
            fields.append("bootable")
        lines.append(", ".join(fields))
    return "\n".join(lines) + "\n"


def original_plans(schema: dict, disks: list[dict]) -> list[dict]:
    """Plan the original tables of the schema's disks onto the given disks, in order."""
    if len(disks) < len(schema["disks"]):
        raise PlanError(f"the image has {len(schema['disks'])} disks, the client gave "
                        f"{len(disks)}")
    plans = []
    for source, target in zip(schema["disks"], disks, strict=False):
        sector = source["logical_sector_size"]
        if target.get("logical_sector_size", sector) != sector:
            raise PlanError(f"disk {source['index']}: the image uses {sector}-byte sectors, the "
                            f"destination {target['logical_sector_size']}-byte ones")
        end = max((p["start_sector"] + p["size_sectors"] for p in source["partitions"]),
                  default=0)
        if source["table"] == "gpt":
            end += GPT_BACKUP_SECTORS
        if target["size_bytes"] < end * sector:
            raise PlanError(f"disk {source['index']}: the destination has "
                            f"{target['size_bytes']} bytes, the image needs at least "
                            f"{end * sector}")
        plans.append({
            "disk_index": source["index"], "method": "original", "table": source["table"],
            "logical_sector_size": sector, "disk_id": source.get("disk_id"),
            "sfdisk_script": sfdisk_script(source),
            "partitions": [{
                "number": p["number"], "start_sector": p["start_sector"],
                "size_sectors": p["size_sectors"], "type": p["type"], "uuid": p.get("uuid"),
                "name": p.get("name"), "role": p.get("role", "primary"),
                "bootable": p.get("bootable", False), "filesystem": p.get("filesystem"),
                "source_partition": p["number"], "grow": False, "fixed": True, "lv": None,
            } for p in source["partitions"]],
            "volume_groups": [], "randomize_guids": False, "restore_original_table": True,
            "custom_script": "",
        })
    return plans
