"""REST API: computers and tasks."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api_tasks", __name__, url_prefix="/api/v1")
