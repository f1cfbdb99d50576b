"""A server killed at any step of a swap comes back serving the old or the new copy."""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid

import pytest

from app.extensions import db
from app.models import ComServer, Image
from app.replication.remote import Peer, RemoteError
from tests.receive.helpers import call, open_upload, upload_server

STEPS = ("journal-written", "old-moved-aside", "new-moved-in", "old-removed", "finished")
SECRET = "crash-test-shared-secret"


@pytest.fixture
def crashing_server(tmp_path):
    """A server whose swap dies (SIGKILL) at the step written into its fault file."""
    instance, token = upload_server(tmp_path / "server")
    with instance.app.app_context():
        db.session.add(ComServer(display_name="sender", url="http://127.0.0.1:1",
                                 shared_secret=SECRET))
        db.session.commit()
    fault = tmp_path / "fault"
    os.environ["CASTOR_FAULT_FILE"] = str(fault)
    try:
        instance.start()
    finally:
        del os.environ["CASTOR_FAULT_FILE"]
    yield instance, token, fault
    instance.kill()


def _upload(instance, token: str, data: bytes) -> tuple[int, str]:
    upload_id = open_upload(instance, token)
    status, answer = call(instance, token, "PUT", f"/uploads/{upload_id}/files/hd0/p1.img",
                          data, {"Content-Type": "application/octet-stream"})
    assert status == 201, answer
    entry = {"path": "hd0/p1.img", "kind": "dd", "disk": 0, "partition": 1,
             "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    try:
        status, _ = call(instance, token, "POST", f"/uploads/{upload_id}/complete",
                         {"files": [entry]})
    except OSError:
        status = 0  # the server died answering
    return status, upload_id


def _restart_and_check(instance, token: str, name: str, data: bytes) -> dict:
    """Kill the whole server, start it again and check what the image serves."""
    instance.kill()
    instance.start()
    status, manifest = call(instance, token, "GET", f"/images/{name}/manifest")
    assert status == 200, manifest
    files = {e["path"]: e for e in manifest["files"]}
    assert files["hd0/p1.img"]["sha256"] == hashlib.sha256(data).hexdigest()
    store = instance.storage
    assert not list((store / "journal").glob("*.json"))
    assert not list((store / "images").glob(".*.old"))
    return manifest


@pytest.mark.parametrize("step", STEPS)
def test_upload_killed_at_each_swap_step_recovers(crashing_server, step):
    instance, token, fault = crashing_server
    old = secrets.token_bytes(200_000)
    status, _ = _upload(instance, token, old)
    assert status == 200
    with instance.app.app_context():
        db.session.scalar(db.select(Image).filter_by(name="lab")).protected = False
        db.session.commit()
    new = secrets.token_bytes(300_000)
    fault.write_text(step)
    status, upload_id = _upload(instance, token, new)
    assert status == 0 and not fault.exists()  # the fault fired
    manifest = _restart_and_check(instance, token, "lab", new)
    assert manifest["upload_id"] == upload_id  # verified before the swap: rolled forward
    assert not list((instance.storage / "staging").iterdir())
    with instance.app.app_context():
        image = db.session.scalar(db.select(Image).filter_by(name="lab"))
        assert image.last_upload_id == upload_id and image.protected
        db.session.remove()


def _replicate(peer: Peer, name: str, data: bytes) -> dict:
    sha = hashlib.sha256(data).hexdigest()
    peer.put_chunk(name, "hd0/p1.img", 0, len(data), sha, data)
    manifest = {"format": "castor-manifest", "version": 1, "image": name,
                "upload_id": uuid.uuid4().hex, "image_type": "block",
                "files": [{"path": "hd0/p1.img", "kind": "dd", "size_bytes": len(data),
                           "sha256": sha}]}
    peer.commit(name, manifest, [])
    return manifest


@pytest.mark.parametrize("step", STEPS)
def test_replication_killed_at_each_swap_step_recovers(crashing_server, step):
    instance, token, fault = crashing_server
    peer = Peer(instance.url, SECRET, "sender", timeout=20)
    old = secrets.token_bytes(100_000)
    _replicate(peer, "rep", old)
    new = secrets.token_bytes(150_000)
    fault.write_text(step)
    with pytest.raises(RemoteError, match="unreachable"):
        _replicate(peer, "rep", new)
    peer.close()
    assert not fault.exists()
    _restart_and_check(instance, token, "rep", new)
    assert not (instance.storage / "incoming" / "rep").exists()
    with instance.app.app_context():
        assert db.session.scalar(db.select(Image).filter_by(name="rep")) is not None
        db.session.remove()
