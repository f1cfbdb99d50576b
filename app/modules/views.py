"""Script, sysprep and file-copy module pages."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("modules", __name__, url_prefix="/modules")
