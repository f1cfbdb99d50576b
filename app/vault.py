"""Secrets at rest: peer secrets encrypted with a key outside the database, private files.

A com server's shared secret signs replication requests, so it must be kept in a form the
server can use again (it cannot be hashed like a token). It is stored AES-256-GCM encrypted
(`cryptography`'s AESGCM) as "v1:" + base64(nonce + ciphertext + tag), under a 32-byte key in
VAULT_KEY_FILE (default: `vault_key` in the instance folder, mode 0600). A copy of the
database alone, a backup or a dump, holds no usable peer secret; back the key file up apart.

The instance folder is 0700; the SQLite database, `secret_key` and the vault key are 0600;
the folders Castor keeps in STORAGE_PATH (images, staging, journal, incoming, modules) are
0700. TFTP_PATH and BOOT_FILES_PATH stay readable: dnsmasq serves them as its own user, and
they hold nothing secret (app/tickets.py).
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import stat
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, current_app
from sqlalchemy import String
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeDecorator

log = logging.getLogger("castor.vault")

PREFIX = "v1:"
AAD = b"castor vault v1"
KEY_BYTES = 32
PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700
STORAGE_FOLDERS = ("images", "staging", "journal", "incoming", "modules")

_keys: dict[str, bytes] = {}
_lock = threading.Lock()


class VaultError(Exception):
    """The vault key is missing, damaged, or not the one a secret was encrypted with."""


def write_private(path: Path, data: bytes) -> bool:
    """Create `path` with mode 0600 holding `data`, atomically; False when it already exists.

    The bytes go to a temporary file that is then linked into place, so a reader never
    sees a half-written file and two processes starting at once agree on one content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)


def make_private(path: Path, mode: int = PRIVATE_FILE) -> None:
    """Take group and other access away from an existing file or folder."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & 0o077:
        path.chmod(mode)


def load_key(path: Path) -> bytes:
    """Return the vault key at `path`, creating a random one on first use."""
    with _lock:
        cached = _keys.get(str(path))
        if cached is not None:
            return cached
        if not path.exists():
            write_private(path, base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
        make_private(path)
        try:
            key = base64.b64decode(path.read_bytes().strip(), validate=True)
        except ValueError as exc:
            raise VaultError(f"{path} is not a Castor vault key") from exc
        if len(key) != KEY_BYTES:
            raise VaultError(f"{path} is not a Castor vault key ({len(key)} bytes)")
        _keys[str(path)] = key
        return key


def app_key(app: Flask | None = None) -> bytes:
    """The vault key of an app (the current one by default)."""
    app = app or current_app
    return load_key(Path(app.config["VAULT_KEY_FILE"]))


def encrypt(clear: str, key: bytes) -> str:
    """Encrypt a secret for storage."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, clear.encode(), AAD)
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def decrypt(stored: str, key: bytes) -> str:
    """Decrypt a stored secret (raises VaultError with the wrong key or damaged text)."""
    raw = base64.b64decode(stored[len(PREFIX):])
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], AAD).decode()
    except InvalidTag as exc:
        raise VaultError("a stored secret does not open with this vault key: is "
                         "VAULT_KEY_FILE the key this database was written with?") from exc


def is_sealed(stored: str | None) -> bool:
    """Tell whether a stored value is an encrypted one."""
    return bool(stored) and stored.startswith(PREFIX)


class EncryptedString(TypeDecorator):
    """A text column whose non-empty values are stored encrypted with the vault key.

    "" stays "" (so "no secret" is visible); a value from before encryption (no "v1:"
    prefix, left by a database not yet migrated) reads back as it is.
    """

    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if not value:
            return value
        return encrypt(value, app_key())

    def process_result_value(self, value, dialect):
        if not is_sealed(value):
            return value
        return decrypt(value, app_key())


def sqlite_file(uri: str) -> Path | None:
    """The database file of a SQLite URI, None for anything else (or in memory)."""
    url = make_url(uri)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def secure_instance(app: Flask) -> None:
    """Make the instance folder, the database file and Castor's storage folders private."""
    instance = Path(app.instance_path)
    instance.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    make_private(instance, PRIVATE_DIR)
    for name in ("secret_key", "vault_key"):
        make_private(instance / name)
    make_private(Path(app.config["VAULT_KEY_FILE"]))
    database = sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    if database is not None:
        database.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        if not database.exists():
            # SQLite gives its journal and WAL files the database file's mode.
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
        for path in (database, *(Path(f"{database}{end}") for end in ("-wal", "-shm",
                                                                       "-journal"))):
            make_private(path)
    storage = Path(app.config["STORAGE_PATH"])
    if not storage.exists():
        storage.mkdir(mode=PRIVATE_DIR, parents=True)
    for name in STORAGE_FOLDERS:
        folder = storage / name
        folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        make_private(folder, PRIVATE_DIR)
