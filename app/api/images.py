"""REST API: images and categories, with the same rules and workflows as the pages."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from app.api import api_error, token_required
from app.api.body import json_object, query_one
from app.categories import domain as category_service
from app.extensions import db
from app.images import service
from app.images.search import CATEGORY_MODES, SearchParams, parse_limit, preload_categories
from app.images.search import search_images as run_search
from app.images.service import ImageError
from app.models import Category, History, Image

bp = Blueprint("api_images", __name__, url_prefix="/api/v1")

# Fields a client may send, with their JSON type; everything else in the shape is read-only.
WRITABLE = {
    "name": str, "description": str, "environment": str, "type": str, "enabled": bool,
    "protected": bool, "on_demand": bool, "replication_mode": str, "categories": list,
}
READ_ONLY = {"id", "size_on_server_bytes", "size_on_client_bytes", "last_upload_at",
             "created_at"}
TYPE_NAMES = {str: "a string", bool: "true or false", list: "a list of category names"}


def _image_fields(body: dict) -> dict:
    """Check the JSON fields' names and types; return them with categories resolved."""
    fields = {}
    for key, value in body.items():
        if key in READ_ONLY:
            raise ImageError(f"{key} is read-only.", key, 400)
        expected = WRITABLE.get(key)
        if expected is None:
            raise ImageError(f"Unknown field {key}.", key, 400)
        if not isinstance(value, expected) or (key == "categories"
                                                and not all(isinstance(v, str) for v in value)):
            raise ImageError(f"{key} must be {TYPE_NAMES[expected]}.", key, 400)
        fields[key] = value
    if "categories" in fields:
        fields["categories"] = service.categories_by_names(fields["categories"])
    return fields


def _image_or_error(image_id: int) -> Image:
    """Return the image, or raise a 404 ImageError."""
    image = db.session.get(Image, image_id)
    if image is None:
        raise ImageError(f"No image with id {image_id}.", "id", 404)
    return image


@bp.get("/images")
@token_required
def search_images():
    """Search images by name (q), category names (category, repeatable), mode and limit."""
    raw_limit = query_one("limit")
    try:
        if raw_limit == "":
            raise ValueError("limit is a number or 'all', not empty")
        limit = parse_limit(raw_limit)
    except ValueError as exc:
        return api_error(400, str(exc), field="limit")
    mode = query_one("mode")
    mode = "any" if mode is None else mode
    if mode not in CATEGORY_MODES:
        return api_error(400, f"mode is one of: {', '.join(CATEGORY_MODES)}.", field="mode")
    names = [n.strip() for value in request.args.getlist("category")
             for n in value.split(",") if n.strip()]
    try:
        ids = [c.id for c in service.categories_by_names(names)]
    except ImageError as exc:
        return api_error(422, exc.message, field="category")
    result = run_search(SearchParams(q=(query_one("q") or "").strip(), category_ids=ids,
                                     mode=mode, limit=limit))
    preload_categories(result.images)
    images = []
    for image in result.images:
        data = image.to_dict()
        used = result.last_used.get(image.id)
        data["last_used_at"] = used.isoformat(timespec="seconds") + "Z" if used else None
        images.append(data)
    return jsonify({"images": images, "total": result.total, "limit": limit})


@bp.post("/images")
@token_required
def create_image():
    """Create an image with its default profile and storage folder."""
    fields = _image_fields(json_object())
    for required in ("name", "environment", "type"):
        if required not in fields:
            raise ImageError(f"{required} is required.", required, 400)
    image = service.create_image(
        current_app.config["STORAGE_PATH"], name=fields["name"],
        environment=fields["environment"], image_type=fields["type"],
        description=fields.get("description", ""),
        protected=fields.get("protected", False), on_demand=fields.get("on_demand", True),
        enabled=fields.get("enabled", True), categories=fields.get("categories"),
        replication_mode=fields.get("replication_mode", "global"),
    )
    return jsonify(image.to_dict()), 201


@bp.get("/images/<int:image_id>")
@token_required
def get_image(image_id: int):
    """Return one image."""
    return jsonify(_image_or_error(image_id).to_dict())


@bp.patch("/images/<int:image_id>")
@token_required
def update_image(image_id: int):
    """Change some fields of an image; environment and type can't change; renames propagate."""
    image = _image_or_error(image_id)
    fields = _image_fields(json_object())
    service.update_image(current_app.config["STORAGE_PATH"], image, fields)
    return jsonify(image.to_dict())


@bp.delete("/images/<int:image_id>")
@token_required
def delete_image(image_id: int):
    """Delete an image and its files (and on the peers); protected images answer 409."""
    service.delete_image(current_app.config["STORAGE_PATH"], _image_or_error(image_id))
    return "", 204


@bp.get("/images/<int:image_id>/schema")
@token_required
def get_schema(image_id: int):
    """Return the image's uploaded schema (docs/schema.md); 404 before the first upload."""
    image = _image_or_error(image_id)
    if not image.schema_json:
        return api_error(404, "No schema yet: upload the image first.", field="schema")
    return jsonify(image.schema)


@bp.get("/images/<int:image_id>/history")
@token_required
def get_history(image_id: int):
    """Return the image's audit events, newest first (at most 200)."""
    image = _image_or_error(image_id)
    rows = db.session.scalars(
        db.select(History)
        .where(History.object_type == "image", History.object_id == image.id,
               History.created_at >= image.created_at)
        .order_by(History.created_at.desc(), History.id.desc()).limit(200)
    ).all()
    return jsonify({"events": [
        {"id": r.id, "action": r.action, "username": r.username,
         "created_at": r.created_at.isoformat(timespec="seconds") + "Z", "object": r.data}
        for r in rows
    ]})


def _category_fields(body: dict) -> dict:
    """Check a category body's field names and types."""
    for key, value in body.items():
        if key not in ("name", "description"):
            raise ImageError(f"Unknown or read-only field {key}.", key, 400)
        if not isinstance(value, str):
            raise ImageError(f"{key} must be a string.", key, 400)
    return body


def _category_or_error(category_id: int) -> Category:
    """Return the category, or raise a 404 ImageError."""
    category = db.session.get(Category, category_id)
    if category is None:
        raise ImageError(f"No category with id {category_id}.", "id", 404)
    return category


@bp.get("/categories")
@token_required
def list_categories():
    """List every category with how many images carry it."""
    counts = category_service.image_counts()
    rows = db.session.scalars(db.select(Category).order_by(Category.name)).all()
    return jsonify({"categories": [
        category_service.category_to_dict(c, counts.get(c.id, 0)) for c in rows]})


@bp.post("/categories")
@token_required
def create_category():
    """Create a category."""
    fields = _category_fields(json_object())
    if "name" not in fields:
        raise ImageError("name is required.", "name", 400)
    category = category_service.create_category(fields["name"],
                                                fields.get("description", ""))
    return jsonify(category_service.category_to_dict(category, 0)), 201


@bp.get("/categories/<int:category_id>")
@token_required
def get_category(category_id: int):
    """Return one category."""
    category = _category_or_error(category_id)
    counts = category_service.image_counts()
    return jsonify(category_service.category_to_dict(category, counts.get(category.id, 0)))


@bp.patch("/categories/<int:category_id>")
@token_required
def update_category(category_id: int):
    """Rename a category or change its description."""
    category = _category_or_error(category_id)
    fields = _category_fields(json_object())
    category_service.update_category(category, fields.get("name"), fields.get("description"))
    counts = category_service.image_counts()
    return jsonify(category_service.category_to_dict(category, counts.get(category.id, 0)))


@bp.delete("/categories/<int:category_id>")
@token_required
def delete_category(category_id: int):
    """Delete a category; images lose the tag."""
    category_service.delete_category(_category_or_error(category_id))
    return "", 204

