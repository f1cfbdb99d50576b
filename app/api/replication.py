"""Server-to-server replication API (signed requests)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api_replication", __name__, url_prefix="/api/v1/replication")
