"""Com servers and replication over the token API (routes on the api_replication blueprint)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from werkzeug.datastructures import MultiDict

from app.api import api_error, token_required
from app.api.body import Field, Text, body_schema, check_fields, json_object
from app.extensions import db
from app.models import ComServer, Image, ReplicationStatus
from app.models.images import image_replication_servers
from app.replication import queue_replication
from app.servers.forms import ServerForm

bp = Blueprint("api_replication_servers", __name__, url_prefix="/api/v1/replication")
FIELDS = ("display_name", "url", "storage_path", "max_imaging_clients", "max_bandwidth_kbps",
          "multicast_interface", "multicast_port_start", "multicast_port_end")
CREATE_DEFAULTS = {"storage_path": "", "max_imaging_clients": 0, "max_bandwidth_kbps": 0,
                   "multicast_interface": "eth0", "multicast_port_start": 9000,
                   "multicast_port_end": 9998}
FLAGS = ("role_imaging", "role_multicast", "role_pxe", "replicate_storage", "is_local")
PORT = Field(int, minimum=1, maximum=65535)
SERVER_FIELDS = {
    "display_name": Text(64), "url": Text(256, description="http:// or https://"),
    "shared_secret": Text(128), "storage_path": Text(256),
    "max_imaging_clients": Field(int, minimum=0, maximum=1 << 31),
    "max_bandwidth_kbps": Field(int, minimum=0, maximum=1 << 40),
    "multicast_interface": Text(32), "multicast_port_start": PORT, "multicast_port_end": PORT,
    **{flag: Field(bool) for flag in FLAGS}}


def server_dict(server: ComServer) -> dict:
    """Return a com server as JSON; the secret itself never leaves the server."""
    data = {name: getattr(server, name) for name in ("id", *FIELDS, *FLAGS)}
    data["has_secret"] = bool(server.shared_secret)
    return data


def _payload() -> dict:
    """Return the JSON body's com server fields after checking names and types."""
    return check_fields(json_object(), SERVER_FIELDS, ignore=("id", "has_secret"))


def _invalid(form: ServerForm):
    """Answer 422 naming every refused field (the first as `field`) in one message."""
    problems = "; ".join(f"{name}: {' '.join(map(str, errors))}"
                         for name, errors in form.errors.items())
    return api_error(422, f"invalid com server: {problems}",
                     field=next(iter(form.errors), None))


def _form(payload: dict, server: ComServer | None) -> ServerForm:
    """Build the page's form from JSON (missing keys keep the current values)."""
    current = server_dict(server) if server else CREATE_DEFAULTS
    values = MultiDict()
    for name in FIELDS:
        value = payload.get(name, current.get(name))
        if value is not None:
            values[name] = str(value)
    for name in FLAGS:
        default = current.get(name, name != "is_local")
        if payload.get(name, default):
            values[name] = "y"
    if payload.get("shared_secret"):
        values["shared_secret"] = str(payload["shared_secret"])
    return ServerForm(formdata=values, server=server, meta={"csrf": False})


def _admin_error():
    if not g.user.is_admin:
        return api_error(403, "only admins can change com servers")
    return None


@bp.get("/servers")
@token_required
def list_servers():
    """List the com servers."""
    servers = db.session.scalars(db.select(ComServer).order_by(ComServer.display_name))
    return jsonify([server_dict(server) for server in servers])


@bp.post("/servers")
@token_required
def create_server():
    """Add a com server."""
    if (error := _admin_error()) is not None:
        return error
    form = _form(_payload(), None)
    if not form.validate():
        return _invalid(form)
    server = ComServer()
    form.apply(server)
    db.session.add(server)
    db.session.commit()
    return jsonify(server_dict(server)), 201


def _server_or_error(server_id: int):
    server = db.session.get(ComServer, server_id)
    return server, (None if server else api_error(404, f"no com server with id {server_id}"))


@bp.get("/servers/<int:server_id>")
@token_required
def get_server(server_id: int):
    """Show one com server."""
    server, error = _server_or_error(server_id)
    return error or jsonify(server_dict(server))


@bp.put("/servers/<int:server_id>")
@token_required
def update_server(server_id: int):
    """Change a com server (fields left out keep their values)."""
    server, error = _server_or_error(server_id)
    if (error := error or _admin_error()) is not None:
        return error
    form = _form(_payload(), server)
    if not form.validate():
        return _invalid(form)
    form.apply(server)
    db.session.commit()
    return jsonify(server_dict(server))


@bp.delete("/servers/<int:server_id>")
@token_required
def delete_server(server_id: int):
    """Remove a com server and its replication state."""
    server, error = _server_or_error(server_id)
    if (error := error or _admin_error()) is not None:
        return error
    db.session.execute(db.delete(ReplicationStatus).filter_by(server_id=server.id))
    db.session.execute(image_replication_servers.delete()
                       .where(image_replication_servers.c.server_id == server.id))
    db.session.delete(server)
    db.session.commit()
    return "", 204


def _status_list(image: Image) -> list[dict]:
    rows = db.session.scalars(db.select(ReplicationStatus).filter_by(image_id=image.id))
    return [{"server": row.server.display_name, "server_id": row.server_id,
             "state": row.state, "percent": row.percent, "rate_bps": row.rate_bps,
             "bytes_sent": row.bytes_sent, "error": row.error,
             "last_try_at": row.last_try_at.isoformat() + "Z" if row.last_try_at else None}
            for row in rows]


@bp.post("/images/<int:image_id>/replicate")
@token_required
def replicate_image(image_id: int):
    """Queue the replication of an image to all its targets now."""
    image = db.session.get(Image, image_id)
    if image is None:
        return api_error(404, f"no image with id {image_id}")
    jobs = queue_replication(image, force=True)
    return jsonify({"jobs": [job.id for job in jobs]}), 202


@bp.get("/images/<int:image_id>/status")
@token_required
def image_status(image_id: int):
    """List where an image stands on each server."""
    image = db.session.get(Image, image_id)
    if image is None:
        return api_error(404, f"no image with id {image_id}")
    return jsonify(_status_list(image))


_SERVER_BODY = {"required": True, "content": {"application/json": {
    "schema": body_schema(SERVER_FIELDS)}}}
_TOKEN = {"200": {"description": "OK"}, "401": {"description": "no valid token"}}
OPENAPI_PATHS = {
    "/replication/servers": {
        "get": {"summary": "List com servers", "responses": _TOKEN},
        "post": {"summary": "Add a com server (admin)", "requestBody": _SERVER_BODY,
                 "responses": {**_TOKEN, "201": {"description": "created"},
                               "422": {"description": "invalid fields"}}}},
    "/replication/servers/{id}": {
        "get": {"summary": "Show a com server", "responses": _TOKEN},
        "put": {"summary": "Change a com server (admin)", "requestBody": _SERVER_BODY,
                "responses": _TOKEN},
        "delete": {"summary": "Remove a com server (admin)",
                   "responses": {"204": {"description": "removed"}}}},
    "/replication/images/{id}/replicate": {
        "post": {"summary": "Queue replication of an image now",
                 "responses": {"202": {"description": "{jobs: [id]}"}}}},
    "/replication/images/{id}/status": {
        "get": {"summary": "Replication status per server", "responses": _TOKEN}},
}
