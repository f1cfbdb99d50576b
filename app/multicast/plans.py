"""Deploy plans for joining clients, from the planner, exactly as a unicast deploy gets them."""

from __future__ import annotations

from flask import current_app

from app.deploys import captured_schema, plan_image_deploy
from app.imaging.schema import SchemaError
from app.models import Image, ImageProfile


class PlanError(Exception):
    """The image cannot go to the client's disks; the message says why."""


def profile_options(profile: ImageProfile | None) -> dict:
    """Return the profile's options and modules in the shape the client consumes."""
    if profile is None:
        return {}
    from app.api.client import profile_payload

    return profile_payload(profile)


def stored_schema(image: Image) -> dict:
    """Return the schema the image's files were captured with (what the client restores)."""
    schema = captured_schema(image, current_app.config["STORAGE_PATH"])
    if schema is None:
        raise PlanError(f"image {image.name} has no schema")
    return schema


def plan_for(image: Image, profile: ImageProfile | None, disks: list[dict],
             efi: bool | None = None) -> list[dict]:
    """Return one plan per destination disk, refusing disks the image cannot fit."""
    try:
        return plan_image_deploy(image, profile, disks, current_app.config["STORAGE_PATH"], efi)
    except (SchemaError, ValueError) as exc:  # PlanError of the planner is a ValueError
        raise PlanError(str(exc)) from exc
