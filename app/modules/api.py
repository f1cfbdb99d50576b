"""REST API of modules (/api/v1/modules/<kind>): the modules feature's own API blueprint.

Its OpenAPI description is with the profiles' (app.profiles.openapi), which assign modules.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from app.api import api_error, token_required
from app.api.body import json_object
from app.errors import NotFound
from app.extensions import db
from app.models.images import record_history
from app.modules import domain, files
from app.modules.domain import KINDS, Kind

bp = Blueprint("api_modules", __name__, url_prefix="/api/v1")


def kind_or_error(kind: str) -> Kind:
    """Return a module kind by slug, or raise NotFound."""
    if kind not in KINDS:
        raise NotFound(f"unknown module kind {kind!r}; use {', '.join(KINDS)}")
    return KINDS[kind]


def _module(info: Kind, module_id: int):
    """Return a module, or raise NotFound."""
    module = db.session.get(info.model, module_id)
    if module is None:
        raise NotFound(f"no {info.label.lower()} module with id {module_id}")
    return module


def _storage() -> str:
    """Return the storage root."""
    return current_app.config["STORAGE_PATH"]


@bp.get("/modules/<kind>")
@token_required
def list_modules(kind: str):
    """List the modules of a kind."""
    info = kind_or_error(kind)
    rows = db.session.scalars(db.select(info.model).order_by(info.model.name)).all()
    return jsonify([domain.module_to_dict(info, m, _storage()) for m in rows])


@bp.post("/modules/<kind>")
@token_required
def create_module(kind: str):
    """Create a module from a JSON object of its fields."""
    info = kind_or_error(kind)
    module = domain.create_module(info, json_object())
    db.session.commit()
    return jsonify(domain.module_to_dict(info, module, _storage())), 201


@bp.get("/modules/<kind>/<int:module_id>")
@token_required
def get_module(kind: str, module_id: int):
    """Return one module."""
    info = kind_or_error(kind)
    return jsonify(domain.module_to_dict(info, _module(info, module_id), _storage()))


@bp.patch("/modules/<kind>/<int:module_id>")
@token_required
def patch_module(kind: str, module_id: int):
    """Change some fields of a module (all or nothing)."""
    info = kind_or_error(kind)
    module = _module(info, module_id)
    body = json_object()
    for key in ("id", "kind", "files"):
        body.pop(key, None)
    domain.update_module(info, module, body)
    db.session.commit()
    return jsonify(domain.module_to_dict(info, module, _storage()))


@bp.delete("/modules/<kind>/<int:module_id>")
@token_required
def delete_module(kind: str, module_id: int):
    """Delete a module, its assignments and its files."""
    info = kind_or_error(kind)
    domain.delete_module(info, _module(info, module_id), _storage())
    db.session.commit()
    return "", 204


@bp.post("/modules/filecopies/<int:module_id>/files")
@token_required
def upload_files(module_id: int):
    """Add files to a file-copy module (multipart field `files`; all or nothing)."""
    info = KINDS["filecopies"]
    module = _module(info, module_id)
    uploads = [(f.filename or "", f.stream) for f in request.files.getlist("files")
               if f.filename]
    try:
        stored = files.save_uploads(_storage(), module.id, uploads)
    except files.UploadError as exc:
        return api_error(422, f"nothing was uploaded: {exc}")
    record_history("module", module.id, "upload",
                   {"kind": info.slug, "name": module.name, "files": stored})
    db.session.commit()
    return jsonify(domain.module_to_dict(info, module, _storage())), 201


@bp.delete("/modules/filecopies/<int:module_id>/files/<path:relative>")
@token_required
def delete_file(module_id: int, relative: str):
    """Remove one stored file of a file-copy module."""
    info = KINDS["filecopies"]
    module = _module(info, module_id)
    try:
        files.delete_file(_storage(), module.id, relative)
    except files.UploadError as exc:
        return api_error(404, str(exc))
    record_history("module", module.id, "delete_file",
                   {"kind": info.slug, "name": module.name, "path": relative})
    db.session.commit()
    return "", 204
