"""Multicast sessions."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("multicast", __name__, url_prefix="/multicast")
