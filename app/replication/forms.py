"""The image Replication tab's form, and the checkbox groups replication pages post."""

from __future__ import annotations

from flask import request
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

MODE_LABELS = {"global": "Global Default", "all": "All", "none": "None",
               "selective": "Selective"}


def checked_ids(name: str) -> list[int]:
    """Return the integer values of a group of checkboxes."""
    return [int(value) for value in request.form.getlist(name) if value.isdigit()]


class ImageReplicationForm(FlaskForm):
    """An image's replication mode; the Selective servers come as checkboxes."""

    mode = SelectField("Image Replication Mode", choices=[SelectChoice(value, label)
                                                         for value, label in MODE_LABELS.items()])
