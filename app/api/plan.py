"""REST API: partition plans of an image profile for given destination disks."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify

from app.api import api_error, token_required
from app.api.body import DISKS, Field, check_disks, check_fields, json_object
from app.extensions import db
from app.imaging.errors import PlanError
from app.imaging.planner import plan_deploy
from app.imaging.schema import SchemaError
from app.models import Image, ImageProfile

bp = Blueprint("api_plan", __name__, url_prefix="/api/v1")


def profile_selection(profile: ImageProfile) -> dict | None:
    """Return the profile's modified deploy schema when it is switched on, else None."""
    if profile.modify_image_schema and profile.deploy_schema:
        return json.loads(profile.deploy_schema)
    return None


def plan_options(profile: ImageProfile, image: Image, efi: bool | None = None) -> dict:
    """Return the planner options of a profile's deploy settings (docs/planning.md)."""
    return {
        "partition_method": profile.partition_method,
        "force_dynamic_exact_match": profile.force_dynamic_exact_match,
        "randomize_guids": profile.randomize_guids,
        "dont_expand_volumes": profile.dont_expand_volumes,
        "custom_partition_script": profile.custom_partition_script,
        "image_type": image.image_type,
        "efi": efi,
    }


PLAN_FIELDS = {"disks": DISKS, "efi": Field(bool, nullable=True)}


@bp.post("/images/<int:image_id>/profiles/<int:profile_id>/plan")
@token_required
def plan(image_id: int, profile_id: int):
    """Plan the image's disks onto the given destination disks with the profile's options."""
    image = db.session.get(Image, image_id)
    if image is None:
        return api_error(404, f"no image with id {image_id}")
    profile = db.session.get(ImageProfile, profile_id)
    if profile is None or profile.image_id != image.id:
        return api_error(404, f"image {image_id} has no profile with id {profile_id}")
    if not image.schema_json:
        return api_error(409, f"image {image.name} has no schema yet: upload it first")
    body = check_fields(json_object(), PLAN_FIELDS, required=("disks",))
    check_disks(body["disks"])
    efi = body.get("efi")
    try:
        schema = json.loads(image.schema_json)
    except ValueError as exc:
        return api_error(409, f"the schema of image {image.name} is not valid JSON: {exc}")
    try:
        plans = plan_deploy(schema, profile_selection(profile), body["disks"],
                            plan_options(profile, image, efi))
    except SchemaError as exc:
        return api_error(409, f"the schema of image {image.name} is invalid: {exc}")
    except PlanError as exc:
        return api_error(422, str(exc))
    return jsonify({"plans": plans})


_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

OPENAPI_SCHEMAS = {
    "PlanRequest": {
        "type": "object",
        "required": ["disks"],
        "properties": {
            "disks": {"type": "array", "items": {
                "type": "object", "required": ["size_bytes"],
                "properties": {
                    "size_bytes": {"type": "integer", "minimum": 1},
                    "logical_sector_size": {"enum": [512, 1024, 2048, 4096], "default": 512},
                    "physical_sector_size": {"type": "integer"},
                }}},
            "efi": {"type": ["boolean", "null"],
                    "description": "Standard method: EFI (GPT) or legacy (MBR) layout; "
                                   "null follows the image's table"},
        },
    },
    "DiskPlan": {
        "type": "object",
        "description": "One destination disk's plan (docs/planning.md).",
        "properties": {
            "disk_index": {"type": "integer"},
            "method": {"enum": ["original", "dynamic", "standard", "custom_script"]},
            "table": {"enum": ["gpt", "mbr"]},
            "logical_sector_size": {"type": "integer"},
            "size_bytes": {"type": "integer"},
            "minimum_bytes": {"type": ["integer", "null"]},
            "disk_id": {"type": ["string", "null"]},
            "sfdisk_script": {"type": "string"},
            "partitions": {"type": ["array", "null"], "items": {"type": "object"}},
            "volume_groups": {"type": ["array", "null"], "items": {"type": "object"}},
            "randomize_guids": {"type": "boolean"},
            "restore_original_table": {"type": "boolean"},
            "custom_script": {"type": ["string", "null"]},
        },
    },
}

OPENAPI_PATHS = {
    "/images/{image_id}/profiles/{profile_id}/plan": {
        "post": {
            "summary": "Plan the image's disks onto destination disks with a profile",
            "tags": ["plans"],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
                for name in ("image_id", "profile_id")
            ],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PlanRequest"}}}},
            "responses": {
                "200": {"description": "One plan per destination disk",
                        "content": {"application/json": {"schema": {
                            "type": "object", "properties": {"plans": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/DiskPlan"}}}}}}},
                "401": {"description": "No valid token", **_ERROR},
                "404": {"description": "Unknown image or profile", **_ERROR},
                "409": {"description": "The image has no (valid) schema", **_ERROR},
                "422": {"description": "Refused: the reason says why", **_ERROR},
            },
        }
    }
}
