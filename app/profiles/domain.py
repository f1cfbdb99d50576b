"""Profile workflows shared by pages and API: create, update, clone, delete, minimum sizes.

Functions add rows and history to the session; the caller commits.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from app.extensions import db
from app.models import ImageProfile, ProfileFileCopy, ProfileScript, ProfileSysprep
from app.models.images import Image, record_history
from app.models.profiles import OPTION_FIELDS, default_profile_for
from app.profiles import selections
from app.profiles.options import ProfileError, apply_changes, clean_changes
from app.roles import require_role

logger = logging.getLogger(__name__)


def history_snapshot(profile: ImageProfile) -> dict:
    """Return the profile as it goes into the image's history."""
    return {"profile_id": profile.id, "name": profile.name}


def create_profile(image: Image, name: str, description: str = "") -> ImageProfile:
    """Add a new profile with default options to an image, or raise ProfileError."""
    profile = default_profile_for(image.image_type, image.environment)
    profile.image_id = image.id
    clean_changes(profile, image, {"name": name}, "")
    profile.name = name.strip()
    profile.description = description.replace("\r\n", "\n")
    image.profiles.append(profile)
    db.session.flush()
    record_history("image", image.id, "profile_create", history_snapshot(profile))
    return profile


def update_profile(profile: ImageProfile, image: Image, changes: dict,
                   boot_folder: str | Path) -> dict:
    """Validate and apply option changes with history; return what changed."""
    cleaned = clean_changes(profile, image, changes, boot_folder)
    script = cleaned.get("custom_partition_script", profile.custom_partition_script)
    if script != profile.custom_partition_script:
        require_role("admin", "change a custom partition script (it runs as root)")
    changed = apply_changes(profile, cleaned)
    if {"deploy_schema", "modify_image_schema"} & changed.keys():
        refresh_minimums(profile, image)
    if changed:
        data = history_snapshot(profile)
        # Schemas are big; history names them without copying them.
        data["changes"] = {k: (v if "schema" not in k else "modified")
                           for k, v in changed.items()}
        record_history("image", image.id, "profile_update", data)
    return changed


def refresh_minimums(profile: ImageProfile, image: Image) -> None:
    """Store the profile's minimum client sizes in the shape the schema job writes."""
    schema = selections.image_schema(image)
    if schema is None:
        return
    selection = deploy_selection(profile, image) if profile.modify_image_schema else None
    sizes = minimum_sizes(schema, selection)
    if sizes is None:
        return
    profile.minimum_sizes_json = json.dumps({"disks": [
        {"index": disk["index"], "minimum_bytes": size}
        for disk, size in zip(schema["disks"], sizes, strict=True)]})


def free_clone_name(image: Image, base: str) -> str:
    """Return `base_N` with the first N not already used by a profile of the image."""
    used = {p.name for p in image.profiles}
    number = 1
    while True:
        suffix = f"_{number}"
        candidate = base[: 64 - len(suffix)] + suffix
        if candidate not in used:
            return candidate
        number += 1


def clone_profile(profile: ImageProfile) -> ImageProfile:
    """Copy a profile with every option and module assignment; model match is cleared."""
    image = profile.image
    copy = ImageProfile(image_id=image.id, name=free_clone_name(image, profile.name))
    for field in OPTION_FIELDS:
        setattr(copy, field, getattr(profile, field))
    copy.minimum_sizes_json = profile.minimum_sizes_json
    # A model string may auto-deploy only one profile.
    copy.model_match = ""
    copy.model_match_criteria = "disabled"
    copy.scripts = [ProfileScript(module_id=a.module_id, priority=a.priority,
                                  run_when=a.run_when) for a in profile.scripts]
    copy.syspreps = [ProfileSysprep(module_id=a.module_id, priority=a.priority)
                     for a in profile.syspreps]
    copy.file_copies = [ProfileFileCopy(module_id=a.module_id, priority=a.priority,
                                        destination_partition=a.destination_partition)
                        for a in profile.file_copies]
    image.profiles.append(copy)
    db.session.flush()
    data = history_snapshot(copy)
    data["cloned_from"] = profile.id
    record_history("image", image.id, "profile_clone", data)
    return copy


def check_deletable(profile: ImageProfile) -> None:
    """Refuse (ProfileError) to delete the last profile of an image."""
    if len(profile.image.profiles) <= 1:
        raise ProfileError({"profile": "an image keeps at least one profile; this is the "
                                       "last one"}, status=409)


def delete_profile(profile: ImageProfile) -> None:
    """Delete a profile, refusing the last one of its image."""
    check_deletable(profile)
    image = profile.image
    record_history("image", image.id, "profile_delete", history_snapshot(profile))
    # delete-orphan on Image.profiles deletes the row once it leaves the collection.
    image.profiles.remove(profile)


def deploy_selection(profile: ImageProfile, image: Image) -> dict | None:
    """Return the profile's deploy schema merged onto the image schema (None: no schema)."""
    schema = selections.image_schema(image)
    if schema is None:
        return None
    return selections.merge(schema, selections.load(profile.deploy_schema), "deploy")


def upload_selection(profile: ImageProfile, image: Image) -> dict | None:
    """Return the custom upload schema merged onto the image schema (None: no schema)."""
    schema = selections.image_schema(image)
    if schema is None:
        return None
    return selections.merge(schema, selections.load(profile.custom_upload_schema), "upload")


def minimum_sizes(schema: dict | None, selection: dict | None,
                  stored: str | None = None) -> list[int | None] | None:
    """Return the minimum client size per disk (None: N/A), or None when unknown."""
    if schema is None:
        return None
    try:
        from app.imaging.minsize import disk_minimums
    except ImportError:
        disk_minimums = None
    if disk_minimums is not None:
        try:
            return list(disk_minimums(schema, selection))
        except (KeyError, TypeError, ValueError):
            # A schema the planner cannot read must not take the profile pages down.
            logger.warning("minimum size of a schema failed", exc_info=True)
            return None
    if stored:
        # Written by the schema processing job when the planner runs there.
        return [d.get("minimum_bytes") for d in json.loads(stored).get("disks", [])]
    return None


def profile_minimums(profile: ImageProfile, image: Image) -> list[int | None] | None:
    """Return the minimum client sizes for the profile's effective deploy selection."""
    selection = deploy_selection(profile, image) if profile.modify_image_schema else None
    return minimum_sizes(selections.image_schema(image), selection,
                         profile.minimum_sizes_json)
