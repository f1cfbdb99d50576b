"""Shared fixtures: an app on a fresh SQLite file, a signed-in client, an API token, RQ."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis

from app import create_app
from app.extensions import db as _db
from app.models import ApiToken, User

pytest_plugins = ("tests.browser",)  # the shared Chromium harness: live, page


REDIS_URL = os.environ.get("CASTOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_ADMIN_URL = os.environ.get("CASTOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def make_app(tmp_path: Path, **overrides):
    """Return a Castor app on its own database, storage and RQ queue, tables created."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'castor.db'}",
        "STORAGE_PATH": str(tmp_path / "storage"),
        "BOOT_FILES_PATH": str(tmp_path / "boot"),
        "TFTP_PATH": str(tmp_path / "tftp"),
        "REDIS_URL": REDIS_URL,
        "RQ_QUEUE": f"castor-test-{uuid.uuid4().hex[:8]}",
        "WTF_CSRF_ENABLED": False,
    }
    config.update(overrides)
    os.environ["CASTOR_INSTANCE_PATH"] = str(tmp_path / "instance")
    app = create_app(config)
    with app.app_context():
        _db.create_all()
    return app


@pytest.fixture
def app(tmp_path):
    """A Castor app on a fresh SQLite database."""
    app = make_app(tmp_path)
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def db(app):
    """The database, inside an app context."""
    with app.app_context():
        yield _db


def create_user(app, username: str = "admin", password: str = "correct horse",
                admin: bool = True) -> int:
    """Create a user and return its id."""
    with app.app_context():
        user = User(username=username, is_admin=admin)
        user.set_password(password)
        _db.session.add(user)
        _db.session.commit()
        return user.id


def sign_in(app, client, user_id: int) -> None:
    """Give a test client a real server-side session of the user, as signing in does."""
    import secrets

    from app.models import WebSession
    from app.models.base import utcnow
    from app.sessions import SID, hash_sid

    sid = secrets.token_urlsafe(32)
    with app.app_context():
        now = utcnow()
        lifetime = timedelta(hours=float(app.config["SESSION_LIFETIME_HOURS"]))
        _db.session.add(WebSession(sid_hash=hash_sid(sid), user_id=user_id, created_at=now,
                                   last_seen_at=now, expires_at=now + lifetime))
        _db.session.commit()
    with client.session_transaction() as session:
        session[SID] = sid


@pytest.fixture
def admin_user(app):
    """An admin account: admin / correct horse."""
    return create_user(app)


@pytest.fixture
def client(app, admin_user):
    """A test client signed in as the admin."""
    client = app.test_client()
    sign_in(app, client, admin_user)
    return client


@pytest.fixture
def anon_client(app):
    """A test client that is not signed in."""
    return app.test_client()


@pytest.fixture
def api_token(app, admin_user):
    """A clear-text API token of the admin."""
    with app.app_context():
        row, clear = ApiToken.issue(_db.session.get(User, admin_user), "tests")
        _db.session.add(row)
        _db.session.commit()
    return clear


@pytest.fixture
def api_headers(api_token):
    """Headers for an authenticated API call."""
    return {"Authorization": f"Bearer {api_token}"}


@pytest.fixture
def redis_conn():
    """The real local Redis (test database 15)."""
    conn = Redis.from_url(REDIS_URL)
    conn.ping()
    return conn


@pytest.fixture
def run_jobs(app):
    """Run queued jobs for real in an RQ SimpleWorker until the queue is empty."""
    from jobs.worker import make_worker

    def _run() -> None:
        make_worker(app, simple=True).work(burst=True)

    return _run


@pytest.fixture
def pg_app(tmp_path):
    """A Castor app on its own fresh PostgreSQL database on the local server."""
    import sqlalchemy as sa

    name = f"castor_test_{uuid.uuid4().hex[:10]}"
    admin_engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=url)
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin_engine.dispose()


IS_ROOT = os.geteuid() == 0
HAVE_TOOLS = all(shutil.which(t) for t in ("partclone.ext4", "sfdisk", "losetup"))


def loop_devices_work() -> bool:
    """Tell whether this machine lets us attach loop devices."""
    if not (IS_ROOT and HAVE_TOOLS):
        return False
    return subprocess.run(["losetup", "-f"], capture_output=True).returncode == 0


needs_root = pytest.mark.skipif(not loop_devices_work(),
                                reason="needs root, loop devices and the imaging tools")


@pytest.fixture
def tiny_store(tmp_path):
    """An 8 MiB ext4 filesystem mounted on a loop device as storage."""
    if not IS_ROOT or subprocess.run(["losetup", "-f"], capture_output=True).returncode:
        pytest.skip("needs root and a free loop device to build a tiny filesystem")
    image = tmp_path / "castor-transport-tiny.ext4"
    with open(image, "wb") as handle:
        handle.truncate(8 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    device = subprocess.run(["losetup", "-f", "--show", str(image)], check=True,
                            capture_output=True, text=True).stdout.strip()
    mount = tmp_path / "mnt"
    mount.mkdir()
    try:
        subprocess.run(["mount", device, str(mount)], check=True)
        try:
            yield mount
        finally:
            subprocess.run(["umount", str(mount)], check=True)
    finally:
        subprocess.run(["losetup", "-d", device], check=True)
