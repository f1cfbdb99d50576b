"""A peer's free space: the signed storage report, its client, the job and the dashboard."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import threading
from datetime import timedelta

import pytest
from rq.job import Job as RQJob

from app.extensions import db as _db
from app.filters import time_ago
from app.jobs import redis_connection
from app.models import ComServer, Job
from app.models.base import utcnow
from app.replication import space
from app.replication.remote import Peer, RemoteError
from app.replication.signing import sign_request
from jobs.replication import sweep
from tests.conftest import create_user, sign_in

SECRET = "s3cret-shared-16+"
API = "/api/v1/replication"
GIB = 1 << 30


@pytest.fixture
def receiver(app):
    """The app with a peer called 'sender' sharing SECRET, and its own row 'me'."""
    with app.app_context():
        _db.session.add_all([
            ComServer(display_name="sender", url="http://sender:5000", shared_secret=SECRET),
            ComServer(display_name="me", url="http://me:5000", shared_secret=SECRET,
                      is_local=True)])
        _db.session.commit()
    return app


def _get(client, sender: str = "sender", secret: str = SECRET, path: str = "/storage"):
    return client.get(API + path, headers=sign_request(secret, sender, "GET", API + path))


def test_storage_report_answers_a_known_peer_with_two_numbers_only(receiver):
    client = receiver.test_client()
    answer = _get(client)
    assert answer.status_code == 200, answer.json
    usage = shutil.disk_usage(receiver.config["STORAGE_PATH"])
    assert set(answer.json) == {"server", "free_bytes", "total_bytes"}
    assert answer.json["server"] == "me" and answer.json["total_bytes"] == usage.total
    assert abs(answer.json["free_bytes"] - usage.free) < 64 << 20


def test_storage_report_is_refused_without_a_valid_signature_from_a_known_peer(receiver):
    client = receiver.test_client()
    unsigned = client.get(API + "/storage")
    assert unsigned.status_code == 401 and "unsigned" in unsigned.json["error"]
    wrong = _get(client, secret="not-the-secret-at-all")
    assert wrong.status_code == 401 and "bad signature" in wrong.json["error"]
    for stranger in ("stranger", "me"):  # our own row is no peer
        refused = _get(client, sender=stranger)
        assert refused.status_code == 401 and "unknown server" in refused.json["error"]
    # Signed for another path, sent to this one: the signature does not carry over.
    headers = sign_request(SECRET, "sender", "GET", API + "/ping")
    assert client.get(API + "/storage", headers=headers).status_code == 401
    headers = sign_request(SECRET, "sender", "GET", API + "/storage")
    assert client.get(API + "/storage", headers=headers).status_code == 200
    replay = client.get(API + "/storage", headers=headers)
    assert replay.status_code == 401 and "replayed" in replay.json["error"]
    for body in (unsigned.json, wrong.json, replay.json):
        assert "free_bytes" not in body and "total_bytes" not in body


def test_storage_report_says_why_when_the_store_cannot_be_measured(receiver, tmp_path):
    receiver.config["STORAGE_PATH"] = str(tmp_path / "nowhere")
    answer = _get(receiver.test_client())
    assert answer.status_code == 503
    assert answer.json["error"] == ("the image store cannot be measured: No such file or "
                                    "directory")


class FakePeer:
    """A local HTTP server answering every request with a status and body we choose."""

    def __init__(self) -> None:
        self.status, self.body = 200, b"{}"
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's API
                self.send_response(owner.status)
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, body: bytes | dict, status: int = 200) -> None:
        self.status = status
        self.body = json.dumps(body).encode() if isinstance(body, dict) else body


@pytest.fixture
def fake_peer():
    peer = FakePeer()
    yield peer
    peer.server.shutdown()
    peer.server.server_close()


@pytest.mark.parametrize(("body", "message"), [
    (b"<html>hello</html>", "not a JSON object: '<html>hello</html>'"),
    (b"", "two byte counts"),
    (b"[1, 2]", "not a JSON object"),
    ({"free_bytes": "12", "total_bytes": 20}, "two byte counts"),
    ({"free_bytes": -1, "total_bytes": 20}, "two byte counts"),
    ({"free_bytes": 30, "total_bytes": 20}, "free <= total"),
    ({"free_bytes": True, "total_bytes": 20}, "two byte counts"),
    ({"free_bytes": 1.5, "total_bytes": 20}, "two byte counts"),
    (b"{" + b" " * (1 << 20) + b"}", "longer than 65536 bytes"),
])
def test_a_garbage_or_oversized_storage_answer_is_a_clear_error(fake_peer, body, message):
    fake_peer.answer(body)
    with pytest.raises(RemoteError, match=re.escape(message)):
        Peer(fake_peer.url, SECRET, "me", timeout=5).storage_space()


def test_a_good_storage_answer_and_an_error_answer(fake_peer):
    fake_peer.answer({"server": "b", "free_bytes": 40 * GIB, "total_bytes": 100 * GIB})
    assert Peer(fake_peer.url, SECRET, "me").storage_space() == (40 * GIB, 100 * GIB)
    fake_peer.answer({"error": "unknown server 'me': add it under Servers first"}, 401)
    with pytest.raises(RemoteError, match="unknown server 'me'"):
        Peer(fake_peer.url, SECRET, "me").storage_space()
    fake_peer.answer(b"[]", 502)
    with pytest.raises(RemoteError, match=r"\[\]"):
        Peer(fake_peer.url, SECRET, "me").storage_space()


def _server(url: str, name: str = "b") -> ComServer:
    server = ComServer(display_name=name, url=url, shared_secret=SECRET)
    _db.session.add(server)
    _db.session.commit()
    return server


def test_the_job_records_the_answer_then_keeps_it_when_the_peer_fails(db, fake_peer,
                                                                        run_jobs):
    server = _server(fake_peer.url)
    fake_peer.answer({"free_bytes": 40 * GIB, "total_bytes": 100 * GIB})
    (row,) = space.queue_refresh()
    assert RQJob.fetch(row.id, connection=redis_connection()).args == (row.id, server.id)
    assert space.refreshing()
    run_jobs()
    _db.session.expire_all()
    assert not space.refreshing()
    assert _db.session.get(Job, row.id).status == "finished"
    assert (server.space_free_bytes, server.space_total_bytes) == (40 * GIB, 100 * GIB)
    assert server.space_error == "" and server.space_checked_at == server.space_tried_at
    checked = server.space_checked_at

    fake_peer.answer(b"not json at all")
    (row,) = space.queue_refresh()
    run_jobs()
    _db.session.expire_all()
    job = _db.session.get(Job, row.id)
    assert job.status == "failed" and "not a JSON object" in job.error
    assert server.space_error == "the answer is not a JSON object: 'not json at all'"
    assert (server.space_free_bytes, server.space_checked_at) == (40 * GIB, checked)
    assert server.space_tried_at > checked


def test_an_unreachable_peer_is_recorded_without_its_url(db, run_jobs):
    server = _server("http://127.0.0.1:9")
    space.queue_refresh()
    run_jobs()
    _db.session.expire_all()
    assert server.space_error.startswith("[Errno 111]")
    assert server.space_checked_at is None and server.space_tried_at is not None


def test_the_sweep_asks_every_peer(db):
    b, c = _server("http://127.0.0.1:9"), _server("http://127.0.0.1:9", "c")
    _db.session.add(ComServer(display_name="me", url="http://me", is_local=True))
    job = Job(id="sweep-1", kind="replication_sweep")
    _db.session.add(job)
    _db.session.commit()
    sweep("sweep-1")
    asked = _db.session.scalars(_db.select(Job).filter_by(kind=space.KIND)).all()
    assert sorted(row.object_id for row in asked) == sorted([b.id, c.id])
    assert "2 free space report(s)" in _db.session.get(Job, "sweep-1").message


def _cell(page: str, name: str) -> str:
    row = re.search(rf'<tr data-server="{name}">.*?</tr>', page, re.S).group(0)
    return " ".join(re.sub(r"<[^>]+>", " ", row).split())


def test_dashboard_shows_each_peers_space_and_its_age(app, client):
    now = utcnow()
    with app.app_context():
        fresh, failed, never, down = (_server("http://127.0.0.1:9", name)
                                      for name in ("fresh", "failed", "never", "down"))
        space.record_answer(fresh, 42 * GIB, 100 * GIB, now - timedelta(minutes=3))
        space.record_answer(failed, 7 * GIB, 50 * GIB, now - timedelta(hours=2))
        space.record_failure(failed, "http://127.0.0.1:9 unreachable: timed out",
                             now - timedelta(minutes=1))
        space.record_failure(down, "http://127.0.0.1:9: bad signature")
        _db.session.commit()
    page = client.get("/").text
    assert "42.0 GiB free of 100.0 GiB, 3 min ago" in _cell(page, "fresh")
    assert ("unreachable: timed out , last known 7.0 GiB free of 50.0 GiB, 2 h ago "
            "(tried 1 min ago)") in _cell(page, "failed")
    assert "not reported yet" in _cell(page, "never")
    assert "unreachable: bad signature , never reported" in _cell(page, "down")
    assert "free of" in _cell(page, "This server")
    assert 'id="refresh-storage"' in page


def test_refresh_queues_one_job_per_peer_and_the_card_polls_until_done(app, client,
                                                                        run_jobs):
    with app.app_context():
        ids = {_server("http://127.0.0.1:9", name).id for name in ("b", "c")}
    answer = client.post("/dashboard/storage/refresh")
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    page = client.get("/").text
    assert "Asking 2 servers for their free space." in page
    assert 'hx-get="/dashboard/storage"' in page and "Asking the servers…" in page
    with app.app_context():
        rows = _db.session.scalars(_db.select(Job).filter_by(kind=space.KIND)).all()
        assert {row.object_id for row in rows} == ids
        assert {RQJob.fetch(row.id, connection=redis_connection()).args[1]
                for row in rows} == ids
    partial = {"HX-Request": "true"}
    assert client.get("/dashboard/storage", headers=partial).status_code == 200
    run_jobs()
    card = client.get("/dashboard/storage", headers=partial)
    assert card.status_code == 286  # stop polling: every answer is in
    assert "hx-get" not in card.text and card.text.count("unreachable: [Errno 111]") == 2
    assert "<h1>Dashboard</h1>" in client.get("/dashboard/storage").text


def test_refresh_needs_a_csrf_token_and_an_operator(app):
    with app.app_context():
        _server("http://127.0.0.1:9")
        from app.models import User

        viewer = User(username="ro", role="readonly")
        viewer.set_password("irrelevant pw")
        _db.session.add(viewer)
        _db.session.commit()
        viewer_id = viewer.id
    readonly = app.test_client()
    sign_in(app, readonly, viewer_id)
    assert 'id="refresh-storage"' not in readonly.get("/").text
    assert readonly.post("/dashboard/storage/refresh").status_code == 403

    app.config["WTF_CSRF_ENABLED"] = True
    operator = app.test_client()
    sign_in(app, operator, create_user(app, "op", admin=False))
    assert operator.post("/dashboard/storage/refresh").status_code == 400
    with app.app_context():
        assert _db.session.scalars(_db.select(Job).filter_by(kind=space.KIND)).all() == []
    page = operator.get("/").text
    assert 'id="refresh-storage"' in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    answer = operator.post("/dashboard/storage/refresh", data={"csrf_token": token})
    assert answer.status_code == 303
    with app.app_context():
        assert len(_db.session.scalars(_db.select(Job).filter_by(kind=space.KIND)).all()) == 1


def test_time_ago():
    now = utcnow()
    assert time_ago(None) == "never"
    assert time_ago(now - timedelta(seconds=42), now) == "42 s ago"
    assert time_ago(now - timedelta(minutes=3, seconds=30), now) == "3 min ago"
    assert time_ago(now - timedelta(hours=5), now) == "5 h ago"
    assert time_ago(now - timedelta(days=1, hours=2), now) == "1 day ago"
    assert time_ago(now - timedelta(days=9), now) == "9 days ago"
    assert time_ago(now + timedelta(seconds=5), now) == "0 s ago"
