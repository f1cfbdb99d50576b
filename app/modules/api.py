"""REST routes for modules (/api/v1/modules/<kind>), registered on the profiles API blueprint."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, current_app, jsonify, request

from app.api import api_error
from app.api.body import json_object
from app.errors import NotFound
from app.extensions import db
from app.models.images import record_history
from app.modules import domain, files
from app.modules.domain import KINDS, Kind


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


def list_modules(kind: str):
    """List the modules of a kind."""
    info = kind_or_error(kind)
    rows = db.session.scalars(db.select(info.model).order_by(info.model.name)).all()
    return jsonify([domain.module_to_dict(info, m, _storage()) for m in rows])


def create_module(kind: str):
    """Create a module from a JSON object of its fields."""
    info = kind_or_error(kind)
    module = domain.create_module(info, json_object())
    db.session.commit()
    return jsonify(domain.module_to_dict(info, module, _storage())), 201


def get_module(kind: str, module_id: int):
    """Return one module."""
    info = kind_or_error(kind)
    return jsonify(domain.module_to_dict(info, _module(info, module_id), _storage()))


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


def delete_module(kind: str, module_id: int):
    """Delete a module, its assignments and its files."""
    info = kind_or_error(kind)
    domain.delete_module(info, _module(info, module_id), _storage())
    db.session.commit()
    return "", 204


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


def register_module_routes(bp: Blueprint, guard: Callable) -> None:
    """Add the module routes to an API blueprint, each behind the `guard` decorator."""
    bp.add_url_rule("/modules/<kind>", view_func=guard(list_modules), methods=["GET"])
    bp.add_url_rule("/modules/<kind>", view_func=guard(create_module), methods=["POST"])
    bp.add_url_rule("/modules/<kind>/<int:module_id>", view_func=guard(get_module),
                    methods=["GET"])
    bp.add_url_rule("/modules/<kind>/<int:module_id>", view_func=guard(patch_module),
                    methods=["PATCH"])
    bp.add_url_rule("/modules/<kind>/<int:module_id>", view_func=guard(delete_module),
                    methods=["DELETE"])
    bp.add_url_rule("/modules/filecopies/<int:module_id>/files",
                    view_func=guard(upload_files), methods=["POST"])
    bp.add_url_rule("/modules/filecopies/<int:module_id>/files/<path:relative>",
                    view_func=guard(delete_file), methods=["DELETE"])
