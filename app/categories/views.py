"""Global properties → Categories: the tags images carry."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import ValidationError

from app.categories.domain import (
    create_category,
    delete_category,
    image_counts,
    update_category,
)
from app.confirm import confirmation_page
from app.extensions import db
from app.images import rules
from app.images.forms import ConfirmForm
from app.images.service import ImageError
from app.models import Category

bp = Blueprint("categories", __name__, url_prefix="/categories")


class CategoryForm(FlaskForm):
    """Name and description of a category."""

    name = StringField("Name")
    description = TextAreaField("Description")

    def validate_name(self, field: StringField) -> None:
        """Check the name's characters and length."""
        problem = rules.category_name_problem(field.data)
        if problem:
            raise ValidationError(problem)

    def validate_description(self, field: TextAreaField) -> None:
        """Check the description's length."""
        problem = rules.description_problem(field.data)
        if problem:
            raise ValidationError(problem)


def _category_or_404(category_id: int) -> Category:
    """Return the category or abort with 404."""
    category = db.session.get(Category, category_id)
    if category is None:
        abort(404)
    return category


def _render_index(form: CategoryForm, status: int = 200):
    """Render the list with the create form."""
    categories = db.session.scalars(db.select(Category).order_by(Category.name)).all()
    return render_template("categories/index.html", categories=categories, form=form,
                           counts=image_counts(), delete_form=ConfirmForm()), status


@bp.route("/", methods=["GET", "POST"])
def index():
    """List categories and create new ones."""
    form = CategoryForm()
    if form.validate_on_submit():
        try:
            category = create_category(form.name.data, form.description.data or "")
        except ImageError as exc:
            form.name.errors = [*form.name.errors, exc.message]
        else:
            flash(f"Category {category.name} created.", "success")
            return redirect(url_for("categories.index"), 303)
    return _render_index(form, 400 if form.errors else 200)


@bp.route("/<int:category_id>", methods=["GET", "POST"])
def edit(category_id: int):
    """Rename a category or change its description."""
    category = _category_or_404(category_id)
    form = CategoryForm(obj=category)
    if form.validate_on_submit():
        try:
            update_category(category, form.name.data, form.description.data or "")
        except ImageError as exc:
            db.session.rollback()
            form.name.errors = [*form.name.errors, exc.message]
        else:
            flash(f"Category {category.name} updated.", "success")
            return redirect(url_for("categories.index"), 303)
    return render_template("categories/edit.html", category=category, form=form,
                           delete_form=ConfirmForm()), 400 if form.errors else 200


@bp.post("/<int:category_id>/delete")
def delete(category_id: int):
    """Delete a category; the images that carried it keep everything else."""
    category = _category_or_404(category_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name = category.name
    page = confirmation_page(f"Delete category {name}?",
                             f"Category {name} is deleted; the images that carry it keep "
                             "everything else.", back=url_for("categories.edit",
                                                              category_id=category.id))
    if page is not None:
        return page
    delete_category(category)
    flash(f"Category {name} deleted.", "success")
    return redirect(url_for("categories.index"), 303)
