"""Com servers, global replication settings and the image Replication tab."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("servers", __name__)
