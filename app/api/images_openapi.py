"""OpenAPI 3.1 paths and schemas of the images and categories API (re-exported by images)."""

from __future__ import annotations

from app.images.rules import CATEGORY_NAME_MAX, DESCRIPTION_MAX, NAME_MAX
from app.models.images import ENVIRONMENTS, IMAGE_TYPES, REPLICATION_MODES


def _ref(name: str) -> dict:
    """Return a $ref to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    """Return a response object with a JSON body."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    """Return the error responses for the given status codes."""
    text = {400: "Invalid input", 401: "No valid token", 404: "Not found",
            409: "Conflict (duplicate name, protected image)", 422: "Unknown category"}
    return {str(code): _json(_ref("Error"), text[code]) for code in codes}


def _id_param(name: str) -> dict:
    """Return an integer path parameter."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


_IMAGE_WRITE = {
    "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "minLength": 1,
             "maxLength": NAME_MAX},
    "description": {"type": "string", "maxLength": DESCRIPTION_MAX},
    "environment": {"enum": list(ENVIRONMENTS)},
    "type": {"enum": list(IMAGE_TYPES), "description": "both only for winpe"},
    "enabled": {"type": "boolean"},
    "protected": {"type": "boolean"},
    "on_demand": {"type": "boolean"},
    "replication_mode": {"enum": list(REPLICATION_MODES)},
    "categories": {"type": "array", "items": {"type": "string"}},
}

# app.images.rules.category_name_problem: letters, digits, space, '_', '.', '-'; no space
# at either end.
_CATEGORY_NAME = {"type": "string", "minLength": 1, "maxLength": CATEGORY_NAME_MAX,
                  "pattern": "^[A-Za-z0-9_.-](?:[A-Za-z0-9 _.-]*[A-Za-z0-9_.-])?$"}

OPENAPI_SCHEMAS = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}},
    },
    "Image": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, **_IMAGE_WRITE,
            "size_on_server_bytes": {"type": "integer"},
            "size_on_client_bytes": {"type": "integer"},
            "last_upload_at": {"type": ["string", "null"], "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "ImageCreate": {"type": "object", "required": ["name", "environment", "type"],
                    "properties": _IMAGE_WRITE, "additionalProperties": False},
    "ImageUpdate": {"type": "object", "properties": _IMAGE_WRITE,
                    "additionalProperties": False,
                    "description": "environment and type may only repeat their current value"},
    "Category": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": "string", "maxLength": 64},
                       "description": {"type": "string"}, "image_count": {"type": "integer"}},
    },
    "CategoryWrite": {
        "type": "object", "additionalProperties": False,
        "properties": {"name": _CATEGORY_NAME,
                       "description": {"type": "string", "maxLength": DESCRIPTION_MAX}},
    },
    "CategoryCreate": {
        "type": "object", "additionalProperties": False, "required": ["name"],
        "properties": {"name": _CATEGORY_NAME,
                       "description": {"type": "string", "maxLength": DESCRIPTION_MAX}},
    },
}

_SEARCH_PARAMS = [
    {"name": "q", "in": "query", "schema": {"type": "string"},
     "description": "part of the name, case-insensitive"},
    {"name": "category", "in": "query", "schema": {"type": "array", "items": {"type": "string"}},
     "description": "category names (repeat or comma-separate)"},
    {"name": "mode", "in": "query", "schema": {"enum": ["any", "and", "or"], "default": "any"},
     "description": "any: one of the categories; and: all of them; or: one of them or none"},
    {"name": "limit", "in": "query",
     "schema": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 1_000_000},
                          {"const": "all"}], "default": 25}},
]

_IMAGE_LIST = {"type": "object", "properties": {
    "images": {"type": "array", "items": _ref("Image")}, "total": {"type": "integer"},
    "limit": {"type": ["integer", "null"]}}}


def _body(name: str) -> dict:
    """Return a required JSON request body of a component schema."""
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


OPENAPI_PATHS = {
    "/images": {
        "get": {"summary": "Search images", "parameters": _SEARCH_PARAMS,
                "responses": {"200": _json(_IMAGE_LIST, "Matching images"),
                              **_errors(400, 401, 422)}},
        "post": {"summary": "Create an image (default profile and folder too)",
                 "requestBody": _body("ImageCreate"),
                 "responses": {"201": _json(_ref("Image"), "Created"),
                               **_errors(400, 401, 409, 422)}},
    },
    "/images/{image_id}": {
        "parameters": [_id_param("image_id")],
        "get": {"summary": "Get an image",
                "responses": {"200": _json(_ref("Image"), "The image"), **_errors(401, 404)}},
        "patch": {"summary": "Update an image (rename moves its folder)",
                  "description": "A rename of an image made here is then queued on the "
                                 "servers holding a copy (docs/replication.md).",
                  "requestBody": _body("ImageUpdate"),
                  "responses": {"200": _json(_ref("Image"), "Updated"),
                                **_errors(400, 401, 404, 409, 422)}},
        "delete": {"summary": "Delete an image and its files (refused when protected)",
                   "description": "The deletion of an image made here is then queued on the "
                                  "servers holding a copy (docs/replication.md).",
                   "responses": {"204": {"description": "Deleted"}, **_errors(401, 404, 409)}},
    },
    "/images/{image_id}/schema": {
        "parameters": [_id_param("image_id")],
        "get": {"summary": "The uploaded disk schema (docs/schema.md)",
                "responses": {"200": _json({"type": "object"}, "Schema v1"),
                              **_errors(401, 404)}},
    },
    "/images/{image_id}/history": {
        "parameters": [_id_param("image_id")],
        "get": {"summary": "Audit events of the image, newest first",
                "responses": {"200": _json({"type": "object"}, "Events"), **_errors(401, 404)}},
    },
    "/categories": {
        "get": {"summary": "List categories",
                "responses": {"200": _json({"type": "object", "properties": {
                    "categories": {"type": "array", "items": _ref("Category")}}}, "Categories"),
                    **_errors(401)}},
        "post": {"summary": "Create a category", "requestBody": _body("CategoryCreate"),
                 "responses": {"201": _json(_ref("Category"), "Created"),
                               **_errors(400, 401, 409)}},
    },
    "/categories/{category_id}": {
        "parameters": [_id_param("category_id")],
        "get": {"summary": "Get a category",
                "responses": {"200": _json(_ref("Category"), "The category"),
                              **_errors(401, 404)}},
        "patch": {"summary": "Rename or describe a category", "requestBody": _body("CategoryWrite"),
                  "responses": {"200": _json(_ref("Category"), "Updated"),
                                **_errors(400, 401, 404, 409)}},
        "delete": {"summary": "Delete a category (images lose the tag)",
                   "responses": {"204": {"description": "Deleted"}, **_errors(401, 404)}},
    },
}
