"""Per-MAC boot scripts for PXE (iPXE, pxelinux, GRUB)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("boot", __name__, url_prefix="/boot")
