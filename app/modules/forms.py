"""Forms of the module pages; the rules live in app.modules.domain."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from app.modules.domain import ModuleError


class ScriptForm(FlaskForm):
    """A bash script module."""

    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    description = TextAreaField("Description", validators=[Length(max=2000)])
    contents = TextAreaField("Script (bash)")


class SysprepForm(FlaskForm):
    """A replacement of the text between two tags of unattend.xml."""

    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    description = TextAreaField("Description", validators=[Length(max=2000)])
    opening_tag = StringField("Opening Tag", validators=[DataRequired(), Length(max=256)])
    closing_tag = StringField("Closing Tag", validators=[DataRequired(), Length(max=256)])
    contents = TextAreaField("Contents")


class FileCopyForm(FlaskForm):
    """Files or folders copied into a deployed partition."""

    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    description = TextAreaField("Description", validators=[Length(max=2000)])
    destination_folder = StringField("Destination Folder", default="/",
                                     validators=[Length(max=256)])
    unzip = BooleanField("Unzip uploaded .zip archives at the destination")


KIND_FORMS = {"scripts": ScriptForm, "syspreps": SysprepForm, "filecopies": FileCopyForm}


def form_data(form: FlaskForm, fields: tuple[str, ...]) -> dict:
    """Return the module fields of a submitted form."""
    return {name: form[name].data if form[name].data is not None else "" for name in fields}


def attach_errors(form: FlaskForm, error: ModuleError) -> None:
    """Put domain errors on their form fields."""
    for name, message in error.errors.items():
        if name in form:
            form[name].errors = [*form[name].errors, message]
