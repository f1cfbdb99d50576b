"""Image pages: search, new, general, schema, history, categories, replication."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("images", __name__, url_prefix="/images")


@bp.get("/")
def search():
    """List images (replaced by the full search page)."""
    return "images"
