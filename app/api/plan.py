"""REST API: partition plans."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api_plan", __name__, url_prefix="/api/v1")
