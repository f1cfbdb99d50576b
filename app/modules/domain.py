"""Script, sysprep and file-copy modules: validation and workflows for pages and API.

Functions add rows and history to the session; the caller commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from app.errors import Refused
from app.extensions import db
from app.models.images import record_history
from app.models.modules import (
    FileCopyModule,
    ProfileFileCopy,
    ProfileScript,
    ProfileSysprep,
    ScriptModule,
    SysprepModule,
)
from app.modules import files

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
OPENING_TAG_RE = re.compile(r"^<([A-Za-z_][A-Za-z0-9_.:-]*)(\s+[^<>]*)?>$")
CLOSING_TAG_RE = re.compile(r"^</([A-Za-z_][A-Za-z0-9_.:-]*)\s*>$")


@dataclass(frozen=True)
class Kind:
    """One kind of module: its model, assignment model, fields and labels."""

    slug: str
    model: type
    assignment: type
    fields: tuple[str, ...]
    label: str


KINDS: dict[str, Kind] = {
    "scripts": Kind("scripts", ScriptModule, ProfileScript,
                    ("name", "description", "contents"), "Script"),
    "syspreps": Kind("syspreps", SysprepModule, ProfileSysprep,
                     ("name", "description", "opening_tag", "closing_tag", "contents"),
                     "Sysprep"),
    "filecopies": Kind("filecopies", FileCopyModule, ProfileFileCopy,
                       ("name", "description", "destination_folder", "unzip"), "File copy"),
}


class ModuleError(Refused, ValueError):
    """Module data that cannot be saved; `errors` maps each field to its message."""

    status = 422
    summary = "validation failed; nothing was saved"

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _check_field(kind: Kind, field: str, value: object) -> object:
    """Return a field's cleaned value or raise ValueError with a message."""
    if field == "unzip":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if not isinstance(value, str):
        raise ValueError("must be text")
    # Scripts run under bash on the client: CR line endings would break them.
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if field == "name":
        value = value.strip()
        if not NAME_RE.match(value):
            raise ValueError("use 1-64 letters, digits, spaces, '.', '_' or '-'")
    elif field == "opening_tag":
        value = value.strip()
        if not OPENING_TAG_RE.match(value):
            raise ValueError(f"{value!r} is not an XML opening tag such as <ComputerName>")
    elif field == "closing_tag":
        value = value.strip()
        if not CLOSING_TAG_RE.match(value):
            raise ValueError(f"{value!r} is not an XML closing tag such as </ComputerName>")
    elif field == "destination_folder":
        value = value.strip() or "/"
        if not value.startswith("/") or ".." in value.split("/") or "\x00" in value:
            raise ValueError("must be an absolute folder inside the partition, such as "
                             "/Windows/Setup")
    return value


def clean_module(kind: Kind, data: dict, module: object | None = None) -> dict:
    """Return validated module fields, or raise ModuleError listing every problem."""
    errors: dict[str, str] = {}
    cleaned: dict = {}
    for field, value in data.items():
        if field not in kind.fields:
            errors[field] = f"is not a {kind.label.lower()} module field"
            continue
        try:
            cleaned[field] = _check_field(kind, field, value)
        except ValueError as exc:
            errors[field] = str(exc)
    if module is None and "name" not in cleaned and "name" not in errors:
        errors["name"] = "a module needs a name"
    if "name" in cleaned:
        clash = db.session.scalar(db.select(kind.model).filter_by(name=cleaned["name"]))
        if clash is not None and clash is not module:
            errors["name"] = f"a {kind.label.lower()} module named {cleaned['name']!r} exists"
    if kind.slug == "syspreps" and not errors:
        opening = cleaned.get("opening_tag", getattr(module, "opening_tag", ""))
        closing = cleaned.get("closing_tag", getattr(module, "closing_tag", ""))
        if module is None and not ({"opening_tag", "closing_tag"} <= cleaned.keys()):
            errors["opening_tag"] = "a sysprep module needs an opening and a closing tag"
        elif OPENING_TAG_RE.match(opening) and CLOSING_TAG_RE.match(closing):
            if OPENING_TAG_RE.match(opening)[1] != CLOSING_TAG_RE.match(closing)[1]:
                errors["closing_tag"] = f"{closing} does not close {opening}"
    if errors:
        raise ModuleError(errors)
    return cleaned


def module_to_dict(kind: Kind, module: object, storage_path: str | Path) -> dict:
    """Return a module as plain data for the API and history."""
    data = {"id": module.id, "kind": kind.slug}
    data.update({field: getattr(module, field) for field in kind.fields})
    if kind.slug == "filecopies":
        data["files"] = files.list_files(storage_path, module.id)
    return data


def profiles_using(kind: Kind, module_id: int) -> list[tuple[int, str, int, str]]:
    """Return (image id, image name, profile id, profile name) of profiles using a module."""
    from app.models import Image, ImageProfile

    rows = db.session.execute(
        db.select(Image.id, Image.name, ImageProfile.id, ImageProfile.name)
        .join(ImageProfile, ImageProfile.image_id == Image.id)
        .join(kind.assignment, kind.assignment.profile_id == ImageProfile.id)
        .where(kind.assignment.module_id == module_id)
        .order_by(Image.name, ImageProfile.name)
    ).all()
    return [tuple(row) for row in rows]


def create_module(kind: Kind, data: dict) -> object:
    """Add a new module from validated data and record it in the history."""
    module = kind.model(**clean_module(kind, data))
    db.session.add(module)
    db.session.flush()
    record_history("module", module.id, "create", {"kind": kind.slug, "name": module.name})
    return module


def update_module(kind: Kind, module: object, data: dict) -> dict:
    """Apply validated changes to a module; return {field: [old, new]} of what changed."""
    changed = {}
    for field, value in clean_module(kind, data, module).items():
        if getattr(module, field) != value:
            changed[field] = [getattr(module, field), value]
            setattr(module, field, value)
    if changed:
        record_history("module", module.id, "update",
                       {"kind": kind.slug, "name": module.name, "changes": changed})
    return changed


def delete_module(kind: Kind, module: object, storage_path: str | Path) -> None:
    """Delete a module, its profile assignments and (file copy) its stored files."""
    for row in db.session.scalars(db.select(kind.assignment).filter_by(module_id=module.id)):
        db.session.delete(row)
    record_history("module", module.id, "delete", {"kind": kind.slug, "name": module.name})
    db.session.delete(module)
    if kind.slug == "filecopies":
        files.remove_all(storage_path, module.id)
