"""REST API: images and categories."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api_images", __name__, url_prefix="/api/v1")
