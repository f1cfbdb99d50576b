"""The OpenAPI document, merged from the OPENAPI_PATHS of every API module."""

from __future__ import annotations

import importlib

from flask import Blueprint, jsonify

bp = Blueprint("api_openapi", __name__, url_prefix="/api/v1")

API_MODULES = (
    "app.api.images", "app.api.profiles", "app.api.plan", "app.api.client",
    "app.api.multicast", "app.api.replication", "app.api.tasks",
)


def build_document() -> dict:
    """Return the OpenAPI 3.1 document for /api/v1."""
    paths: dict = {}
    schemas: dict = {}
    for dotted in API_MODULES:
        module = importlib.import_module(dotted)
        paths.update(getattr(module, "OPENAPI_PATHS", {}))
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Castor API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }


@bp.get("/openapi.json")
def openapi():
    """Serve the OpenAPI document."""
    return jsonify(build_document())
