"""Castor instances on loopback ports, each with its own database, storage and queue."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from app import storage
from app.extensions import db
from app.models import ComServer, Image
from tests.conftest import make_app

ROOT = Path(__file__).resolve().parents[2]
TEST_OVERRIDES = {
    "REPLICATION_CHUNK_BYTES": 256 * 1024,
    "REPLICATION_RETRIES": 2,
    "REPLICATION_BACKOFF_SECONDS": 0.2,
    "REPLICATION_TIMEOUT": 10,
}


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Instance:
    """One Castor: an in-process app for setup and checks, and a server subprocess."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.app = make_app(folder, RQ_QUEUE=f"castor-repl-{uuid.uuid4().hex[:8]}",
                            **TEST_OVERRIDES)
        self.config = {key: value for key, value in self.app.config.items()
                       if key in ("SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "STORAGE_PATH",
                                  "BOOT_FILES_PATH", "TFTP_PATH", "REDIS_URL", "RQ_QUEUE",
                                  *TEST_OVERRIDES)}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        with self.app.app_context():
            db.session.add(ComServer(display_name=name, url=self.url, is_local=True))
            db.session.commit()

    @property
    def storage(self) -> Path:
        """Return this instance's storage folder."""
        return Path(self.config["STORAGE_PATH"])

    def start(self) -> None:
        """Start serving and wait until /healthz answers."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the server process without waiting for it."""
        env = dict(os.environ, CASTOR_INSTANCE_PATH=str(self.folder / "instance"))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.replication.serve", json.dumps(self.config),
             str(self.port)], cwd=ROOT, env=env, start_new_session=True)

    def wait_ready(self) -> None:
        """Wait until /healthz answers."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"instance {self.name} exited") from None
                time.sleep(0.1)
        raise RuntimeError(f"instance {self.name} did not start")

    def kill(self) -> None:
        """Kill the server process at once, mid-request if need be."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # the server and its worker
            self.process.wait(10)

    def add_peer(self, other: Instance, secret: str, **fields) -> int:
        """Add a com server row for another instance; return its id."""
        with self.app.app_context():
            row = ComServer(display_name=other.name, url=other.url, shared_secret=secret,
                            **fields)
            db.session.add(row)
            db.session.commit()
            return row.id

    def set_peer(self, server_id: int, **fields) -> None:
        """Change fields of a com server row."""
        with self.app.app_context():
            row = db.session.get(ComServer, server_id)
            for key, value in fields.items():
                setattr(row, key, value)
            db.session.commit()

    def image_folder(self, name: str) -> Path:
        """Return the folder of an image on this instance."""
        return storage.image_dir(self.storage, name)


def make_image(instance: Instance, name: str, sizes: list[int], mode: str = "all") -> int:
    """Write an image folder of random files with its manifest and add the image row."""
    folder = instance.image_folder(name)
    (folder / "hd0").mkdir(parents=True)
    entries = []
    for number, size in enumerate(sizes, start=1):
        relative = f"hd0/part{number}.ext4.partclone.zst"
        (folder / relative).write_bytes(secrets.token_bytes(size))
        entries.append({"path": relative, "kind": "partclone", "disk": 0,
                        "partition": number, "lv": None, "filesystem": "ext4",
                        "compression": "zstd", "level": 3, "size_bytes": size,
                        "sha256": storage.sha256_file(folder / relative)})
    (folder / "schema.json").write_text(json.dumps({"format": "castor-schema", "version": 1,
                                                    "image_type": "block", "disks": []}))
    storage.write_json_atomic(folder / storage.MANIFEST, {
        "format": "castor-manifest", "version": 1, "image": name,
        "upload_id": uuid.uuid4().hex, "image_type": "block",
        "created_at": "2026-11-25T21:40:00Z", "files": entries})
    with instance.app.app_context():
        image = Image(name=name, replication_mode=mode)
        db.session.add(image)
        db.session.commit()
        return image.id


def run_worker(instance: Instance) -> None:
    """Run the instance's queued jobs for real in an RQ SimpleWorker."""
    from jobs.worker import make_worker

    make_worker(instance.app, simple=True).work(burst=True)


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    """Three instances A (source), B and C (targets) paired with shared secrets."""
    base = tmp_path_factory.mktemp("trio")
    a, b, c = (Instance(name, base / name) for name in ("castor-a", "castor-b", "castor-c"))
    secret_b, secret_c = secrets.token_hex(16), secrets.token_hex(16)
    ids = {"b": a.add_peer(b, secret_b), "c": a.add_peer(c, secret_c)}
    b.add_peer(a, secret_b)
    c.add_peer(a, secret_c)
    for instance in (b, c):
        instance.launch()
    for instance in (b, c):
        instance.wait_ready()
    try:
        yield a, b, c, ids
    finally:
        for instance in (a, b, c):
            instance.kill()
            with instance.app.app_context():
                db.session.remove()
                db.engine.dispose()
