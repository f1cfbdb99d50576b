"""Fixtures of the profile tests: images with a default profile, with and without a schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.extensions import db as _db
from app.models import History, Image, ImageProfile, default_profile_for

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def schema() -> dict:
    """A two-disk schema: GPT with ESP, ext4 root and LVM (home, swap); MBR with NTFS."""
    return json.loads((FIXTURES / "schema_two_disks.json").read_text())


def add_image(app, name: str, environment: str = "linux", schema: dict | None = None,
              image_type: str = "block") -> tuple[int, int]:
    """Create an image with its default profile; return (image id, profile id)."""
    with app.app_context():
        image = Image(name=name, environment=environment, image_type=image_type,
                      schema_json=json.dumps(schema) if schema else None)
        profile = default_profile_for(image_type, environment)
        image.profiles.append(profile)
        _db.session.add(image)
        _db.session.commit()
        return image.id, profile.id


@pytest.fixture
def linux_image(app):
    """A Linux-environment block image without a schema: (image id, default profile id)."""
    return add_image(app, "ubuntu")


@pytest.fixture
def schema_image(app, schema):
    """A Linux-environment image with the two-disk schema: (image id, profile id)."""
    return add_image(app, "workstation", schema=schema)


@pytest.fixture
def winpe_image(app):
    """A WinPE-environment file image: (image id, default profile id)."""
    return add_image(app, "win11", environment="winpe", image_type="file")


def load_profile(app, profile_id: int) -> dict:
    """Return a profile's stored values as plain data (read in a fresh context)."""
    with app.app_context():
        profile = _db.session.get(ImageProfile, profile_id)
        return None if profile is None else profile.to_dict()


def history_actions(app, image_id: int) -> list[str]:
    """Return the history actions recorded on an image, oldest first."""
    with app.app_context():
        rows = _db.session.scalars(
            _db.select(History).filter_by(object_type="image", object_id=image_id)
            .order_by(History.id)).all()
        return [row.action for row in rows]
