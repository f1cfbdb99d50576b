"""Signed peer requests: a peer changes only the images it replicated here; no replays."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from redis import Redis

from app.extensions import db
from app.models import Image, ReplicationNonce, default_profile_for
from app.models.base import utcnow
from app.replication import peers, signing
from app.replication.remote import Peer
from tests.conftest import REDIS_URL

SECRET = "s" * 32  # the seeded peer's shared secret


def _signed(client, method: str, path: str, sender: str = "peer", headers=None):
    """Send a request signed as the seeded peer; return (answer, the headers used)."""
    headers = headers or signing.sign_request(SECRET, sender, method, path)
    return client.open(path, method=method, headers=headers), headers


def _image(app, name: str, origin: str = "", protected: bool = False) -> None:
    with app.app_context():
        image = Image(name=name, image_type="block", environment="linux", origin=origin,
                      protected=protected)
        image.profiles.append(default_profile_for("block", "linux"))
        db.session.add(image)
        db.session.commit()


def _exists(app, name: str) -> bool:
    with app.app_context():
        return db.session.scalar(db.select(Image).filter_by(name=name)) is not None


def test_signed_delete_of_a_protected_local_image_is_refused(seeded):
    client = seeded.app.test_client()
    answer, _ = _signed(client, "DELETE", "/api/v1/replication/images/uploaded")
    assert answer.status_code == 403 and "local" in answer.get_json()["error"]
    assert _exists(seeded.app, "uploaded")
    manifest = client.get("/api/v1/client/images/uploaded/manifest", headers=seeded.headers)
    assert manifest.status_code == 200


def test_a_peer_changes_only_what_it_replicated_here(seeded):
    app, client = seeded.app, seeded.app.test_client()
    _image(app, "local-open")                      # made here, not protected
    _image(app, "from-other", origin="other-peer")  # replicated by another peer
    _image(app, "from-peer-protected", origin="peer", protected=True)
    _image(app, "from-peer", origin="peer")
    for name in ("local-open", "from-other", "from-peer-protected"):
        for method, path in (("DELETE", f"/api/v1/replication/images/{name}"),
                             ("POST", f"/api/v1/replication/images/{name}/commit")):
            answer, _ = _signed(client, method, path)
            assert answer.status_code == 403, (method, name, answer.get_json())
        assert _exists(app, name)
    answer, _ = _signed(client, "DELETE", "/api/v1/replication/images/from-peer")
    assert answer.status_code == 200, answer.get_json()
    assert not _exists(app, "from-peer")


def test_a_peer_renames_a_protected_copy_but_never_deletes_it(seeded):
    app, client = seeded.app, seeded.app.test_client()
    _image(app, "kept-copy", origin="peer", protected=True)
    path = "/api/v1/replication/images/kept-copy/rename"
    body = b'{"new_name": "kept-renamed"}'
    headers = signing.sign_request(SECRET, "peer", "POST", path, hashlib.sha256(body).hexdigest())
    answer = client.post(path, data=body, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    assert not _exists(app, "kept-copy") and _exists(app, "kept-renamed")
    answer, _ = _signed(client, "DELETE", "/api/v1/replication/images/kept-renamed")
    assert answer.status_code == 403 and "protected" in answer.get_json()["error"]
    assert _exists(app, "kept-renamed")
    # A local image stays the peer's to leave alone.
    answer, _ = _signed(client, "POST", "/api/v1/replication/images/uploaded/rename")
    assert answer.status_code == 403


def test_replay_is_refused_after_a_redis_restart(seeded):
    client = seeded.app.test_client()
    first, headers = _signed(client, "GET", "/api/v1/replication/ping")
    assert first.status_code == 200
    Redis.from_url(REDIS_URL).flushdb()  # what a Redis restart without persistence leaves
    again, _ = _signed(client, "GET", "/api/v1/replication/ping", headers=headers)
    assert again.status_code == 401 and "replayed" in again.get_json()["error"]


def test_old_nonces_are_pruned(seeded):
    with seeded.app.app_context():
        old = utcnow() - timedelta(hours=1)
        assert peers.remember_nonce("peer", "a" * 32, now=old)
        assert not peers.remember_nonce("peer", "a" * 32, now=old)
        assert peers.remember_nonce("peer", "b" * 32)  # prunes the expired one
        nonces = db.session.scalars(db.select(ReplicationNonce.nonce)).all()
        assert "a" * 32 not in nonces and "b" * 32 in nonces


def test_https_peer_urls_are_accepted_and_use_tls(seeded):
    client = seeded.app.test_client()
    answer = client.post("/api/v1/replication/servers", headers=seeded.headers, json={
        "display_name": "tls-peer", "url": "https://peer.example:8443",
        "shared_secret": "t" * 32})
    assert answer.status_code == 201 and answer.get_json()["url"] == "https://peer.example:8443"
    remote = Peer("https://peer.example:8443", "t" * 32, "here")
    connection = remote._connect()
    assert type(connection).__name__ == "HTTPSConnection"
    assert connection._context.verify_mode.name == "CERT_REQUIRED"
