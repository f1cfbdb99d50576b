"""The receiving side's API: signatures, replay, paths, verification, commit, disk full."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path

import pytest

from app import storage
from app.extensions import db as _db
from app.models import ComServer, Image
from app.replication.signing import sign_request
from tests.conftest import make_app

SECRET = "s3cret-shared"
MIB = 1 << 20
API = "/api/v1/replication"


@pytest.fixture
def receiver(app):
    """The app with a peer called 'sender' sharing SECRET."""
    with app.app_context():
        _db.session.add(ComServer(display_name="sender", url="http://sender:5000",
                                  shared_secret=SECRET))
        _db.session.commit()
    return app


def call(client, method: str, path: str, body: bytes = b"", secret: str = SECRET,
         headers: dict | None = None, now: float | None = None):
    """Send a signed request through the test client."""
    digest = hashlib.sha256(body).hexdigest()
    signed = headers or sign_request(secret, "sender", method, API + path, digest, now=now)
    return client.open(API + path, method=method, data=body, headers=signed)


def put(client, name: str, relative: str, data: bytes, offset: int = 0,
        size: int | None = None, sha: str | None = None):
    """PUT one chunk of a file."""
    size = len(data) if size is None else size
    sha = sha or hashlib.sha256(data).hexdigest()
    return call(client, "PUT", f"/images/{name}/files/{relative}?offset={offset}&size={size}"
                f"&sha256={sha}", data)


def commit(client, name: str, files: list[dict]):
    """POST a manifest listing files."""
    manifest = {"format": "castor-manifest", "version": 1, "image": name, "files": files}
    return call(client, "POST", f"/images/{name}/commit",
                json.dumps({"manifest": manifest, "extra_files": []}).encode())


def entry(path: str, data: bytes) -> dict:
    """A manifest entry for some bytes."""
    return {"path": path, "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "kind": "dd"}


def test_unsigned_wrong_secret_unknown_and_stale_are_refused(receiver):
    client = receiver.test_client()
    assert client.get(API + "/ping").status_code == 401
    response = call(client, "GET", "/ping", secret="wrong")
    assert response.status_code == 401 and "bad signature" in response.json["error"]
    response = call(client, "GET", "/ping", now=time.time() - 301)
    assert response.status_code == 401 and "stale" in response.json["error"]
    headers = sign_request(SECRET, "stranger", "GET", API + "/ping")
    response = client.get(API + "/ping", headers=headers)
    assert response.status_code == 401 and "unknown server" in response.json["error"]
    assert call(client, "GET", "/ping").json["peer"] == "sender"


def test_replayed_request_is_refused(receiver):
    client = receiver.test_client()
    headers = sign_request(SECRET, "sender", "GET", API + "/ping")
    assert client.get(API + "/ping", headers=headers).status_code == 200
    response = client.get(API + "/ping", headers=headers)
    assert response.status_code == 401 and "replayed" in response.json["error"]


def test_signature_covers_path_and_body(receiver):
    client = receiver.test_client()
    headers = sign_request(SECRET, "sender", "GET", API + "/images/a/manifest")
    assert client.get(API + "/images/b/manifest", headers=headers).status_code == 401
    body = json.dumps({"new_name": "x"}).encode()
    headers = sign_request(SECRET, "sender", "POST", API + "/images/a/rename",
                           hashlib.sha256(body).hexdigest())
    response = client.post(API + "/images/a/rename", data=b'{"new_name": "y"}', headers=headers)
    assert response.status_code == 400 and "signed hash" in response.json["error"]


def test_paths_leaving_the_image_folder_are_refused(receiver):
    client = receiver.test_client()
    for relative in ("../../escape.bin", "hd0/../../../escape.bin"):
        response = put(client, "img", relative, b"data")
        assert response.status_code == 400, relative
        assert "'..' segment" in response.json["error"]
    # Percent-encoded dots decode to '..' before the check (the signature is over the decoded path).
    sha = hashlib.sha256(b"data").hexdigest()
    query = f"?offset=0&size=4&sha256={sha}"
    headers = sign_request(SECRET, "sender", "PUT",
                           API + "/images/img/files/../escape.bin" + query, sha)
    response = client.put(API + "/images/img/files/%2e%2e/escape.bin" + query, data=b"data",
                          headers=headers)
    assert response.status_code == 400 and "'..' segment" in response.json["error"]
    response = commit(client, "img", [entry("../outside", b"x")])
    assert response.status_code in (400, 409)
    assert "'..' segment" in response.json["error"]
    assert call(client, "GET", "/images/..%2f..%2fetc/manifest").status_code in (400, 404)
    storage_root = Path(receiver.config["STORAGE_PATH"])
    assert not list(storage_root.parent.glob("escape.bin"))
    assert not list(storage_root.rglob("escape.bin"))


def test_file_is_verified_on_receipt_and_commit_writes_manifest_last(receiver):
    client = receiver.test_client()
    data = secrets.token_bytes(300_000)
    sha = hashlib.sha256(data).hexdigest()
    first = put(client, "img", "hd0/p1.img", data[:100_000], 0, len(data), sha)
    assert first.json == {"path": "hd0/p1.img", "received_bytes": 100_000, "complete": False}
    # A chunk at the wrong offset gets told where to resume.
    wrong = put(client, "img", "hd0/p1.img", data[150_000:], 150_000, len(data), sha)
    assert wrong.status_code == 409 and wrong.json["received_bytes"] == 100_000
    report = call(client, "GET", "/images/img/manifest").json
    assert report["manifest"] is None
    assert report["incoming"][0]["received_bytes"] == 100_000
    done = put(client, "img", "hd0/p1.img", data[100_000:], 100_000, len(data), sha)
    assert done.json["complete"] is True
    folder = storage.image_dir(receiver.config["STORAGE_PATH"], "img")
    assert not folder.exists()  # nothing counts until the commit
    response = commit(client, "img", [entry("hd0/p1.img", data)])
    assert response.status_code == 200, response.json
    assert storage.verify_folder(folder) == []
    with receiver.app_context():
        assert _db.session.scalar(_db.select(Image).filter_by(name="img")) is not None


def test_mismatched_file_is_discarded(receiver):
    client = receiver.test_client()
    data = secrets.token_bytes(5000)
    response = put(client, "img", "hd0/p1.img", data, sha="0" * 64)
    assert response.status_code == 422 and "SHA-256 mismatch" in response.json["error"]
    report = call(client, "GET", "/images/img/manifest").json
    assert report["incoming"] == []


def test_manifest_lying_about_a_size_is_refused_and_old_copy_kept(receiver):
    client = receiver.test_client()
    good = secrets.token_bytes(4000)
    assert put(client, "img", "a.bin", good).status_code == 200
    assert commit(client, "img", [entry("a.bin", good)]).status_code == 200
    folder = storage.image_dir(receiver.config["STORAGE_PATH"], "img")
    before = (folder / "manifest.json").read_bytes()

    new = secrets.token_bytes(4000)
    assert put(client, "img", "a.bin", new).status_code == 200
    lying = entry("a.bin", new) | {"size_bytes": 9000}
    response = commit(client, "img", [lying])
    assert response.status_code == 409
    assert "manifest says 9000" in response.json["error"]
    # More bytes than the declared size are refused at once.
    response = put(client, "img", "b.bin", new, size=100)
    assert response.status_code == 400 and "declared size" in response.json["error"]
    missing = commit(client, "img", [entry("a.bin", new), entry("never-sent.bin", b"zz")])
    assert missing.status_code == 409 and "never-sent.bin: missing" in missing.json["error"]
    assert (folder / "manifest.json").read_bytes() == before
    assert (folder / "a.bin").read_bytes() == good


def test_commit_links_unchanged_files_and_drops_removed_ones(receiver):
    client = receiver.test_client()
    keep, drop, fresh = (secrets.token_bytes(3000) for _ in range(3))
    for name, data in (("keep.bin", keep), ("drop.bin", drop)):
        assert put(client, "img", name, data).status_code == 200
    assert commit(client, "img", [entry("keep.bin", keep), entry("drop.bin", drop)]).status_code \
        == 200
    assert put(client, "img", "fresh.bin", fresh).status_code == 200
    assert commit(client, "img", [entry("keep.bin", keep), entry("fresh.bin", fresh)]) \
        .status_code == 200
    folder = storage.image_dir(receiver.config["STORAGE_PATH"], "img")
    assert sorted(p.name for p in folder.iterdir()) == ["fresh.bin", "keep.bin",
                                                         "manifest.json"]
    assert storage.verify_folder(folder) == []


def test_disk_full_is_refused_and_previous_copy_kept(tmp_path, tiny_store):
    app = make_app(tmp_path / "app", STORAGE_PATH=str(tiny_store))
    with app.app_context():
        _db.session.add(ComServer(display_name="sender", url="http://x", shared_secret=SECRET))
        _db.session.commit()
    client = app.test_client()
    small = secrets.token_bytes(100_000)
    assert put(client, "img", "a.bin", small).status_code == 200
    assert commit(client, "img", [entry("a.bin", small)]).status_code == 200
    big = os.urandom(32 << 20)
    response = put(client, "img", "a.bin", big)
    assert response.status_code == 507 and "disk is full" in response.json["error"]
    folder = storage.image_dir(tiny_store, "img")
    assert storage.verify_folder(folder) == []
    assert (folder / "a.bin").read_bytes() == small
    # The disk fills up half-way through a file: the chunk's bytes are given back.
    third = secrets.token_bytes(MIB)
    whole = third * 3
    sha = hashlib.sha256(whole).hexdigest()
    assert put(client, "img", "b.bin", third, 0, len(whole), sha).status_code == 200
    filler = tiny_store / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    filler.unlink()  # frees space, then take all but ~0.5 MiB of it again
    free = shutil.disk_usage(tiny_store).free
    filler.write_bytes(b"\0" * max(free - MIB // 2, 0))
    response = put(client, "img", "b.bin", third, MIB, len(whole), sha)
    assert response.status_code == 507 and "disk is full" in response.json["error"]
    part = tiny_store / "incoming" / "img" / "parts" / "b.bin"
    assert part.stat().st_size == MIB  # back to where the failed chunk started
    assert (folder / "a.bin").read_bytes() == small
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()
