"""OpenAPI paths of the imaging client's API (/api/v1/client/...)."""

from __future__ import annotations

from app.api.body import body_schema
from app.api.client import COMPLETE_FIELDS, UPLOAD_FIELDS
from app.api.client_io import DEPLOY_FIELDS


def _op(summary: str, *, body: str | None = None, stream: bool = False,
        responses: tuple[int, ...] = (200,), params: tuple[str, ...] = (),
        schema: dict | None = None) -> dict:
    """Build one OpenAPI operation object."""
    op: dict = {"summary": summary, "tags": ["client"],
                "responses": {str(code): {"description": _STATUS[code]} for code in responses}}
    if params:
        op["parameters"] = [{"name": p, "in": "path", "required": True,
                             "schema": {"type": "string"}} for p in params]
    if body:
        # Only the schema is required: the other JSON bodies may be left out ({} then).
        op["requestBody"] = {"required": body == "schema", "content": {
            "application/json": {"schema": {**(schema or {"type": "object"}),
                                            "description": body}}}}
    if stream:
        op["requestBody"] = {"required": True, "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    return op


_STATUS = {200: "OK", 201: "Created", 206: "Partial content (Range)", 400: "Bad request",
           401: "Token missing or invalid", 403: "Outside the task token's task or the "
           "user's role", 429: "Too many failed sign-ins: wait", 404: "Not found",
           409: "Refused (protected, disabled or not uploaded)",
           422: "Invalid or mismatching data (or plan refused)",
           507: "Server disk full"}

P = "/client"
OPENAPI_PATHS = {
    f"{P}/login": {"post": _op("Trade a username and password for a short-lived token with "
                               "the user's role (the on-demand console)",
                               body="{username, password}", responses=(200, 401, 429))},
    f"{P}/images": {"get": _op("Enabled images; ?on_demand=1 for those available on demand")},
    f"{P}/images/{{name}}/profiles": {"get": _op("Profiles of an image", params=("name",),
                                                 responses=(200, 404))},
    f"{P}/profiles/{{profile_id}}/options": {"get": _op(
        "Every option of a profile with its modules", params=("profile_id",),
        responses=(200, 404))},
    f"{P}/uploads": {"post": _op("Open an upload session", body="{image, profile}",
                                 responses=(201, 404, 409),
                                 schema=body_schema(UPLOAD_FIELDS))},
    f"{P}/uploads/{{upload_id}}/schema": {"put": _op(
        "Store the upload's schema (castor-schema v1)", body="schema", params=("upload_id",),
        responses=(200, 404, 422))},
    f"{P}/uploads/{{upload_id}}/files/{{path}}": {"put": _op(
        "Stream one image file (chunked); X-Castor-Size / X-Castor-Sha256 optional",
        stream=True, params=("upload_id", "path"), responses=(201, 400, 404, 422, 507))},
    f"{P}/uploads/{{upload_id}}/complete": {"post": _op(
        "Verify all files and swap the new image in", body="{files: [manifest entries], "
        "schema_only}", params=("upload_id",), responses=(200, 404, 409, 422),
        schema=body_schema(COMPLETE_FIELDS))},
    f"{P}/uploads/{{upload_id}}": {"delete": _op("Abort an upload", params=("upload_id",))},
    f"{P}/images/{{name}}/manifest": {"get": _op("The image's manifest", params=("name",),
                                                 responses=(200, 404, 409))},
    f"{P}/images/{{name}}/schema": {"get": _op("The image's schema", params=("name",),
                                               responses=(200, 404, 409))},
    f"{P}/images/{{name}}/files/{{path}}": {"get": _op(
        "Download an image file; Range supported", params=("name", "path"),
        responses=(200, 206, 404, 409))},
    f"{P}/deploys": {"post": _op("Plan a deploy for the client's disks",
                                 body="{image, profile, disks: [{size_bytes, "
                                 "logical_sector_size, physical_sector_size}]}",
                                 responses=(200, 404, 409, 422),
                                 schema=body_schema(DEPLOY_FIELDS))},
    f"{P}/progress": {"post": _op("Report progress", body="{task_id, step, disk, partition, "
                                  "bytes_done, bytes_total, rate_bytes_s, eta_s, percent}")},
    f"{P}/log": {"post": _op("Append to the task log", body="{task_id, text}")},
    f"{P}/cancel": {"get": _op("Was the task cancelled? (?task_id=)")},
    f"{P}/checkout": {"post": _op("Close the task", body="{task_id, ok, error, cancelled}")},
}
