"""The imaging client's API."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api_client", __name__, url_prefix="/api/v1/client")
