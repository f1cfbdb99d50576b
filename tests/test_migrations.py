"""The migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from app.extensions import db
from tests.conftest import make_app


def _diff_after_upgrade(app) -> list:
    with app.app_context():
        db.drop_all()
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn)
            return compare_metadata(context, db.metadata)


def test_sqlite_migrations_match_models(tmp_path):
    app = make_app(tmp_path)
    assert _diff_after_upgrade(app) == []


@pytest.mark.postgres
def test_postgres_migrations_match_models(pg_app):
    assert _diff_after_upgrade(pg_app) == []
