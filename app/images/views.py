"""Image pages: search, new, General and delete (the other tabs: app.images.tabs)."""

from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm

from app import htmx
from app.confirm import confirmation_page
from app.extensions import db
from app.images import progress, rules, service, tabs  # noqa: F401  (routes on bp)
from app.images.blueprint import bp
from app.images.forms import ConfirmForm, GeneralForm, NewImageForm
from app.images.loaders import image_or_404
from app.images.search import (
    CATEGORY_MODES,
    LIMITS,
    SearchParams,
    category_names,
    parse_params,
    profile_counts,
    search_images,
)
from app.models import Category, Image
from app.replication.propagation import Propagation


def _search_params(categories: list[Category]) -> SearchParams:
    """Read the search form from the query string; a bad parameter is a 400 that says why."""
    try:
        params = parse_params(request.args)
    except ValueError as exc:
        abort(400, description=f"The search was not understood: {exc}")
    unknown = set(params.category_ids) - {category.id for category in categories}
    if unknown:
        abort(400, description="The search was not understood: no category has the number "
                               f"{', '.join(str(i) for i in sorted(unknown))}.")
    return params


def _search_url(**changes: str | int | None) -> str:
    """The search URL with the current parameters, some changed (None removes one)."""
    args = request.args.to_dict(flat=False)
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = [str(value)]
    return url_for("images.search", **args)


@bp.get("/")
def search():
    """List images filtered, sorted and paged (rows only for htmx)."""
    categories = db.session.scalars(db.select(Category).order_by(Category.name)).all()
    params = _search_params(categories)
    result = search_images(params, rows_only=True)
    ids = [image.id for image in result.images]
    context = {
        "result": result, "params": params, "limits": LIMITS, "modes": CATEGORY_MODES,
        "limit_value": "all" if params.limit is None else str(params.limit),
        "form": ConfirmForm(), "profile_counts": profile_counts(ids),
        "category_names": category_names(ids), "filtered": bool(params.q or params.category_ids),
        "first": (params.page - 1) * (params.limit or 0) + 1, "search_url": _search_url,
    }
    if htmx.is_partial():
        return render_template("images/_rows.html", partial=True, **context)
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
            sent = service.update_image(current_app.config["STORAGE_PATH"], image,
                                        form.changes())
        except service.ImageError as exc:
            _field_error(form, exc)
        else:
            flash(f"Image {image.name} updated.", "success")
            _flash_propagation(sent)
            return redirect(url_for("images.general", image_id=image.id), 303)
    status = 400 if form.errors else 200
    return render_template("images/general.html", image=image, form=form,
                           active="general"), status


@bp.post("/<int:image_id>/delete")
def delete(image_id: int):
    """Delete one image; protected images are refused with a message."""
    image = image_or_404(image_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("The request was not valid: reload the page and try again.", "error")
        return redirect(url_for("images.general", image_id=image.id), 303)
    if image.protected:
        flash(f"{image.name} is protected: unprotect it before deleting it.", "error")
        return redirect(url_for("images.general", image_id=image.id), 303)
    page = confirmation_page(f"Delete image {image.name}?",
                             f"Image {image.name}, its profiles and its files are deleted for "
                             "good.", back=url_for("images.general", image_id=image.id))
    if page is not None:
        return page
    name = image.name
    try:
        sent = service.delete_image(current_app.config["STORAGE_PATH"], image)
    except service.ImageError as exc:
        flash(exc.message, "error")
        return redirect(url_for("images.general", image_id=image_id), 303)
    flash(f"Image {name} deleted.", "success")
    _flash_propagation(sent)
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
    ids = {int(v) for v in request.form.getlist("image_ids") if v.isdigit()}
    chosen = db.session.scalars(db.select(Image).where(Image.id.in_(ids))
                                .order_by(Image.name)).all() if ids else []
    doomed = [image.name for image in chosen if not image.protected]
    protected = [image.name for image in chosen if image.protected]
    if not doomed:
        flash(f"Nothing deleted: {', '.join(protected)} "
              f"{'is' if len(protected) == 1 else 'are'} protected." if protected
              else "Nothing deleted: no images were selected; tick the images to delete first.",
              "error")
        return redirect(back, 303)
    count = f"{len(doomed)} image{'' if len(doomed) == 1 else 's'}"
    page = confirmation_page(
        f"Delete {count}?",
        "These images, their profiles and their files are deleted for good"
        + (f" (skipped, being protected: {', '.join(protected)})" if protected else "") + ":",
        back=back, items=doomed)
    if page is not None:
        return page
    deleted, skipped, sent = service.bulk_delete(current_app.config["STORAGE_PATH"], ids)
    if deleted:
        flash(f"Deleted {len(deleted)} image(s): {', '.join(deleted)}.", "success")
        _flash_propagation(sent)
    if skipped:
        flash(f"Skipped protected image(s): {', '.join(skipped)}.", "error")
    return redirect(back, 303)


def _flash_propagation(sent: Propagation) -> None:
    """Say on which other servers a delete or rename was queued, or why it was not."""
    for message, category in sent.notices():
        flash(message, category)


def _field_error(form: FlaskForm, exc: service.ImageError) -> None:
    """Show a refused workflow's message on the field it concerns."""
    field = {"type": "image_type"}.get(exc.field or "", exc.field or "")
    if field in form:
        form[field].errors = [*form[field].errors, exc.message]
    else:
        flash(exc.message, "error")
        form.form_errors.append(exc.message)

