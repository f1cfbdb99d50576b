"""The OpenAPI document, merged from the OPENAPI_PATHS of every API module.

The paths come from the app's own routes: each documented operation is matched to its
rule, path parameters are declared from the rule's converters, and the answers every
operation can give through the error boundary (app.api.errors) are added, so the document
cannot miss a route, a parameter or an error status.
"""

from __future__ import annotations

import importlib
import re

from flask import Blueprint, Flask, current_app, jsonify
from werkzeug.routing import Rule

from app.api.errors import MAX_ID

bp = Blueprint("api_openapi", __name__, url_prefix="/api/v1")

PREFIX = "/api/v1"
API_MODULES = (
    "app.api.images_openapi", "app.api.profiles", "app.api.plan", "app.api.client_openapi",
    "app.api.multicast", "app.api.replication", "app.api.replication_servers",
    "app.api.tasks_openapi",
)
METHODS = ("get", "put", "post", "patch", "delete")
ERROR = {"$ref": "#/components/schemas/Error"}
# What each status means when the module does not say more.
STATUS_TEXT = {
    400: "Malformed input: not a JSON object, a wrong type, an unknown field or a bad number",
    401: "No valid token (or signature)", 403: "Not allowed for this token",
    404: "No such object (or an id out of range)", 409: "Conflict with the object's state",
    413: "The JSON body is too large", 415: "The body is not application/json",
    422: "Refused by the rules: the message says why",
}
PARAM = re.compile(r"<(?:([a-z]+)(?:\(([^)]*)\))?:)?([a-z_]+)>")


def _param_schema(converter: str | None, arguments: str | None) -> dict:
    """Return the JSON schema of a path parameter from its Flask converter."""
    if converter == "int":
        return {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    if converter == "any":
        return {"enum": [a.strip().strip("'\"") for a in (arguments or "").split(",")]}
    return {"type": "string", "minLength": 1, "pattern": "^[^/]+$"} if converter != "path" \
        else {"type": "string", "minLength": 1}


def _template(rule: Rule) -> tuple[str, list[dict]]:
    """Return a rule's OpenAPI path (without the /api/v1 prefix) and its path parameters."""
    params = [{"name": name, "in": "path", "required": True,
               "schema": _param_schema(converter, arguments)}
              for converter, arguments, name in PARAM.findall(rule.rule)]
    return PARAM.sub(lambda m: "{" + m.group(3) + "}", rule.rule)[len(PREFIX):], params


def _shape(path: str) -> str:
    """Return a path with its parameter names blanked, to match differently named docs."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def api_rules(app: Flask) -> list[tuple[str, str, list[dict]]]:
    """Return (OpenAPI path, method, path parameters) of every API route of the app."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path, params = _template(rule)
        expanded = [(path, params)]
        for param in params:
            if "enum" in param["schema"]:  # an any() converter: one documented path each
                expanded = [(p.replace("{" + param["name"] + "}", value),
                             [q for q in ps if q is not param])
                            for p, ps in expanded for value in param["schema"]["enum"]]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.extend((p, method.lower(), ps) for p, ps in expanded)
    return routes


def _module_paths() -> tuple[dict, dict]:
    """Return the paths and component schemas the API modules document."""
    paths: dict = {}
    schemas: dict = {}
    for dotted in API_MODULES:
        module = importlib.import_module(dotted)
        paths.update(getattr(module, "OPENAPI_PATHS", {}))
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    return paths, schemas


def _complete(operation: dict, params: list[dict], signed: bool) -> dict:
    """Declare the operation's path parameters and the error answers of the boundary."""
    operation = dict(operation)
    declared = {p["name"]: p for p in operation.get("parameters", []) if p.get("in") != "path"}
    operation["parameters"] = params + list(declared.values())
    responses = dict(operation.get("responses", {}))
    codes = [400, 401, 403, 404]  # 404: a path id, or a name or id in the body, is unknown
    if "requestBody" in operation:
        content = operation["requestBody"].get("content", {})
        codes += [413, 415, 422] if "application/json" in content else [422]
    for code in codes:
        responses.setdefault(str(code), {"description": STATUS_TEXT[code]})
    for code, response in responses.items():
        if code[0] in "45" and "content" not in response:
            response = {**response, "content": {"application/json": {"schema": ERROR}}}
        responses[code] = response
    operation["responses"] = responses
    if signed:
        operation["security"] = []
    return operation


def build_document(app: Flask | None = None) -> dict:
    """Return the OpenAPI 3.1 document for /api/v1 of the app's routes."""
    app = app or current_app
    documented, schemas = _module_paths()
    by_shape = {_shape(path): item for path, item in documented.items()}
    paths: dict = {}
    for path, method, params in api_rules(app):
        item = by_shape.get(_shape(path), {})
        operation = item.get(method) or {"summary": f"{method.upper()} {path}",
                                         "responses": {"200": {"description": "OK"}}}
        shared = [p for p in item.get("parameters", []) if p.get("in") != "path"]
        if shared:
            operation = {**operation, "parameters": shared + operation.get("parameters", [])}
        signed = path.startswith("/replication/") and "security" in operation
        paths.setdefault(path, {})[method] = _complete(operation, params, signed)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Castor API", "version": "1"},
        "servers": [{"url": PREFIX}],
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
