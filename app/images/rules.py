"""Field rules for images and categories: pure checks shared by the forms and the API."""

from __future__ import annotations

import re

from app.models.images import ENVIRONMENTS, REPLICATION_MODES

NAME_MAX = 64
DESCRIPTION_MAX = 10_000
CATEGORY_NAME_MAX = 64
# ASCII only on purpose: \w would let unicode look-alikes (Cyrillic "а") through, and the
# name is also the folder name on disk.
IMAGE_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
CATEGORY_NAME_RE = re.compile(r"[A-Za-z0-9 _.-]+")

TYPES_BY_ENVIRONMENT = {"linux": ("block", "file"), "winpe": ("block", "file", "both")}
ENVIRONMENT_LABELS = {"winpe": "WinPE (recommended)", "linux": "Linux"}
TYPE_LABELS = {"block": "Block", "file": "File", "both": "Both (WinPE only)"}
# The seed's recommendation, preselected when the environment changes.
DEFAULT_TYPES = {"linux": "block", "winpe": "file"}


def image_name_problem(name: str | None) -> str | None:
    """Return why an image name is not acceptable, or None when it is."""
    if not name:
        return "The name is required."
    if len(name) > NAME_MAX:
        return f"The name is at most {NAME_MAX} characters."
    if not IMAGE_NAME_RE.fullmatch(name):
        return "Use only letters A-Z, digits, dash and underscore (no spaces, slashes or dots)."
    return None


def description_problem(description: str | None) -> str | None:
    """Return why a description is not acceptable, or None when it is."""
    if description is not None and len(description) > DESCRIPTION_MAX:
        return (f"The description is at most {DESCRIPTION_MAX:,} characters "
                f"({len(description):,} given).")
    return None


def environment_problem(environment: str | None) -> str | None:
    """Return why an imaging environment is not acceptable, or None when it is."""
    if environment not in ENVIRONMENTS:
        return "The environment is linux or winpe."
    return None


def type_problem(environment: str | None, image_type: str | None) -> str | None:
    """Return why an image type does not fit the environment, or None when it does."""
    allowed = TYPES_BY_ENVIRONMENT.get(environment or "", ())
    if image_type in allowed:
        return None
    if image_type == "both":
        return "Both is only available for the WinPE environment."
    return f"The type is one of: {', '.join(allowed) or 'block, file, both'}."


def replication_mode_problem(mode: str | None) -> str | None:
    """Return why a replication mode is not acceptable, or None when it is."""
    if mode not in REPLICATION_MODES:
        return f"The replication mode is one of: {', '.join(REPLICATION_MODES)}."
    return None


def category_name_problem(name: str | None) -> str | None:
    """Return why a category name is not acceptable, or None when it is."""
    if not name or not name.strip():
        return "The name is required."
    if len(name) > CATEGORY_NAME_MAX:
        return f"The name is at most {CATEGORY_NAME_MAX} characters."
    if name != name.strip() or not CATEGORY_NAME_RE.fullmatch(name):
        return "Use letters A-Z, digits, spaces, dot, dash and underscore."
    return None
