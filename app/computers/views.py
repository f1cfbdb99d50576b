"""Computers and computer groups."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("computers", __name__, url_prefix="/computers")
