"""Image tabs besides General: Categories, Schema (with raw download) and History."""

from __future__ import annotations

import json

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for

from app.extensions import db
from app.images import history as image_history
from app.images import service
from app.images.blueprint import bp
from app.images.forms import ConfirmForm
from app.images.loaders import image_or_404
from app.images.schema_view import describe_disk
from app.models import Category, History

HISTORY_PAGE = 50


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
                                   all_categories=all_categories,
                                   active="categories"), exc.status
        flash("Categories updated.", "success")
        return redirect(url_for("images.categories", image_id=image.id), 303)
    return render_template("images/categories.html", image=image, form=form,
                           all_categories=all_categories,
                           active="categories")


@bp.get("/<int:image_id>/schema")
def schema(image_id: int):
    """Show the uploaded schema as one table per disk (read-only)."""
    image = image_or_404(image_id)
    data = image.schema
    disks = [describe_disk(disk) for disk in data.get("disks", [])] if data else []
    return render_template("images/schema.html", image=image, schema=data, disks=disks,
                           active="schema")


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
    """List the image's audit events newest first, with what changed, by action, paged."""
    image = image_or_404(image_id)
    action = request.args.get("action") or ""
    page = request.args.get("page") or "1"
    if not page.isdigit() or int(page) < 1:
        abort(400, description=f"page={page!r}: the page is a positive number.")
    page_number = int(page)
    # Ids can be reused after a delete: older events belong to the old image.
    mine = (History.object_type == "image", History.object_id == image.id,
            History.created_at >= image.created_at)
    everything = db.session.scalars(db.select(History).where(*mine)
                                    .order_by(History.created_at, History.id)).all()
    diffs = dict(zip([row.id for row in everything],
                     image_history.with_changes([row.data for row in everything]), strict=True))
    chosen = [row for row in reversed(everything) if not action or row.action == action]
    start = (page_number - 1) * HISTORY_PAGE
    rows = chosen[start:start + HISTORY_PAGE]
    actions = sorted({row.action for row in everything})
    return render_template("images/history.html", image=image, rows=rows, diffs=diffs,
                           limit=HISTORY_PAGE, active="history",
                           actions=actions, action=action, page=page_number,
                           pages=max(1, -(-len(chosen) // HISTORY_PAGE)),
                           action_name=image_history.action_name, total=len(chosen))
