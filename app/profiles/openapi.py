"""OpenAPI description of the profile and module endpoints (merged by app.api.openapi)."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer

from app.api.body import body_schema
from app.models.modules import RUN_WHEN
from app.models.profiles import OPTION_FIELDS, ImageProfile
from app.modules.domain import KINDS
from app.profiles.assignments import ASSIGNMENT_FIELDS, MODULE_ID
from app.profiles.options import CHOICES


def _option_schema(field: str) -> dict:
    """Return the JSON schema of one profile option, from its column."""
    if field in ("custom_upload_schema", "deploy_schema"):
        return {"type": ["object", "null"],
                "description": "a copy of the image schema with selection keys "
                               "(docs/schema.md, Selections)"}
    column_type = ImageProfile.__table__.c[field].type
    if isinstance(column_type, Boolean):
        return {"type": "boolean"}
    if isinstance(column_type, Integer):
        return {"type": "integer"}
    schema: dict = {"type": "string"}
    if field in CHOICES:
        schema["enum"] = list(CHOICES[field])
    return schema


def _ref(name: str) -> dict:
    """Return a JSON reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    """Return an OpenAPI response with a JSON body."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict) -> dict:
    """Return an OpenAPI JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


ERRORS = {"401": {"description": "missing or invalid token"},
          "404": _json(_ref("ProfileApiError"), "not found"),
          "422": _json(_ref("ProfileApiError"),
                       "validation failed; `errors` maps fields to messages")}
IMAGE_ID = {"name": "image_id", "in": "path", "required": True, "schema": {"type": "integer"}}
PROFILE_ID = {"name": "profile_id", "in": "path", "required": True,
              "schema": {"type": "integer"}}
KIND = {"name": "kind", "in": "path", "required": True,
        "schema": {"type": "string", "enum": list(KINDS)}}
ITEM_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}

OPTIONS = {field: _option_schema(field) for field in OPTION_FIELDS}

_NAME = {"type": "string", "minLength": 1, "maxLength": 64}


def _assignment_body(slug: str, create: bool) -> dict:
    """The fields an assignment of one module kind takes (assignments.ASSIGNMENT_FIELDS)."""
    if create:
        return body_schema({"module_id": MODULE_ID, **ASSIGNMENT_FIELDS[slug]}, ("module_id",))
    return body_schema(ASSIGNMENT_FIELDS[slug])


def _assignment_paths() -> dict:
    """One documented path per module kind: each takes its own assignment fields."""
    paths = {}
    for slug in KINDS:
        paths[f"{ONE_PROFILE}/{slug}"] = {
            "parameters": [IMAGE_ID, PROFILE_ID],
            "get": {"summary": f"List assigned {slug} in run order", "tags": ["profiles"],
                    "responses": {"200": _json({"type": "array",
                                                "items": _ref("ModuleAssignment")}),
                                  **ERRORS}},
            "post": {"summary": f"Assign a module ({slug})", "tags": ["profiles"],
                     "requestBody": _body(_assignment_body(slug, True)),
                     "responses": {"201": _json(_ref("ModuleAssignment"), "assigned"),
                                   **ERRORS}},
        }
        paths[f"{ONE_PROFILE}/{slug}/{{id}}"] = {
            "parameters": [IMAGE_ID, PROFILE_ID, ITEM_ID],
            "patch": {"summary": "Change priority, run_when or destination_partition",
                      "tags": ["profiles"], "requestBody": _body(_assignment_body(slug, False)),
                      "responses": {"200": _json(_ref("ModuleAssignment")), **ERRORS}},
            "delete": {"summary": "Remove a module from the profile", "tags": ["profiles"],
                       "responses": {"204": {"description": "removed"}, **ERRORS}},
        }
    return paths


OPENAPI_SCHEMAS = {
    "ProfileOptions": {"type": "object", "additionalProperties": False,
                       "properties": {"name": _NAME, **OPTIONS}},
    "ProfileCreate": {"type": "object", "additionalProperties": False, "required": ["name"],
                      "properties": {"name": _NAME, "description": {"type": "string",
                                                                    "maxLength": 65536},
                                     **OPTIONS}},
    "Profile": {"type": "object", "properties": {
        "id": {"type": "integer"}, "image_id": {"type": "integer"},
        "name": {"type": "string"}, **OPTIONS,
        "scripts": {"type": "array", "items": _ref("ModuleAssignment")},
        "syspreps": {"type": "array", "items": _ref("ModuleAssignment")},
        "filecopies": {"type": "array", "items": _ref("ModuleAssignment")},
        "minimum_sizes_bytes": {"type": ["array", "null"],
                                "items": {"type": ["integer", "null"]},
                                "description": "per disk; null entries are N/A (% sizes)"}}},
    "ModuleAssignment": {"type": "object", "properties": {
        "id": {"type": "integer"}, "module_id": {"type": "integer"},
        "module_name": {"type": "string"},
        "priority": {"type": "integer", "minimum": 0, "maximum": 9999,
                     "description": "lower runs first"},
        "run_when": {"type": "string", "enum": list(RUN_WHEN), "description": "scripts only"},
        "destination_partition": {"type": "string",
                                  "description": "file copies only: number or vg-lv"}}},
    "Module": {"type": "object", "properties": {
        "id": {"type": "integer"}, "kind": {"type": "string"},
        "name": {"type": "string"}, "description": {"type": "string"},
        "contents": {"type": "string", "description": "scripts and syspreps"},
        "opening_tag": {"type": "string", "description": "syspreps: an XML tag"},
        "closing_tag": {"type": "string", "description": "syspreps: its closing tag"},
        "destination_folder": {"type": "string", "description": "file copies"},
        "unzip": {"type": "boolean", "description": "file copies"},
        "files": {"type": "array", "description": "file copies: stored files",
                  "items": {"type": "object", "properties": {
                      "path": {"type": "string"}, "size_bytes": {"type": "integer"}}}}}},
    "ProfileApiError": {"type": "object", "properties": {
        "error": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}}}},
}

PROFILES = "/images/{image_id}/profiles"
ONE_PROFILE = PROFILES + "/{profile_id}"

OPENAPI_PATHS = {
    PROFILES: {
        "parameters": [IMAGE_ID],
        "get": {"summary": "List an image's profiles", "tags": ["profiles"],
                "responses": {"200": _json({"type": "array", "items": _ref("Profile")}),
                              **ERRORS}},
        "post": {"summary": "Create a profile (name required, options optional)",
                 "tags": ["profiles"], "requestBody": _body(_ref("ProfileCreate")),
                 "responses": {"201": _json(_ref("Profile"), "created"), **ERRORS}},
    },
    ONE_PROFILE: {
        "parameters": [IMAGE_ID, PROFILE_ID],
        "get": {"summary": "Get a profile", "tags": ["profiles"],
                "responses": {"200": _json(_ref("Profile")), **ERRORS}},
        "patch": {"summary": "Change options (all or nothing)", "tags": ["profiles"],
                  "requestBody": _body(_ref("ProfileOptions")),
                  "responses": {"200": _json(_ref("Profile")), **ERRORS}},
        "delete": {"summary": "Delete a profile", "tags": ["profiles"],
                   "responses": {"204": {"description": "deleted"},
                                 "409": _json(_ref("ProfileApiError"), "the image's last profile"),
                                 **ERRORS}},
    },
    ONE_PROFILE + "/clone": {
        "parameters": [IMAGE_ID, PROFILE_ID],
        "post": {"summary": "Clone with every option and module; name gets _N, model match "
                            "cleared", "tags": ["profiles"],
                 "responses": {"201": _json(_ref("Profile"), "created"), **ERRORS}},
    },
    **_assignment_paths(),
    "/modules/{kind}": {
        "parameters": [KIND],
        "get": {"summary": "List modules of a kind", "tags": ["modules"],
                "responses": {"200": _json({"type": "array", "items": _ref("Module")}),
                              **ERRORS}},
        "post": {"summary": "Create a module", "tags": ["modules"],
                 "requestBody": _body(_ref("Module")),
                 "responses": {"201": _json(_ref("Module"), "created"), **ERRORS}},
    },
    "/modules/{kind}/{id}": {
        "parameters": [KIND, ITEM_ID],
        "get": {"summary": "Get a module", "tags": ["modules"],
                "responses": {"200": _json(_ref("Module")), **ERRORS}},
        "patch": {"summary": "Change a module", "tags": ["modules"],
                  "requestBody": _body(_ref("Module")),
                  "responses": {"200": _json(_ref("Module")), **ERRORS}},
        "delete": {"summary": "Delete a module and its assignments", "tags": ["modules"],
                   "responses": {"204": {"description": "deleted"}, **ERRORS}},
    },
    "/modules/filecopies/{id}/files": {
        "parameters": [ITEM_ID],
        "post": {"summary": "Upload files (multipart field `files`; zips checked for path "
                            "traversal)", "tags": ["modules"],
                 "requestBody": {"required": True, "content": {"multipart/form-data": {
                     "schema": {"type": "object", "properties": {"files": {
                         "type": "array", "items": {"type": "string", "format": "binary"}}}}}}},
                 "responses": {"201": _json(_ref("Module"), "stored"), **ERRORS}},
    },
    "/modules/filecopies/{id}/files/{path}": {
        "parameters": [ITEM_ID, {"name": "path", "in": "path", "required": True,
                                 "schema": {"type": "string"}}],
        "delete": {"summary": "Remove one stored file", "tags": ["modules"],
                   "responses": {"204": {"description": "removed"}, **ERRORS}},
    },
}
