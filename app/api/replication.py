"""Server-to-server replication API: the receiving side; every request is signed.

The sender names itself in `X-Castor-Server`; we look up the com server row whose display
name or URL matches and check the HMAC with its shared secret (docs/replication.md).
"""

from __future__ import annotations

import hashlib
import json
from functools import wraps

from flask import Blueprint, current_app, g, jsonify, request, send_file
from sqlalchemy import or_

from app import storage
from app.api import api_error
from app.extensions import db
from app.models import ComServer
from app.replication import incoming, peers, registry, signing, swap
from app.replication.identity import local_server_name

bp = Blueprint("api_replication", __name__, url_prefix="/api/v1/replication")


def signed_path() -> str:
    """Return the path and query string as the sender signed them."""
    query = request.query_string.decode()
    return request.path + (f"?{query}" if query else "")


def signed(view):
    """Refuse requests without a fresh, unreplayed signature from a known com server."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        sender = request.headers.get(signing.SERVER_HEADER, "").strip()
        if not sender:
            return api_error(401, f"unsigned request: header {signing.SERVER_HEADER} is missing")
        server = db.session.scalar(
            db.select(ComServer).where(ComServer.is_local.is_(False))
            .where(or_(ComServer.display_name == sender, ComServer.url == sender))
        )
        if server is None:
            return api_error(401, f"unknown server {sender!r}: add it under Servers first")
        try:
            nonce = signing.verify_request(server.shared_secret, request.method, signed_path(),
                                           request.headers)
        except signing.SignatureError as exc:
            return api_error(401, str(exc))
        if not peers.remember_nonce(server.display_name, nonce):
            return api_error(401, "replayed request: this nonce was already used")
        declared = request.headers[signing.BODY_HASH_HEADER].strip().lower()
        if request.method != "PUT" and hashlib.sha256(request.get_data()).hexdigest() != declared:
            return api_error(400, "the body does not match its signed hash")
        g.replication_sender = server
        g.body_sha256 = declared
        return view(*args, **kwargs)

    return wrapped


def _json_body() -> object:
    """Parse the (signed) body as JSON whatever its content type; None when it isn't."""
    try:
        return json.loads(request.get_data() or b"null")
    except ValueError:
        return None


def _storage() -> str:
    return current_app.config["STORAGE_PATH"]


@bp.get("/ping")
@signed
def ping():
    """Answer a signed ping so an admin can test a server's URL and secret."""
    return jsonify({"ok": True, "server": local_server_name(),
                    "peer": g.replication_sender.display_name})


@bp.get("/storage")
@signed
def storage_space():
    """Report the free and total bytes of our image store, and nothing else about it."""
    try:
        free, total = storage.disk_space(_storage())
    except OSError as exc:
        return api_error(503, f"the image store cannot be measured: {exc.strerror}")
    return jsonify({"server": local_server_name(), "free_bytes": free, "total_bytes": total})


@bp.get("/images/<name>/manifest")
@signed
def manifest(name: str):
    """Report our manifest, the files really held (hashed) and the incoming copy."""
    incoming.incoming_dir(_storage(), name)  # validates the name
    return jsonify(incoming.report(_storage(), name))


@bp.get("/images/<name>/files/<path:relative>")
@signed
def get_file(name: str, relative: str):
    """Serve one file of our complete copy, so a peer can repair a damaged copy of its own."""
    folder = storage.image_dir(_storage(), incoming.incoming_dir(_storage(), name).name)
    try:
        path = storage.safe_join(folder, relative)
    except storage.StorageError as exc:
        return api_error(400, str(exc))
    if storage.read_manifest(folder) is None or not path.is_file():
        return api_error(404, f"no file {relative} in a complete copy of {name}")
    return send_file(path, mimetype="application/octet-stream", conditional=False, etag=False)


@bp.put("/images/<name>/files/<path:relative>")
@signed
def put_file(name: str, relative: str):
    """Receive one chunk of a file into the incoming copy, verified by SHA-256."""
    try:
        offset = int(request.args.get("offset", "0"))
        size = int(request.args["size"])
        sha256 = request.args["sha256"]
    except (KeyError, ValueError):
        return api_error(400, "offset, size and sha256 query parameters are required")
    peers.check_peer_may_change(name, g.replication_sender.display_name)
    length = request.content_length
    if length is None:
        return api_error(411, "a Content-Length is required")
    result = incoming.receive_chunk(_storage(), name, relative, offset, size, sha256,
                                    request.stream, length, g.body_sha256)
    return jsonify(result)


@bp.post("/images/<name>/commit")
@signed
def commit(name: str):
    """Verify the incoming copy against the manifest, write it last and swap it in."""
    peers.check_peer_may_change(name, g.replication_sender.display_name)
    body = _json_body()
    if not isinstance(body, dict):
        return api_error(400, "the body must be a JSON object with a manifest")
    count = swap.commit(_storage(), name, body.get("manifest"), body.get("extra_files", []),
                        finish=swap.finish_replicated,
                        record={"sender": g.replication_sender.display_name})
    return jsonify({"image": name, "committed": True, "files": count})


@bp.delete("/images/<name>")
@signed
def delete(name: str):
    """Delete an image's folder (and row) because the sender deleted it."""
    peers.check_peer_may_change(name, g.replication_sender.display_name)
    existed = swap.delete(_storage(), name)
    registry.forget_replicated_image(name, g.replication_sender.display_name)
    return jsonify({"image": name, "deleted": existed})


@bp.post("/images/<name>/rename")
@signed
def rename(name: str):
    """Rename an image's folder (and row) because the sender renamed it."""
    body = _json_body()
    new_name = body.get("new_name", "") if isinstance(body, dict) else ""
    for either in (name, new_name):
        peers.check_peer_may_change(either, g.replication_sender.display_name, renaming=True)
    existed = swap.rename(_storage(), name, new_name)
    registry.rename_replicated_image(name, new_name, g.replication_sender.display_name)
    return jsonify({"image": new_name, "renamed": existed})


# Signed with the shared secret (X-Castor-* headers), not a bearer token.
_SIGNED: list = []
_ERRORS = {"400": {"description": "malformed request or path outside the image folder"},
           "401": {"description": "unsigned, stale, replayed or wrongly signed"}}

OPENAPI_PATHS = {
    "/replication/ping": {"get": {
        "summary": "Check a peer's URL and shared secret", "security": _SIGNED,
        "responses": {"200": {"description": "{ok, server, peer}"}, **_ERRORS}}},
    "/replication/storage": {"get": {
        "summary": "The free and total bytes of the peer's image store", "security": _SIGNED,
        "responses": {"200": {"description": "{server, free_bytes, total_bytes}"},
                      "503": {"description": "the image store cannot be measured"},
                      **_ERRORS}}},
    "/replication/images/{name}/manifest": {"get": {
        "summary": "Our manifest, the files held (size, SHA-256) and the incoming copy",
        "security": _SIGNED,
        "responses": {"200": {"description": "{image, manifest, files[], incoming[]}"},
                      **_ERRORS}}},
    "/replication/images/{name}/files/{path}": {"get": {
        "summary": "One file of our complete copy (a peer repairs its damaged copy)",
        "security": _SIGNED,
        "responses": {"200": {"description": "the file's bytes"},
                      "404": {"description": "no complete copy or no such file"}, **_ERRORS}},
        "put": {
        "summary": "Receive bytes offset.. of a file; verified against sha256 when complete",
        "security": _SIGNED,
        "parameters": [{"name": n, "in": "query", "required": n != "offset",
                        "schema": {"type": "string"}} for n in ("offset", "size", "sha256")],
        "responses": {"200": {"description": "{path, received_bytes, complete}"},
                      "409": {"description": "wrong offset; body has received_bytes"},
                      "422": {"description": "SHA-256 mismatch on receipt, file discarded"},
                      "507": {"description": "the target's disk is full"}, **_ERRORS}}},
    "/replication/images/{name}/commit": {"post": {
        "summary": "Check every file, write the manifest last and swap the copy in",
        "security": _SIGNED,
        "responses": {"200": {"description": "{image, committed, files}"},
                      "409": {"description": "a file is missing or mismatched; nothing replaced"},
                      **_ERRORS}}},
    "/replication/images/{name}": {"delete": {
        "summary": "Delete a replicated image", "security": _SIGNED,
        "responses": {"200": {"description": "{image, deleted}"}, **_ERRORS}}},
    "/replication/images/{name}/rename": {"post": {
        "summary": "Rename a replicated image; body {new_name}", "security": _SIGNED,
        "responses": {"200": {"description": "{image, renamed}"}, **_ERRORS}}},
}
