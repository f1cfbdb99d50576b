"""Fixtures of the API tests: an app seeded with one of each object through the API."""

from __future__ import annotations

import pytest

from app.extensions import db as _db
from tests.api.seed import Seeded, seeded_app


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Seeded:
    """An app holding images (one uploaded), a profile, modules, a computer, group and task.

    Shared by a module's tests: they send refused input, which changes nothing.
    """
    seeded = seeded_app(tmp_path_factory.mktemp("seeded"))
    yield seeded
    with seeded.app.app_context():
        _db.session.remove()
        _db.engine.dispose()
