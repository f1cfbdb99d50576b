"""OpenAPI 3.1 paths and schemas of the computers, groups and tasks API (re-exported by tasks)."""

from __future__ import annotations

from app.api.body import body_schema
from app.api.computers import COMPUTER_FIELDS, GROUP_FIELDS
from app.api.tasks import CHECKIN_FIELDS, LOG_FIELDS, TASK_FIELDS
from app.models.computers import TASK_KINDS, TASK_STATES


def _ref(name: str) -> dict:
    """Return a $ref to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    """Return a response object with a JSON body."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict) -> dict:
    """Return a JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _wrap(key: str, schema: dict) -> dict:
    """Return an object schema with one property."""
    return {"type": "object", "properties": {key: schema}}


ERRORS = {code: _json(_ref("Error"), text) for code, text in (
    ("400", "Invalid input"), ("401", "No valid token"), ("404", "Not found"),
    ("409", "Conflict (duplicate, active task, protected or ended)"))}


def _id(name: str) -> dict:
    """Return an integer path parameter."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


_COMPUTER_WRITE = body_schema(COMPUTER_FIELDS)["properties"]
_GROUP_WRITE = body_schema(GROUP_FIELDS)["properties"]

OPENAPI_SCHEMAS = {
    "Computer": {"type": "object", "properties": {
        "id": {"type": "integer"}, **_COMPUTER_WRITE, "model": {"type": "string"},
        "serial": {"type": "string"}, "system_uuid": {"type": "string"},
        "last_checkin_at": {"type": ["string", "null"], "format": "date-time"}}},
    "ComputerGroup": {"type": "object", "properties": {"id": {"type": "integer"},
                                                       **_GROUP_WRITE}},
    "Task": {"type": "object", "properties": {
        "id": {"type": "integer"}, "kind": {"enum": list(TASK_KINDS)},
        "state": {"enum": list(TASK_STATES)}, "computer_id": {"type": ["integer", "null"]},
        "image_id": {"type": ["integer", "null"]}, "profile_id": {"type": ["integer", "null"]},
        "on_demand": {"type": "boolean"}, "cancel_requested": {"type": "boolean"},
        "queue_position": {"type": ["integer", "null"]},
        "progress": {"type": "object", "description":
                     "partition, bytes_done, bytes_total, rate_bps, eta_s, percent"},
        "error": {"type": "string"}, "image": {"type": ["object", "null"]},
        "profile": {"type": ["object", "null"]}, "computer": {"type": ["object", "null"]}}},
}

_CHECKIN_BODY = body_schema(CHECKIN_FIELDS)
_CHECKIN_ANSWER = {"type": "object", "properties": {
    "computer": {"oneOf": [_ref("Computer"), {"type": "null"}]},
    "task": {"oneOf": [_ref("Task"), {"type": "null"}]},
    "token": {"type": ["string", "null"], "description": "a new task token, when issued"},
    "model_match": {"type": "boolean"}, "on_demand": {"type": "boolean"}}}


def _crud(name: str, plural: str, schema: str, write: dict) -> dict:
    """Return list/create and get/patch/delete paths of one resource."""
    one = _wrap(name, _ref(schema))
    return {
        f"/{plural}": {
            "get": {"summary": f"List {plural}", "responses": {
                "200": _json(_wrap(plural, {"type": "array", "items": _ref(schema)}), "OK"),
                "401": ERRORS["401"]}},
            "post": {"summary": f"Add a {name}", "requestBody": _body(
                {"type": "object", "properties": write, "required": ["name"],
                 "additionalProperties": False}),
                "responses": {"201": _json(one, "Created"), **ERRORS}},
        },
        f"/{plural}/{{{name}_id}}": {
            "parameters": [_id(f"{name}_id")],
            "get": {"summary": f"One {name}", "responses": {"200": _json(one, "OK"),
                                                             "404": ERRORS["404"]}},
            "patch": {"summary": f"Change a {name}", "requestBody": _body(
                {"type": "object", "properties": write, "additionalProperties": False}),
                "responses": {"200": _json(one, "OK"), **ERRORS}},
            "delete": {"summary": f"Delete a {name}", "responses": {
                "204": {"description": "Deleted"}, **ERRORS}},
        },
    }


OPENAPI_PATHS = {
    **_crud("computer", "computers", "Computer", _COMPUTER_WRITE),
    **_crud("group", "groups", "ComputerGroup", _GROUP_WRITE),
    "/tasks": {
        "get": {"summary": "List tasks (state=active|all|<state>)", "parameters": [
            {"name": "state", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": _json(_wrap("tasks", {"type": "array",
                                                       "items": _ref("Task")}), "OK")}},
        "post": {"summary": "Create a web task", "requestBody": _body(
            body_schema(TASK_FIELDS, ("kind", "computer_id"))),
            "responses": {"201": _json({"type": "object", "properties": {
                "task": _ref("Task"), "ticket": {"type": ["string", "null"], "description":
                    "a one-time boot ticket for castor-client task --ticket"}}},
                "Created"), **ERRORS}},
    },
    "/tasks/{task_id}": {"parameters": [_id("task_id")], "get": {
        "summary": "One task (API or its task token)",
        "responses": {"200": _json(_wrap("task", _ref("Task")), "OK"), **ERRORS}}},
    "/tasks/{task_id}/cancel": {
        "parameters": [_id("task_id")],
        "post": {"summary": "Cancel a task (ended=false: a web-cancelled client is stopping)",
                 "responses": {"200": _json({"type": "object", "properties": {
                     "task": _ref("Task"), "ended": {"type": "boolean"}}}, "OK"), **ERRORS}},
        "get": {"summary": "Cancel poll of the client (API or task token)", "responses": {
            "200": _json({"type": "object", "properties": {
                "cancel": {"type": "boolean"}, "state": {"type": "string"}}}, "OK")}},
    },
    "/client/checkin": {"post": {
        "summary": "Check in with a boot ticket (no token), an API or a task token: the "
                   "client's work, and a task token for a ticket",
        "tags": ["client"], "security": [{}, {"bearer": []}],
        "requestBody": _body(_CHECKIN_BODY),
        "responses": {"200": _json(_CHECKIN_ANSWER, "OK"), **ERRORS}}},
    "/tasks/{task_id}/start": {"parameters": [_id("task_id")], "post": {
        "summary": "Ask for an imaging slot (max imaging clients)", "responses": {
            "200": _json({"type": "object", "properties": {
                "state": {"enum": ["imaging", "queued"]}, "position": {"type": "integer"},
                "cancel": {"type": "boolean"}}}, "OK"), **ERRORS}}},
    "/tasks/{task_id}/log": {"parameters": [_id("task_id")], "post": {
        "summary": "Append to the task's log (API or task token, also after the end)",
        "requestBody": {**_body(body_schema(LOG_FIELDS)), "required": False},
        "responses": {"200": _json({"type": "object"}, "OK"), **ERRORS}}},
    "/tasks/{task_id}/heartbeat": {"parameters": [_id("task_id")], "post": {
        "summary": "Sign of life, so the task does not expire", "responses": {
            "200": _json({"type": "object"}, "OK"), **ERRORS}}},
}
