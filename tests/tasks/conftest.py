"""Fixtures of the tasks tests: one app per module (emptied after each test), images, computers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.extensions import db as _db
from app.models import Computer, ComServer, Image, default_profile_for
from tests.conftest import make_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """A Castor app shared by a module's tests; building one per test costs about a second."""
    app = make_app(tmp_path_factory.mktemp("tasks"))
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture(autouse=True)
def _fresh_state(app):
    """Give every test empty tables, an empty TFTP folder and the original config."""
    config = dict(app.config)
    yield
    app.config.clear()
    app.config.update(config)
    with app.app_context():
        _db.session.remove()
        with _db.engine.begin() as conn:
            for table in reversed(_db.metadata.sorted_tables):
                conn.execute(table.delete())
    for key in ("TFTP_PATH", "BOOT_FILES_PATH"):
        shutil.rmtree(Path(app.config[key]), ignore_errors=True)


def add_image(name: str = "win11", *, protected: bool = False, enabled: bool = True) -> Image:
    """Add an image with its default profile (the caller's app context)."""
    image = Image(name=name, environment="linux", image_type="block", protected=protected,
                  enabled=enabled)
    image.profiles.append(default_profile_for("block", "linux"))
    _db.session.add(image)
    _db.session.flush()
    return image


def add_computer(name: str = "pc-1", mac: str = "aa:bb:cc:dd:ee:01",
                 image: Image | None = None) -> Computer:
    """Add a computer, optionally with an image assigned."""
    computer = Computer(name=name, mac=mac, image=image)
    _db.session.add(computer)
    _db.session.flush()
    return computer


def lab_computer(app) -> tuple[int, int, int]:
    """Commit an image 'lab' and a computer 'pc-1' assigned to it; return their ids."""
    with app.app_context():
        image = add_image("lab")
        computer = add_computer("pc-1", "aa:bb:cc:dd:ee:01", image)
        _db.session.commit()
        return image.id, image.profiles[0].id, computer.id


def set_max_clients(limit: int) -> ComServer:
    """Make the local com server allow `limit` imaging clients at once."""
    server = ComServer(display_name="local", url="http://127.0.0.1:5000", is_local=True,
                       max_imaging_clients=limit)
    _db.session.add(server)
    _db.session.flush()
    return server


@pytest.fixture
def image(db):
    """An enabled, unprotected image with its default profile."""
    return add_image()


@pytest.fixture
def computer(db, image):
    """A computer with a MAC and the image assigned."""
    return add_computer(image=image)
