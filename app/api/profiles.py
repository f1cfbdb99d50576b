"""REST API: image profiles and their module assignments (modules: app.modules.api).

The rules are those of the pages: validation lives in app.profiles.options,
app.profiles.assignments and app.modules.domain, which both call.
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify

from app.api import token_required
from app.api.body import Text, check_fields, json_object
from app.extensions import db
from app.models import Image, ImageProfile
from app.modules.api import NotFound, kind_or_error
from app.modules.domain import KINDS
from app.profiles import assignments, domain
from app.profiles.openapi import OPENAPI_PATHS, OPENAPI_SCHEMAS

bp = Blueprint("api_profiles", __name__, url_prefix="/api/v1")

PROFILE_BASE = "/images/<int:image_id>/profiles"
# The module kinds by name, so that /clone and /plan never match an assignment route.
KIND = f"<any({', '.join(KINDS)}):kind>"


def _image(image_id: int) -> Image:
    """Return the image or raise NotFound."""
    image = db.session.get(Image, image_id)
    if image is None:
        raise NotFound(f"no image with id {image_id}")
    return image


def _profile(image_id: int, profile_id: int) -> tuple[Image, ImageProfile]:
    """Return the image and its profile, or raise NotFound."""
    image = _image(image_id)
    profile = db.session.get(ImageProfile, profile_id)
    if profile is None or profile.image_id != image.id:
        raise NotFound(f"image {image_id} has no profile with id {profile_id}")
    return image, profile


def profile_json(profile: ImageProfile, image: Image) -> dict:
    """Return a profile as API data: options, schemas as objects, assignments, minimums."""
    data = profile.to_dict()
    for field in ("custom_upload_schema", "deploy_schema"):
        data[field] = json.loads(data[field]) if data[field] else None
    for slug, kind in KINDS.items():
        data[slug] = [assignments.assignment_to_dict(kind, row)
                      for row in assignments.rows(profile, kind)]
    data["minimum_sizes_bytes"] = domain.profile_minimums(profile, image)
    return data


@bp.get(PROFILE_BASE)
@token_required
def list_profiles(image_id: int):
    """List an image's profiles."""
    image = _image(image_id)
    return jsonify([profile_json(p, image) for p in image.profiles])


@bp.post(PROFILE_BASE)
@token_required
def create_profile(image_id: int):
    """Create a profile from a name and optional options."""
    image = _image(image_id)
    body = json_object()
    name = check_fields({"name": body.get("name")}, {"name": Text(64)})["name"]
    description = check_fields({"description": body.get("description", "")},
                               {"description": Text()})["description"]
    options = {k: v for k, v in body.items() if k not in ("name", "description")}
    profile = domain.create_profile(image, name, description)
    if options:
        domain.update_profile(profile, image, options, current_app.config["BOOT_FILES_PATH"])
    db.session.commit()
    return jsonify(profile_json(profile, image)), 201


@bp.get(PROFILE_BASE + "/<int:profile_id>")
@token_required
def get_profile(image_id: int, profile_id: int):
    """Return one profile."""
    image, profile = _profile(image_id, profile_id)
    return jsonify(profile_json(profile, image))


@bp.patch(PROFILE_BASE + "/<int:profile_id>")
@token_required
def patch_profile(image_id: int, profile_id: int):
    """Change some options of a profile (all or nothing)."""
    image, profile = _profile(image_id, profile_id)
    body = json_object()
    # Read-only keys of the GET shape may come back unchanged.
    for key in ("id", "image_id", "minimum_sizes_bytes", *KINDS):
        body.pop(key, None)
    domain.update_profile(profile, image, body, current_app.config["BOOT_FILES_PATH"])
    db.session.commit()
    return jsonify(profile_json(profile, image))


@bp.delete(PROFILE_BASE + "/<int:profile_id>")
@token_required
def delete_profile(image_id: int, profile_id: int):
    """Delete a profile; the last profile of an image is refused with 409."""
    _image_row, profile = _profile(image_id, profile_id)
    domain.delete_profile(profile)
    db.session.commit()
    return "", 204


@bp.post(PROFILE_BASE + "/<int:profile_id>/clone")
@token_required
def clone_profile(image_id: int, profile_id: int):
    """Clone a profile with its options and module assignments."""
    image, profile = _profile(image_id, profile_id)
    copy = domain.clone_profile(profile)
    db.session.commit()
    return jsonify(profile_json(copy, image)), 201


@bp.get(PROFILE_BASE + "/<int:profile_id>/" + KIND)
@token_required
def list_assignments(image_id: int, profile_id: int, kind: str):
    """List a profile's assigned modules of a kind, in run order."""
    info = kind_or_error(kind)
    _image_row, profile = _profile(image_id, profile_id)
    return jsonify([assignments.assignment_to_dict(info, r)
                    for r in assignments.rows(profile, info)])


@bp.post(PROFILE_BASE + "/<int:profile_id>/" + KIND)
@token_required
def add_assignment(image_id: int, profile_id: int, kind: str):
    """Assign a module: {module_id, priority?, run_when? | destination_partition?}."""
    info = kind_or_error(kind)
    _image_row, profile = _profile(image_id, profile_id)
    body = json_object()
    fields = {k: v for k, v in body.items() if k != "module_id"}
    module_id = check_fields({"module_id": body.get("module_id")},
                             {"module_id": assignments.MODULE_ID},
                             required=("module_id",))["module_id"]
    row = assignments.assign(profile, info, module_id, fields)
    db.session.commit()
    return jsonify(assignments.assignment_to_dict(info, row)), 201


def _assignment(profile: ImageProfile, info, assignment_id: int):
    """Return one assignment of the profile, or raise NotFound."""
    row = assignments.find(profile, info, assignment_id)
    if row is None:
        raise NotFound(f"the profile has no {info.slug} assignment {assignment_id}")
    return row


@bp.patch(PROFILE_BASE + "/<int:profile_id>/" + KIND + "/<int:assignment_id>")
@token_required
def patch_assignment(image_id: int, profile_id: int, kind: str, assignment_id: int):
    """Change an assignment's priority, run_when or destination_partition."""
    info = kind_or_error(kind)
    _image_row, profile = _profile(image_id, profile_id)
    row = _assignment(profile, info, assignment_id)
    body = json_object()
    for key in ("id", "module_id", "module_name"):
        body.pop(key, None)
    assignments.update(profile, info, row, body)
    db.session.commit()
    return jsonify(assignments.assignment_to_dict(info, row))


@bp.delete(PROFILE_BASE + "/<int:profile_id>/" + KIND + "/<int:assignment_id>")
@token_required
def delete_assignment(image_id: int, profile_id: int, kind: str, assignment_id: int):
    """Remove a module from the profile."""
    info = kind_or_error(kind)
    _image_row, profile = _profile(image_id, profile_id)
    assignments.remove(profile, info, _assignment(profile, info, assignment_id))
    db.session.commit()
    return "", 204


__all__ = ["OPENAPI_PATHS", "OPENAPI_SCHEMAS", "bp"]
