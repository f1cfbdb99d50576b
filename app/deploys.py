"""Deploy plans of an image profile: the one path from stored image to the planner.

The plan preview (`/api/v1/images/<id>/profiles/<id>/plan`), the unicast deploy
(`/api/v1/client/deploys`) and the multicast join all call `plan_image_deploy`, so they plan
from the same schema with the same options (`app.imaging.inputs.planner_input`).
"""

from __future__ import annotations

import json
from pathlib import Path

from app.imaging.errors import PlanError
from app.imaging.inputs import PlannerInput, planner_input
from app.models import Image, ImageProfile
from app.storage import MANIFEST, SCHEMA, StorageError, image_dir


def captured_schema(image: Image, storage_path: str | Path) -> dict | None:
    """Return the schema the stored files were captured with, else the uploaded one.

    A complete image folder (it has a manifest) keeps the schema of its own capture: that is
    what a deploy restores, even if a later schema-only upload changed the database copy.
    """
    try:
        folder = image_dir(storage_path, image.name)
    except StorageError:
        folder = None
    if folder is not None and (folder / MANIFEST).is_file() and (folder / SCHEMA).is_file():
        return json.loads((folder / SCHEMA).read_text())
    return image.schema


def image_planner_input(image: Image, profile: ImageProfile | None, storage_path: str | Path,
                        efi: bool | None = None) -> PlannerInput:
    """Return the planner input of an image profile (PlanError when there is no schema)."""
    schema = captured_schema(image, storage_path)
    if schema is None:
        raise PlanError(f"image {image.name} has no schema yet: upload it first")
    return planner_input(schema, profile.to_dict() if profile is not None else None,
                         image.image_type, efi)


def plan_image_deploy(image: Image, profile: ImageProfile | None, disks: list[dict],
                      storage_path: str | Path, efi: bool | None = None) -> list[dict]:
    """Plan an image profile onto destination disks (raises PlanError or SchemaError)."""
    return image_planner_input(image, profile, storage_path, efi).plan(disks)
