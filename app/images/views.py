"""Image pages: search, new, general and delete. The other tabs are in app.images.tabs."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from werkzeug.exceptions import RequestEntityTooLarge

from app import htmx
from app.extensions import db
from app.images import rules, service
from app.images.forms import ConfirmForm, GeneralForm, NewImageForm
from app.images.loaders import image_or_404
from app.images.search import CATEGORY_MODES, LIMITS, SearchParams, parse_limit, search_images
from app.models import Category

bp = Blueprint("images", __name__, url_prefix="/images")

__all__ = ["bp", "image_or_404"]


@bp.app_context_processor
def _image_helpers() -> dict:
    """Give templates `has_endpoint(name)` so tab links appear once their feature exists."""

    def has_endpoint(endpoint: str) -> bool:
        return endpoint in current_app.view_functions

    return {"has_endpoint": has_endpoint, "type_labels": rules.TYPE_LABELS,
            "environment_labels": rules.ENVIRONMENT_LABELS,
            "types_by_environment": rules.TYPES_BY_ENVIRONMENT,
            "default_types": rules.DEFAULT_TYPES}


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge):
    """Explain an oversized form instead of a bare 413."""
    message = (f"The form was too large. The description is at most "
               f"{rules.DESCRIPTION_MAX:,} characters.")
    return render_template("images/too_large.html", message=message), 413


def _search_params() -> SearchParams:
    """Read the search form from the query string, falling back to defaults on junk."""
    args = request.args
    ids = [int(v) for v in args.getlist("category") if v.isdigit()]
    mode = args.get("mode", "any")
    try:
        limit = parse_limit(args.get("limit"))
    except ValueError:
        limit = 25
    return SearchParams(q=args.get("q", "").strip(), category_ids=ids,
                        mode=mode if mode in CATEGORY_MODES else "any", limit=limit)


@bp.get("/")
def search():
    """List images filtered by name, categories and limit (rows only for htmx)."""
    params = _search_params()
    result = search_images(params, rows_only=True)
    context = {
        "result": result, "params": params, "limits": LIMITS, "modes": CATEGORY_MODES,
        "limit_value": "all" if params.limit is None else str(params.limit),
        "form": ConfirmForm(),
    }
    if htmx.is_partial():
        return render_template("images/_rows.html", **context)
    categories = db.session.scalars(db.select(Category).order_by(Category.name)).all()
    return render_template("images/search.html", categories=categories, **context)


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Create an image placeholder with its default profile and folder."""
    form = NewImageForm()
    if form.validate_on_submit():
        try:
            image = service.create_image(
                current_app.config["STORAGE_PATH"], name=form.name.data,
                environment=form.environment.data, image_type=form.image_type.data,
                description=form.description.data or "", protected=form.protected.data,
                on_demand=form.on_demand.data,
            )
        except service.ImageError as exc:
            _field_error(form, exc)
        else:
            flash(f"Image {image.name} created.", "success")
            return redirect(url_for("images.general", image_id=image.id), 303)
    status = 400 if form.errors else 200
    return render_template("images/new.html", form=form), status


@bp.route("/<int:image_id>", methods=["GET", "POST"])
def general(image_id: int):
    """Show and update an image's general options; renaming moves its folder."""
    image = image_or_404(image_id)
    form = GeneralForm(image)
    if form.validate_on_submit():
        try:
            service.update_image(current_app.config["STORAGE_PATH"], image, form.changes())
        except service.ImageError as exc:
            _field_error(form, exc)
        else:
            flash(f"Image {image.name} updated.", "success")
            return redirect(url_for("images.general", image_id=image.id), 303)
    status = 400 if form.errors else 200
    return render_template("images/general.html", image=image, form=form,
                           delete_form=ConfirmForm(), active="general"), status


@bp.post("/<int:image_id>/delete")
def delete(image_id: int):
    """Delete one image; protected images are refused with a message."""
    image = image_or_404(image_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("The request was not valid: reload the page and try again.", "error")
        return redirect(url_for("images.general", image_id=image.id), 303)
    name = image.name
    try:
        service.delete_image(current_app.config["STORAGE_PATH"], image)
    except service.ImageError as exc:
        flash(exc.message, "error")
        return redirect(url_for("images.general", image_id=image_id), 303)
    flash(f"Image {name} deleted.", "success")
    return redirect(url_for("images.search"), 303)


@bp.post("/delete")
def bulk_delete():
    """Delete the selected images, skipping protected ones and saying which."""
    form = ConfirmForm()
    back = request.form.get("next", "")
    back = back if back.startswith("/images") else url_for("images.search")
    if not form.validate_on_submit():
        flash("The request was not valid: reload the page and try again.", "error")
        return redirect(back, 303)
    ids = [int(v) for v in request.form.getlist("image_ids") if v.isdigit()]
    if not ids:
        flash("No images selected.", "error")
        return redirect(back, 303)
    deleted, skipped = service.bulk_delete(current_app.config["STORAGE_PATH"], ids)
    if deleted:
        flash(f"Deleted {len(deleted)} image(s): {', '.join(deleted)}.", "success")
    if skipped:
        flash(f"Skipped protected image(s): {', '.join(skipped)}.", "error")
    return redirect(back, 303)


def _field_error(form: FlaskForm, exc: service.ImageError) -> None:
    """Show a refused workflow's message on the field it concerns."""
    field = {"type": "image_type"}.get(exc.field or "", exc.field or "")
    if field in form:
        form[field].errors = [*form[field].errors, exc.message]
    else:
        flash(exc.message, "error")
        form.form_errors.append(exc.message)


from app.images import tabs  # noqa: E402, F401  (registers the tab views on bp)
