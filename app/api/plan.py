"""REST API: partition plans of an image profile for given destination disks."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from app.api import api_error, token_required
from app.api.body import DISKS, Field, body_schema, check_fields, json_object
from app.deploys import image_planner_input
from app.extensions import db
from app.imaging.errors import PlanError
from app.imaging.schema import SchemaError
from app.models import Image, ImageProfile

bp = Blueprint("api_plan", __name__, url_prefix="/api/v1")


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
    body = check_fields(json_object(), PLAN_FIELDS, required=("disks",))
    efi = body.get("efi")
    try:
        planner = image_planner_input(image, profile, current_app.config["STORAGE_PATH"], efi)
    except PlanError as exc:
        return api_error(409, str(exc))
    except ValueError as exc:
        return api_error(409, f"the schema of image {image.name} is not valid JSON: {exc}")
    try:
        plans = planner.plan(body["disks"])
    except SchemaError as exc:
        return api_error(409, f"the schema of image {image.name} is invalid: {exc}")
    except PlanError as exc:
        return api_error(422, str(exc))
    return jsonify({"plans": plans})


_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

OPENAPI_SCHEMAS = {
    "PlanRequest": body_schema(PLAN_FIELDS, ("disks",)),
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
