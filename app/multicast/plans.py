"""Deploy plans for joining clients, from the planner, exactly as a unicast deploy gets them."""

from __future__ import annotations

import json

from flask import current_app

from app.models import Image, ImageProfile
from app.storage import image_dir


class PlanError(Exception):
    """The image cannot go to the client's disks; the message says why."""


def profile_options(profile: ImageProfile | None) -> dict:
    """Return the profile's options and modules in the shape the client consumes."""
    if profile is None:
        return {}
    from app.api.client import profile_payload

    return profile_payload(profile)


def stored_schema(image: Image) -> dict:
    """Return the schema kept in the image folder (the one the files were captured with)."""
    path = image_dir(current_app.config["STORAGE_PATH"], image.name) / "schema.json"
    if path.is_file():
        return json.loads(path.read_text())
    if image.schema is None:
        raise PlanError(f"image {image.name} has no schema")
    return image.schema


def plan_for(image: Image, profile: ImageProfile | None, disks: list[dict]) -> list[dict]:
    """Return one plan per destination disk, refusing disks the image cannot fit."""
    from app.imaging.planner import PlanError as PlannerError
    from app.imaging.planner import plan_deploy

    selection = None
    if profile is not None and profile.modify_image_schema and profile.deploy_schema:
        selection = json.loads(profile.deploy_schema)
    try:
        return plan_deploy(stored_schema(image), selection, disks, profile_options(profile))
    except (PlannerError, ValueError) as exc:
        raise PlanError(str(exc)) from exc
