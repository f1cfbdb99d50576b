"""REST API: image profiles and modules."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api_profiles", __name__, url_prefix="/api/v1")
