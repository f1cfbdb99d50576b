"""Validation of profile option changes, shared by the profile pages and the REST API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Boolean, Integer

from app.errors import Refused
from app.extensions import db
from app.models.images import Image
from app.models.profiles import (
    COMPRESSION_ALGORITHMS,
    COMPRESSION_LEVELS,
    MODEL_MATCH_CRITERIA,
    OPTION_FIELDS,
    PARTITION_METHODS,
    TASK_COMPLETED_ACTIONS,
    ImageProfile,
)
from app.profiles import selections
from app.profiles.multicast_args import validate_udpcast_args

EDITABLE_FIELDS = ("name", *OPTION_FIELDS)

# Which fields each tab edits (the Scripts/Sysprep/File copy tabs edit assignments).
TAB_FIELDS: dict[str, tuple[str, ...]] = {
    "general": ("name", "description", "model_match", "model_match_criteria"),
    "pxe": ("pxe_kernel", "pxe_boot_image", "kernel_args"),
    "task": ("web_cancel", "task_completed_action"),
    "upload": ("remove_gpt_structures", "dont_shrink_volumes", "dont_shrink_lvm",
               "skip_hibernation_check", "skip_bitlocker_check", "compression_algorithm",
               "compression_level", "upload_schema_only", "use_custom_upload_schema"),
    "deploy": ("change_computer_name", "set_bootmgr_first", "dont_expand_volumes",
               "update_bcd", "randomize_guids", "fix_boot_sector", "dont_update_nvram",
               "partition_method", "custom_partition_script", "force_dynamic_exact_match",
               "modify_image_schema"),
    "multicast": ("multicast_sender_args", "multicast_receiver_args"),
}
TABS = ("general", "pxe", "task", "upload", "deploy", "multicast", "scripts", "sysprep",
        "filecopy")

# Options the seed marks (LIE) or (WIE): only meaningful in that imaging environment.
LINUX_ONLY = frozenset({
    "pxe_kernel", "pxe_boot_image", "kernel_args", "remove_gpt_structures",
    "dont_shrink_volumes", "dont_shrink_lvm", "skip_hibernation_check", "skip_bitlocker_check",
    "compression_algorithm", "compression_level", "dont_expand_volumes", "update_bcd",
    "randomize_guids", "fix_boot_sector", "dont_update_nvram", "force_dynamic_exact_match",
})
WINPE_ONLY = frozenset({"set_bootmgr_first"})

CHOICES = {
    "model_match_criteria": MODEL_MATCH_CRITERIA,
    "task_completed_action": TASK_COMPLETED_ACTIONS,
    "compression_algorithm": COMPRESSION_ALGORITHMS,
    "partition_method": PARTITION_METHODS,
}

KERNEL_PATTERNS = ("vmlinuz*", "*kernel*")
BOOT_IMAGE_PATTERNS = ("initrd*", "*.img", "*.cpio*")


class ProfileError(Refused, ValueError):
    """Option changes that cannot be saved; `errors` maps each field to its message."""

    status = 422
    summary = "validation failed; nothing was saved"

    def __init__(self, errors: dict[str, str], status: int = 422):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors, self.status = errors, status


def field_visible(field: str, environment: str) -> bool:
    """Tell whether a field applies to an image of this imaging environment."""
    if field in LINUX_ONLY:
        return environment == "linux"
    if field in WINPE_ONLY:
        return environment == "winpe"
    return True


def tab_visible(tab: str, environment: str) -> bool:
    """Tell whether a tab applies (PXE boot options are for the Linux environment only)."""
    return tab != "pxe" or environment == "linux"


def boot_files(folder: str | Path) -> tuple[list[str], list[str]]:
    """Return the (kernels, boot images) found in the boot-files folder, sorted."""
    root = Path(folder)
    if not root.is_dir():
        return [], []
    names = sorted(p.name for p in root.iterdir() if p.is_file())

    def matching(patterns: tuple[str, ...]) -> list[str]:
        return [n for n in names if any(Path(n).match(p) for p in patterns)]

    return matching(KERNEL_PATTERNS), matching(BOOT_IMAGE_PATTERNS)


def _coerce(field: str, value: object) -> object:
    """Check a value's type against its column; raise ValueError with a message."""
    column_type = ImageProfile.__table__.c[field].type
    if isinstance(column_type, Boolean):
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if isinstance(column_type, Integer):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number")
        return value
    if field in ("custom_upload_schema", "deploy_schema"):
        if value is not None and not isinstance(value, str | dict):
            raise ValueError("must be a schema object or null")
        return value
    if not isinstance(value, str):
        raise ValueError("must be text")
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    length = getattr(column_type, "length", None)
    if length and len(value) > length:
        raise ValueError(f"must be at most {length} characters")
    return value


def _check_model_match(profile: ImageProfile, match: str, criteria: str) -> str | None:
    """Return an error when an active model match is empty or used by another profile."""
    if criteria == "disabled":
        return None
    if not match.strip():
        return "enter a model string, or set the criteria to Disabled"
    others = db.session.scalars(db.select(ImageProfile).where(
        ImageProfile.model_match_criteria != "disabled", ImageProfile.id != profile.id))
    for other in others:
        if model_rules_overlap(criteria, match.strip(), other.model_match_criteria,
                               other.model_match.strip()):
            image = db.session.get(Image, other.image_id)
            owner = image.name if image else other.image_id
            if other.model_match.strip().lower() == match.strip().lower():
                return (f"model match {match!r} is already used by profile {other.name!r} of "
                        f"image {owner!r}; a model can match one profile")
            label = CRITERIA_WORDS[other.model_match_criteria]
            return (f"a computer model could match both this rule and profile {other.name!r} "
                    f"of image {owner!r} ({label} "
                    f"{other.model_match!r}); a model can match one profile only")
    return None


CRITERIA_WORDS = {"equals": "equals", "starts_with": "starts with", "ends_with": "ends with",
                  "contains": "contains", "disabled": "disabled"}


def model_rules_overlap(a_kind: str, a: str, b_kind: str, b: str) -> bool:
    """Tell whether some model string matches both rules (case-insensitive, pure)."""
    a, b = a.lower(), b.lower()
    if a_kind == "disabled" or b_kind == "disabled" or not a or not b:
        return False
    if b_kind == "equals" and a_kind != "equals":
        a_kind, a, b_kind, b = b_kind, b, a_kind, a
    if a_kind == "equals":
        return {"equals": a == b, "starts_with": a.startswith(b), "ends_with": a.endswith(b),
                "contains": b in a}[b_kind]
    if a_kind == b_kind == "starts_with":
        return a.startswith(b) or b.startswith(a)
    if a_kind == b_kind == "ends_with":
        return a.endswith(b) or b.endswith(a)
    return True  # contains/anything, starts/ends: a string carrying both always exists


# Characters that end or break a kernel command line in the generated GRUB, pxelinux and
# iPXE files (statement separators, comments, braces, quotes, variable expansion).
KERNEL_ARG_FORBIDDEN = set(";#{}\"'`$&|<>\n")


def kernel_args_problem(value: str) -> str | None:
    """Say why kernel arguments can't go into a boot loader entry, or None when they can."""
    bad = sorted({ch for ch in value if ch in KERNEL_ARG_FORBIDDEN or ord(ch) < 32})
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        return (f"kernel arguments are plain words such as quiet or console=ttyS0; {shown} "
                "would change the boot loader's script")
    return None


def clean_changes(profile: ImageProfile, image: Image, changes: dict,
                  boot_folder: str | Path) -> dict:
    """Return the validated changes to apply to a profile, or raise ProfileError."""
    errors: dict[str, str] = {}
    cleaned: dict = {}
    for field, value in changes.items():
        if field not in EDITABLE_FIELDS:
            errors[field] = "is not a profile option"
            continue
        try:
            value = _coerce(field, value)
        except ValueError as exc:
            errors[field] = str(exc)
            continue
        if field in CHOICES and value not in CHOICES[field]:
            errors[field] = f"must be one of {', '.join(CHOICES[field])}"
            continue
        if not field_visible(field, image.environment) and value != getattr(profile, field):
            errors[field] = f"does not apply to the {image.environment} imaging environment"
            continue
        cleaned[field] = value
    if errors:
        raise ProfileError(errors)

    def final(field: str) -> object:
        return cleaned.get(field, getattr(profile, field))

    if "compression_algorithm" in cleaned and "compression_level" not in cleaned:
        cleaned["compression_level"] = COMPRESSION_LEVELS[cleaned["compression_algorithm"]][2]
    _check_rules(profile, image, cleaned, final, errors, boot_folder)
    if errors:
        raise ProfileError(errors)
    return cleaned


def _check_rules(profile: ImageProfile, image: Image, cleaned: dict, final: Callable,
                 errors: dict[str, str], boot_folder: str | Path) -> None:
    """Apply the rules that tie fields together; add messages to `errors`."""
    if "name" in cleaned:
        name = cleaned["name"].strip()
        cleaned["name"] = name
        taken = db.session.scalar(db.select(ImageProfile.id).where(
            ImageProfile.image_id == image.id, ImageProfile.name == name,
            ImageProfile.id != profile.id))
        if not name:
            errors["name"] = "a profile needs a name"
        elif taken is not None:
            errors["name"] = f"this image already has a profile named {name!r}"
    algorithm, level = final("compression_algorithm"), final("compression_level")
    low, high, _default = COMPRESSION_LEVELS[algorithm]
    if not low <= level <= high:
        errors["compression_level"] = (f"{algorithm} takes level 0" if algorithm == "none"
                                       else f"{algorithm} takes a level from {low} to {high}")
    if final("upload_schema_only") and final("use_custom_upload_schema"):
        errors["use_custom_upload_schema"] = ("Upload schema only and Use custom upload "
                                              "schema cannot both be on")
    if {"model_match", "model_match_criteria"} & cleaned.keys():
        cleaned["model_match"] = final("model_match").strip()
        problem = _check_model_match(profile, final("model_match"),
                                     final("model_match_criteria"))
        if problem:
            errors["model_match"] = problem
    if "kernel_args" in cleaned:
        cleaned["kernel_args"] = " ".join(cleaned["kernel_args"].split())
        problem = kernel_args_problem(cleaned["kernel_args"])
        if problem:
            errors["kernel_args"] = problem
    if final("partition_method") == "custom_script" and not final("custom_partition_script"):
        errors["custom_partition_script"] = "the Custom Script method needs a script"
    kernels, boot_images = boot_files(boot_folder)
    for field, allowed in (("pxe_kernel", kernels), ("pxe_boot_image", boot_images)):
        if cleaned.get(field) and cleaned[field] not in allowed:
            errors[field] = f"{cleaned[field]!r} is not in the boot files folder"
    for field, role in (("multicast_sender_args", "sender"),
                        ("multicast_receiver_args", "receiver")):
        if field in cleaned:
            try:
                validate_udpcast_args(cleaned[field], role)
            except ValueError as exc:
                errors[field] = str(exc)
            cleaned[field] = cleaned[field].strip()
    if "custom_upload_schema" in cleaned:
        try:
            cleaned["custom_upload_schema"] = selections.clean(
                selections.image_schema(image), cleaned["custom_upload_schema"], "upload")
        except selections.SelectionError as exc:
            errors["custom_upload_schema"] = str(exc)
    _check_deploy_schema(image, cleaned, final, errors)


def _check_deploy_schema(image: Image, cleaned: dict, final: Callable,
                         errors: dict[str, str]) -> None:
    """Validate the modified deploy schema whenever it, the method or its switch change."""
    touched = {"deploy_schema", "partition_method", "modify_image_schema"} & cleaned.keys()
    if not touched:
        return
    method = final("partition_method")
    schema = selections.image_schema(image)
    try:
        if "deploy_schema" in cleaned:
            cleaned["deploy_schema"] = selections.clean(schema, cleaned["deploy_schema"],
                                                        "deploy", method)
        if final("modify_image_schema") and schema is not None:
            # No stored copy yet means every disk and partition with default keys.
            merged = selections.merge(schema, selections.load(final("deploy_schema")), "deploy")
            problems = selections.validate(merged, "deploy", method)
            if problems:
                raise selections.SelectionError(problems)
    except selections.SelectionError as exc:
        errors["deploy_schema"] = str(exc)


def apply_changes(profile: ImageProfile, cleaned: dict) -> dict:
    """Set cleaned values on the profile; return {field: [old, new]} of what changed."""
    changed = {}
    for field, value in cleaned.items():
        old = getattr(profile, field)
        if old != value:
            changed[field] = [old, value]
            setattr(profile, field, value)
    return changed
