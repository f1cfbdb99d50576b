"""Com servers and global replication settings."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("servers", __name__, url_prefix="/servers")
