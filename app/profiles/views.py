"""Image profile pages, one URL per tab."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("profiles", __name__, url_prefix="/images/<int:image_id>/profiles")
