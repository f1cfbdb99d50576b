"""Image workflows shared by the web pages and the API: create, update, delete.

Each workflow checks everything first, then writes the database and the image folder
together, and undoes the folder change when the commit fails: nothing is half-written.
Once a delete or rename is committed it is queued on the peers holding a copy
(app.replication.propagation); that step never fails the local change.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError

from app import storage
from app.errors import Refused
from app.extensions import db
from app.images import rules
from app.models import Category, Image, ReplicationStatus, default_profile_for, record_history
from app.models.images import ENVIRONMENTS, IMAGE_TYPES
from app.replication import propagation
from app.replication.propagation import Propagation
from app.roles import require_role


class ImageError(Refused):
    """A request about an image was refused; says which field and which HTTP status fits."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


def _check(problem: str | None, field: str, status: int = 400) -> None:
    """Raise ImageError when a rule reported a problem."""
    if problem:
        raise ImageError(problem, field, status)


def name_taken(name: str, exclude_id: int | None = None) -> bool:
    """Tell whether another image already has this name, ignoring case."""
    stmt = db.select(Image.id).where(func.lower(Image.name) == name.lower())
    if exclude_id is not None:
        stmt = stmt.where(Image.id != exclude_id)
    return db.session.scalar(stmt.limit(1)) is not None


def categories_by_names(names: list[str]) -> list[Category]:
    """Return the categories with these names, refusing unknown ones (422)."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    found = db.session.scalars(db.select(Category).where(Category.name.in_(wanted))).all()
    missing = sorted(set(wanted) - {c.name for c in found})
    if missing:
        raise ImageError(f"Unknown categories: {', '.join(missing)}.", "categories", 422)
    return sorted(found, key=lambda c: c.name)


def categories_by_ids(ids: list[int]) -> list[Category]:
    """Return the categories with these ids, refusing unknown ones (422)."""
    wanted = set(ids)
    if not wanted:
        return []
    found = db.session.scalars(db.select(Category).where(Category.id.in_(wanted))).all()
    if len(found) != len(wanted):
        raise ImageError("Unknown category selected.", "categories", 422)
    return sorted(found, key=lambda c: c.name)


def create_image(storage_path: str | Path, *, name: str, environment: str, image_type: str,
                 description: str = "", protected: bool = False, on_demand: bool = True,
                 enabled: bool = True, categories: list[Category] | None = None,
                 replication_mode: str = "global") -> Image:
    """Create an image with its default profile, storage folder and a history row."""
    _check(rules.image_name_problem(name), "name")
    _check(rules.description_problem(description), "description")
    _check(rules.environment_problem(environment), "environment")
    # A known type that does not fit the environment (Both on Linux) breaks a rule, not the
    # document: 422; anything else is malformed.
    _check(rules.type_problem(environment, image_type), "type",
           422 if image_type in IMAGE_TYPES and environment in ENVIRONMENTS else 400)
    _check(rules.replication_mode_problem(replication_mode), "replication_mode")
    if name_taken(name):
        raise ImageError(f"An image named {name} already exists.", "name", 409)
    folder = storage.image_dir(storage_path, name)
    if folder.exists():
        # A folder without a row is an image someone may still want: never adopt or overwrite it.
        raise ImageError(f"A folder named {name} already exists in the image store.", "name", 409)

    image = Image(name=name, description=description or "", environment=environment,
                  image_type=image_type, protected=protected, on_demand=on_demand,
                  enabled=enabled, replication_mode=replication_mode,
                  categories=list(categories or []))
    profile = default_profile_for(image_type, environment)
    profile.image = image
    db.session.add(image)
    try:
        db.session.flush()
        record_history("image", image.id, "create", image.to_dict())
        folder.mkdir(parents=True)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        _remove_empty(folder)
        raise ImageError(f"An image named {name} already exists.", "name", 409) from exc
    except BaseException:
        db.session.rollback()
        _remove_empty(folder)
        raise
    return image


def update_image(storage_path: str | Path, image: Image, changes: dict) -> Propagation:
    """Apply changes (name, description, flags, categories, ...) and record them in history.

    `environment` and `type` may be present only with their current values: they are fixed
    at creation because the captured files depend on them. Returns where a rename was sent
    on (nothing for other changes).
    """
    if "environment" in changes and changes["environment"] != image.environment:
        raise ImageError("The environment can't be changed after the image is created.",
                         "environment", 409)
    if "type" in changes and changes["type"] != image.image_type:
        raise ImageError("The image type can't be changed after the image is created.",
                         "type", 409)
    new_name = changes.get("name", image.name)
    _check(rules.image_name_problem(new_name), "name")
    if "description" in changes:
        _check(rules.description_problem(changes["description"]), "description")
    if "replication_mode" in changes:
        _check(rules.replication_mode_problem(changes["replication_mode"]), "replication_mode")
    renaming = new_name != image.name
    if renaming and name_taken(new_name, exclude_id=image.id):
        raise ImageError(f"An image named {new_name} already exists.", "name", 409)

    if image.protected and changes.get("protected") is False:
        require_role("admin", "unprotect an image")
    old_name = image.name
    for key in ("description", "enabled", "protected", "on_demand", "replication_mode"):
        if key in changes:
            setattr(image, key, changes[key])
    if "categories" in changes:
        image.categories = list(changes["categories"])
    image.name = new_name
    moved = False
    try:
        db.session.flush()
        record_history("image", image.id, "update", image.to_dict())
        if renaming:
            storage.rename_image(storage_path, old_name, new_name)
            moved = True
        db.session.commit()
    except storage.StorageError as exc:
        db.session.rollback()
        raise ImageError(str(exc), "name", 409) from exc
    except IntegrityError as exc:
        db.session.rollback()
        _undo_rename(storage_path, moved, old_name, new_name)
        raise ImageError(f"An image named {new_name} already exists.", "name", 409) from exc
    except BaseException:
        db.session.rollback()
        _undo_rename(storage_path, moved, old_name, new_name)
        raise
    if not renaming:
        return Propagation("rename")
    return propagation.send_rename(image, old_name)


def delete_image(storage_path: str | Path, image: Image) -> Propagation:
    """Delete an unprotected image, its profiles and its folder; protected ones are refused.

    Returns where the deletion was sent on.
    """
    if image.protected:
        raise ImageError(f"{image.name} is protected: unprotect it before deleting it.",
                         "protected", 409)
    # Who holds a copy is known from the status rows, which go with the image.
    name, origin, servers = image.name, image.origin, propagation.servers_to_tell(image)
    folder = storage.image_dir(storage_path, image.name)
    # Move the folder aside first so a failed commit can put it back untouched.
    aside = folder.with_name(f".{image.name}.deleting")
    if folder.exists():
        os.replace(folder, aside)
    try:
        record_history("image", image.id, "delete", image.to_dict())
        # SQLite enforces no ON DELETE CASCADE here: drop the status rows explicitly.
        db.session.execute(db.delete(ReplicationStatus).filter_by(image_id=image.id))
        db.session.delete(image)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        if aside.exists():
            os.replace(aside, folder)
        raise
    if aside.exists():
        shutil.rmtree(aside, ignore_errors=True)
    return propagation.send_delete(name, origin, servers)


def bulk_delete(storage_path: str | Path,
                image_ids: list[int]) -> tuple[list[str], list[str], Propagation]:
    """Delete the given images; return (names deleted, protected names skipped, where sent)."""
    images = db.session.scalars(
        db.select(Image).where(Image.id.in_(set(image_ids))).order_by(Image.name)
    ).all()
    deleted, skipped, sent = [], [], Propagation("delete")
    for image in images:
        if image.protected:
            skipped.append(image.name)
            continue
        name = image.name
        sent += delete_image(storage_path, image)
        deleted.append(name)
    return deleted, skipped, sent


def _remove_empty(folder: Path) -> None:
    """Remove a folder this workflow created, if it is still empty."""
    try:
        folder.rmdir()
    except OSError:
        pass


def _undo_rename(storage_path: str | Path, moved: bool, old_name: str, new_name: str) -> None:
    """Move a renamed folder back after a failed commit."""
    if moved:
        storage.rename_image(storage_path, new_name, old_name)


def image_for_on_demand_upload(storage_path: str | Path, name: str) -> Image:
    """Return the image an on-demand upload names, creating it with the defaults when new.

    The seed's usual way to make an image: upload from the imaging client under a new name;
    the image gets the defaults (Linux environment, Block type, the default profile).
    """
    existing = db.session.scalar(db.select(Image).where(func.lower(Image.name) == name.lower()))
    if existing is not None:
        return existing
    return create_image(storage_path, name=name, environment="linux", image_type="block",
                        description="Created by an on-demand upload.")
