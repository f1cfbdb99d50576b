"""Script, sysprep and file-copy module pages."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from app import htmx
from app.confirm import confirmation_page
from app.extensions import db
from app.models.images import record_history
from app.modules import domain, files
from app.modules.domain import KINDS, Kind, ModuleError
from app.modules.forms import KIND_FORMS, attach_errors, form_data

bp = Blueprint("modules", __name__, url_prefix="/modules")


def kind_or_404(kind: str) -> Kind:
    """Return a module kind by its URL slug, or answer 404."""
    if kind not in KINDS:
        abort(404)
    return KINDS[kind]


def module_or_404(kind: Kind, module_id: int):
    """Return a module of a kind, or answer 404."""
    return db.get_or_404(kind.model, module_id)


def _storage() -> str:
    """Return the storage root holding module files."""
    return current_app.config["STORAGE_PATH"]


@bp.get("/")
def index():
    """Show the three module kinds with how many modules each has."""
    counts = {slug: db.session.scalar(db.select(db.func.count()).select_from(kind.model))
              for slug, kind in KINDS.items()}
    return render_template("modules/index.html", kinds=KINDS, counts=counts)


@bp.get("/<kind>/")
def kind_index(kind: str):
    """List the modules of one kind, filtered by name."""
    info = kind_or_404(kind)
    query = db.select(info.model).order_by(info.model.name)
    search = request.args.get("q", "").strip()
    if search:
        query = query.where(info.model.name.ilike(f"%{search}%"))
    modules = db.session.scalars(query).all()
    template = "modules/_rows.html" if htmx.is_partial() else "modules/list.html"
    return render_template(template, kind=info, modules=modules, search=search)


@bp.route("/<kind>/new", methods=["GET", "POST"])
def new(kind: str):
    """Create a module."""
    info = kind_or_404(kind)
    form = KIND_FORMS[kind]()
    if form.validate_on_submit():
        try:
            module = domain.create_module(info, form_data(form, info.fields))
        except ModuleError as exc:
            db.session.rollback()
            attach_errors(form, exc)
        else:
            db.session.commit()
            flash(f"{info.label} module {module.name} created.", "success")
            return redirect(url_for(".edit", kind=kind, module_id=module.id), 303)
    status = 422 if form.errors else 200
    return render_template("modules/edit.html", kind=info, form=form, module=None), status


@bp.route("/<kind>/<int:module_id>", methods=["GET", "POST"])
def edit(kind: str, module_id: int):
    """Show and update a module."""
    info = kind_or_404(kind)
    module = module_or_404(info, module_id)
    form = KIND_FORMS[kind](obj=module)
    if form.validate_on_submit():
        try:
            domain.update_module(info, module, form_data(form, info.fields))
        except ModuleError as exc:
            db.session.rollback()
            attach_errors(form, exc)
        else:
            db.session.commit()
            flash(f"{info.label} module {module.name} updated.", "success")
            return redirect(url_for(".edit", kind=kind, module_id=module.id), 303)
    module = module_or_404(info, module_id)
    stored = files.list_files(_storage(), module.id) if kind == "filecopies" else []
    status = 422 if form.errors else 200
    return render_template("modules/edit.html", kind=info, form=form, module=module,
                           files=stored, used_by=domain.profiles_using(info, module.id)), status


@bp.post("/<kind>/<int:module_id>/delete")
def delete(kind: str, module_id: int):
    """Delete a module and its assignments to profiles."""
    info = kind_or_404(kind)
    module = module_or_404(info, module_id)
    name = module.name
    page = confirmation_page(
        f"Delete {info.label.lower()} module {name}?",
        f"{info.label} module {name} is deleted and removed from every profile"
        + (", with its stored files." if info.slug == "filecopies" else "."),
        back=url_for(".edit", kind=kind, module_id=module.id))
    if page is not None:
        return page
    domain.delete_module(info, module, _storage())
    db.session.commit()
    flash(f"{info.label} module {name} deleted.", "success")
    return redirect(url_for(".kind_index", kind=kind), 303)


@bp.post("/filecopies/<int:module_id>/files")
def upload(module_id: int):
    """Store uploaded files or a folder in a file-copy module (all or nothing)."""
    info = KINDS["filecopies"]
    module = module_or_404(info, module_id)
    uploads = [(f.filename or "", f.stream) for f in request.files.getlist("files")
               if f.filename]
    try:
        stored = files.save_uploads(_storage(), module.id, uploads)
    except files.UploadError as exc:
        flash(f"Nothing was uploaded: {exc}", "error")
    else:
        record_history("module", module.id, "upload",
                       {"kind": info.slug, "name": module.name, "files": stored})
        db.session.commit()
        flash(f"{len(stored)} file(s) uploaded.", "success")
    return redirect(url_for(".edit", kind="filecopies", module_id=module.id), 303)


@bp.post("/filecopies/<int:module_id>/files/delete")
def delete_file(module_id: int):
    """Remove one stored file of a file-copy module."""
    info = KINDS["filecopies"]
    module = module_or_404(info, module_id)
    path = request.form.get("path", "")
    back = url_for(".edit", kind="filecopies", module_id=module.id)
    if path not in {stored["path"] for stored in files.list_files(_storage(), module.id)}:
        flash(f"{path} is not a file of this module.", "error")
        return redirect(back, 303)
    page = confirmation_page(f"Remove {path}?",
                             f"{path} is removed from file copy module {module.name} for good.",
                             back=back, button="Remove")
    if page is not None:
        return page
    try:
        files.delete_file(_storage(), module.id, path)
    except files.UploadError as exc:
        flash(str(exc), "error")
    else:
        record_history("module", module.id, "delete_file",
                       {"kind": info.slug, "name": module.name, "path": path})
        db.session.commit()
        flash(f"{path} removed.", "success")
    return redirect(back, 303)
