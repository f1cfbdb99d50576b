"""Loaders other features import to fetch an image or answer 404."""

from __future__ import annotations

from flask import abort

from app.extensions import db
from app.models import Image


def image_or_404(image_id: int) -> Image:
    """Return the image with this id, or abort with 404."""
    image = db.session.get(Image, image_id)
    if image is None:
        abort(404, description=f"No image with id {image_id}.")
    return image
