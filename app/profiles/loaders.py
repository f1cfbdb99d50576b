"""Loaders that answer 404 for images and profiles that do not exist."""

from __future__ import annotations

from flask import abort

from app.extensions import db
from app.models import Image, ImageProfile


def image_or_404(image_id: int) -> Image:
    """Return the image or answer 404."""
    return db.get_or_404(Image, image_id)


def profile_or_404(image_id: int, profile_id: int) -> tuple[Image, ImageProfile]:
    """Return the image and one of its profiles, or answer 404."""
    image = image_or_404(image_id)
    profile = db.session.get(ImageProfile, profile_id)
    if profile is None or profile.image_id != image.id:
        abort(404)
    return image, profile
