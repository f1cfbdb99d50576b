"""The computers blueprint: computers live in app.computers.views, groups in .groups."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("computers", __name__, url_prefix="/computers")
