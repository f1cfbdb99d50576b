"""Image tabs besides General: Categories, Schema (with raw download) and History."""

from __future__ import annotations

import json

from flask import Response, current_app, flash, redirect, render_template, request, url_for

from app.extensions import db
from app.images import service
from app.images.forms import ConfirmForm
from app.images.loaders import image_or_404
from app.images.schema_view import describe_disk
from app.images.views import bp
from app.models import Category, History

HISTORY_PAGE = 200


@bp.route("/<int:image_id>/categories", methods=["GET", "POST"])
def categories(image_id: int):
    """Show and set the categories an image carries."""
    image = image_or_404(image_id)
    form = ConfirmForm()
    all_categories = db.session.scalars(db.select(Category).order_by(Category.name)).all()
    if form.validate_on_submit():
        ids = [int(v) for v in request.form.getlist("category_ids") if v.isdigit()]
        try:
            chosen = service.categories_by_ids(ids)
            service.update_image(current_app.config["STORAGE_PATH"], image,
                                 {"categories": chosen})
        except service.ImageError as exc:
            flash(exc.message, "error")
            return render_template("images/categories.html", image=image, form=form,
                                   all_categories=all_categories, delete_form=ConfirmForm(),
                                   active="categories"), exc.status
        flash("Categories updated.", "success")
        return redirect(url_for("images.categories", image_id=image.id), 303)
    return render_template("images/categories.html", image=image, form=form,
                           all_categories=all_categories, delete_form=ConfirmForm(),
                           active="categories")


@bp.get("/<int:image_id>/schema")
def schema(image_id: int):
    """Show the uploaded schema as one table per disk (read-only)."""
    image = image_or_404(image_id)
    data = image.schema
    disks = [describe_disk(disk) for disk in data.get("disks", [])] if data else []
    return render_template("images/schema.html", image=image, schema=data, disks=disks,
                           delete_form=ConfirmForm(), active="schema")


@bp.get("/<int:image_id>/schema.json")
def schema_json(image_id: int):
    """Download the uploaded schema as JSON."""
    image = image_or_404(image_id)
    if not image.schema_json:
        return Response("No schema yet: upload the image first.\n", 404,
                        mimetype="text/plain")
    body = json.dumps(image.schema, indent=2, sort_keys=True) + "\n"
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="{image.name}-schema.json"'})


@bp.get("/<int:image_id>/history")
def history(image_id: int):
    """List the image's audit events, newest first."""
    image = image_or_404(image_id)
    rows = db.session.scalars(
        db.select(History)
        .where(History.object_type == "image", History.object_id == image.id,
               # Ids can be reused after a delete: older events belong to the old image.
               History.created_at >= image.created_at)
        .order_by(History.created_at.desc(), History.id.desc())
        .limit(HISTORY_PAGE)
    ).all()
    return render_template("images/history.html", image=image, rows=rows,
                           limit=HISTORY_PAGE, delete_form=ConfirmForm(), active="history")
