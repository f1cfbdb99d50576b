"""Ordered assignment of script, sysprep and file-copy modules to a profile.

Lower priority runs first. Functions add rows and history to the session; the caller commits.
"""

from __future__ import annotations

from app.api.body import Field, Id, Text
from app.errors import Refused
from app.extensions import db
from app.models import ImageProfile
from app.models.images import record_history
from app.models.modules import RUN_WHEN
from app.modules.domain import KINDS, Kind

# Tab names of the profile pages -> module kinds.
TAB_KINDS = {"scripts": "scripts", "sysprep": "syspreps", "filecopy": "filecopies"}
# A partition number, or volume-group-name "-" logical-volume-name for LVM; spaces around
# it are dropped.
LVM_NAME = r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*"
PARTITION_PATTERN = rf"^\s*(\d{{1,3}}|{LVM_NAME}-{LVM_NAME})\s*$"

# The fields an assignment of each module kind takes: `_clean` checks them and the
# OpenAPI request schemas (app.profiles.openapi) are built from them.
PRIORITY = Field(int, minimum=0, maximum=9999, description="lower runs first")
RUN_WHEN_FIELD = Field(str, enum=RUN_WHEN)
DESTINATION_PARTITION = Text(128, pattern=PARTITION_PATTERN, description="number or vg-lv")
ASSIGNMENT_FIELDS: dict[str, dict[str, Field]] = {
    "scripts": {"priority": PRIORITY, "run_when": RUN_WHEN_FIELD},
    "syspreps": {"priority": PRIORITY},
    "filecopies": {"priority": PRIORITY, "destination_partition": DESTINATION_PARTITION},
}
# What a field that breaks its spec is refused with.
REFUSALS = {
    "priority": "must be a whole number from 0 to 9999",
    "run_when": f"must be one of {', '.join(RUN_WHEN)}",
    "destination_partition": "must be a partition number such as 2, or vg-lv for a logical "
                             "volume such as vg0-root",
}
MODULE_ID = Id()  # the module an assignment adds (the API checks it before the other fields)


class AssignmentError(Refused, ValueError):
    """An assignment that cannot be saved; `errors` maps each field to its message."""

    status = 422
    summary = "validation failed; nothing was saved"

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _collection(profile: ImageProfile, kind: Kind) -> list:
    """Return the profile's relationship list holding assignments of a kind."""
    return {"scripts": profile.scripts, "syspreps": profile.syspreps,
            "filecopies": profile.file_copies}[kind.slug]


def rows(profile: ImageProfile, kind: Kind) -> list:
    """Return the profile's assignments of a kind, lowest priority first."""
    return sorted(_collection(profile, kind), key=lambda row: (row.priority, row.id or 0))


def assignment_to_dict(kind: Kind, row) -> dict:
    """Return an assignment as plain data."""
    data = {"id": row.id, "module_id": row.module_id, "module_name": row.module.name,
            "priority": row.priority}
    if kind.slug == "scripts":
        data["run_when"] = row.run_when
    if kind.slug == "filecopies":
        data["destination_partition"] = row.destination_partition
    return data


def _clean(kind: Kind, data: dict) -> dict:
    """Validate assignment fields against the kind's ASSIGNMENT_FIELDS; every fault at once."""
    spec = ASSIGNMENT_FIELDS[kind.slug]
    errors: dict[str, str] = {}
    cleaned: dict = {}
    for field, value in data.items():
        if field not in spec:
            errors[field] = "is not an assignment field of this kind"
        elif spec[field].problem(value) is not None:
            errors[field] = REFUSALS[field]
        else:
            cleaned[field] = spec[field].clean(value)
    if errors:
        raise AssignmentError(errors)
    if "destination_partition" in cleaned:
        cleaned["destination_partition"] = cleaned["destination_partition"].strip()
    return cleaned


def assign(profile: ImageProfile, kind: Kind, module_id: object, data: dict):
    """Assign a module to the profile; default priority goes after the last one."""
    module = db.session.get(kind.model, module_id) if isinstance(module_id, int) else None
    if module is None:
        raise AssignmentError({"module_id": f"no {kind.label.lower()} module with this id"})
    if any(row.module_id == module.id for row in rows(profile, kind)):
        raise AssignmentError({"module_id": f"{module.name} is already assigned"})
    cleaned = _clean(kind, data)
    existing = rows(profile, kind)
    cleaned.setdefault("priority", (existing[-1].priority + 10) if existing else 10)
    row = kind.assignment(module_id=module.id, **cleaned)
    row.module = module
    _collection(profile, kind).append(row)
    db.session.flush()
    _history(profile, "assign", kind, assignment_to_dict(kind, row))
    return row


def find(profile: ImageProfile, kind: Kind, assignment_id: int):
    """Return one of the profile's assignments, or None."""
    return next((row for row in rows(profile, kind) if row.id == assignment_id), None)


def update(profile: ImageProfile, kind: Kind, row, data: dict) -> None:
    """Change an assignment's priority, run-when or destination partition."""
    for field, value in _clean(kind, data).items():
        setattr(row, field, value)
    _history(profile, "update", kind, assignment_to_dict(kind, row))


def remove(profile: ImageProfile, kind: Kind, row) -> None:
    """Remove an assignment from the profile."""
    _history(profile, "remove", kind, assignment_to_dict(kind, row))
    db.session.delete(row)
    _collection(profile, kind).remove(row)


def move(profile: ImageProfile, kind: Kind, row, step: int) -> None:
    """Move an assignment up (-1) or down (+1) and renumber priorities 10, 20, ..."""
    ordered = rows(profile, kind)
    index = ordered.index(row)
    target = max(0, min(len(ordered) - 1, index + step))
    ordered.insert(target, ordered.pop(index))
    for number, item in enumerate(ordered, start=1):
        item.priority = number * 10
    _history(profile, "reorder", kind, {"order": [item.module.name for item in ordered]})


def _history(profile: ImageProfile, what: str, kind: Kind, detail: dict) -> None:
    """Record an assignment change as a profile update on the image."""
    record_history("image", profile.image_id, "profile_update",
                   {"profile_id": profile.id, "name": profile.name,
                    "modules": {"kind": kind.slug, "action": what, **detail}})


__all__ = ["KINDS", "TAB_KINDS", "AssignmentError", "assign", "find", "move", "remove",
           "rows", "update"]
