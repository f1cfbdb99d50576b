"""Fixtures of the image tests: the service tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from app.extensions import db as _db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request):
    """The database inside an app context, once on SQLite and once on PostgreSQL."""
    app = request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
    with app.app_context():
        yield _db


@pytest.fixture
def storage(any_db):
    """The image store folder of the app under test."""
    from flask import current_app

    return current_app.config["STORAGE_PATH"]
