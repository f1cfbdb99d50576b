"""Secrets at rest: private instance files, credentials hashed only, peer secrets encrypted."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from app import vault
from app.extensions import db as _db
from app.models import ApiToken, ComServer, User
from app.tasks.service import create_task
from tests.conftest import create_user, make_app, sign_in
from tests.tasks.conftest import add_computer, add_image

PEER_SECRET = "peer-secret-0123456789-abcdefghijkl"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _raw(app) -> bytes:
    """Every byte SQLite keeps for the database: the file and any journal or WAL."""
    database = vault.sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()
    return b"".join(Path(f"{database}{end}").read_bytes()
                    for end in ("", "-wal", "-journal") if Path(f"{database}{end}").exists())


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_instance_files_and_storage_folders_are_private(tmp_path, loose_umask):
    app = make_app(tmp_path)
    instance = Path(app.instance_path)
    with app.test_request_context():
        vault.app_key()
    assert _mode(instance) == 0o700
    for name in ("secret_key", "vault_key"):
        assert _mode(instance / name) == 0o600, name
    assert _mode(tmp_path / "castor.db") == 0o600
    storage = Path(app.config["STORAGE_PATH"])
    assert _mode(storage) == 0o700
    for name in vault.STORAGE_FOLDERS:
        assert _mode(storage / name) == 0o700, name


def test_an_existing_installation_is_tightened(tmp_path, loose_umask):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    (instance / "secret_key").write_text("0" * 64)
    (tmp_path / "castor.db").write_bytes(b"")
    storage = tmp_path / "storage"
    (storage / "images").mkdir(parents=True)
    for path in (instance / "secret_key", tmp_path / "castor.db"):
        path.chmod(0o644)
    app = make_app(tmp_path)
    assert _mode(instance) == 0o700
    assert _mode(instance / "secret_key") == 0o600
    assert _mode(tmp_path / "castor.db") == 0o600
    assert _mode(storage / "images") == 0o700
    assert app.config["STORAGE_PATH"] == str(storage)


def test_the_sqlite_journal_takes_the_database_files_mode(tmp_path, loose_umask):
    app = make_app(tmp_path)
    with app.app_context():
        _db.session.execute(sa.text("PRAGMA journal_mode=WAL"))
        create_user(app)
        wal = Path(f"{tmp_path / 'castor.db'}-wal")
        assert wal.exists() and _mode(wal) == 0o600


def test_no_credential_is_stored_in_clear(app, admin_user):
    clear = {}
    with app.app_context():
        row, clear["api token"] = ApiToken.issue(_db.session.get(User, admin_user), "t")
        _db.session.add(row)
        computer = add_computer("pc-1", "aa:bb:cc:dd:ee:01", add_image("gold"))
        _task, clear["boot ticket"] = create_task("deploy", computer)
        _db.session.commit()
    answer = app.test_client().post("/api/v1/client/checkin",
                                    json={"ticket": clear["boot ticket"],
                                          "mac": "aa:bb:cc:dd:ee:01"})
    clear["task token"] = answer.get_json()["token"]
    browser = app.test_client()
    browser.post("/login", data={"username": "admin", "password": "correct horse"})
    with browser.session_transaction() as session:
        clear["session id"] = session["sid"]
    clear["password"] = "correct horse"
    assert all(clear.values()), clear
    raw = _raw(app)
    stored = [what for what, value in clear.items() if value.encode() in raw]
    assert stored == []


def test_a_peer_secret_never_reaches_the_database_file_in_clear(app, client):
    answer = client.post("/servers/new", data={
        "display_name": "peer-1", "url": "https://peer-1.example:5000",
        "shared_secret": PEER_SECRET, "multicast_interface": "eth0",
        "multicast_port_start": 9000, "multicast_port_end": 9998, "max_imaging_clients": 0,
        "max_bandwidth_kbps": 0, "role_imaging": "y"})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    with app.app_context():
        server = _db.session.scalar(sa.select(ComServer).filter_by(display_name="peer-1"))
        assert server.shared_secret == PEER_SECRET  # the app reads it back in clear
        stored = _db.session.execute(sa.text("SELECT shared_secret FROM com_server")).scalar()
    assert stored.startswith("v1:") and PEER_SECRET not in stored
    assert PEER_SECRET.encode() not in _raw(app)


def test_another_key_cannot_open_a_secret(tmp_path):
    key, other = os.urandom(32), os.urandom(32)
    sealed = vault.encrypt(PEER_SECRET, key)
    assert vault.decrypt(sealed, key) == PEER_SECRET
    assert vault.encrypt(PEER_SECRET, key) != sealed  # a fresh nonce every time
    with pytest.raises(vault.VaultError):
        vault.decrypt(sealed, other)
    bad = tmp_path / "vault_key"
    bad.write_text("not a key")
    with pytest.raises(vault.VaultError):
        vault.load_key(bad)


def test_two_processes_starting_at_once_agree_on_one_key(tmp_path):
    path = tmp_path / "vault_key"
    assert vault.write_private(path, b"first") is True
    assert vault.write_private(path, b"second") is False
    assert path.read_bytes() == b"first" and _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["vault_key"]


def test_the_migration_encrypts_existing_secrets(tmp_path):
    app = make_app(tmp_path)
    with app.app_context():
        _db.drop_all()
        upgrade(revision="8e3b5f7a2c19")
        _db.session.execute(sa.text(
            "INSERT INTO com_server (display_name, url, shared_secret, role_imaging, "
            "role_multicast, role_pxe, storage_path, max_imaging_clients, max_bandwidth_kbps, "
            "multicast_interface, multicast_port_start, multicast_port_end, replicate_storage, "
            "is_local, created_at) VALUES ('old-peer', 'http://old:5000', :secret, 1, 1, 1, "
            "'', 0, 0, 'eth0', 9000, 9998, 1, 0, '2026-01-01 00:00:00')"),
            {"secret": PEER_SECRET})
        _db.session.commit()
    assert PEER_SECRET.encode() in _raw(app)  # the check below can see a clear secret
    with app.app_context():
        upgrade()
    assert PEER_SECRET.encode() not in _raw(app)
    with app.app_context():
        assert _db.session.scalar(sa.select(ComServer)).shared_secret == PEER_SECRET
        downgrade(revision="8e3b5f7a2c19")
        clear = _db.session.execute(sa.text("SELECT shared_secret FROM com_server")).scalar()
        assert clear == PEER_SECRET
        upgrade()


def test_sessions_of_a_signed_in_client_helper_are_real(app, admin_user):
    client = app.test_client()
    sign_in(app, client, admin_user)
    assert client.get("/images/").status_code == 200
