"""Multicast pages and API: list with live polling, create, cancel, join and reports."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.extensions import db
from app.models import Image, MulticastSession
from app.multicast.sessions import create_session, join_session
from tests.multicast.helpers import kill_leftovers, stored_image

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _no_leftover_senders(app):
    yield
    kill_leftovers(app.instance_path)


def _senders(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if cmd.startswith("udp-sender") and marker in cmd and state != "Z":
            found.append(int(entry.name))
    return found


def _waiting_session(app, name: str = "s1", expected: int = 2) -> int:
    with app.app_context():
        image = db.session.get(Image, stored_image(app)) if not db.session.scalar(
            db.select(Image)) else db.session.scalar(db.select(Image))
        session = create_session(name, image, expected_clients=expected)
        db.session.commit()
        return session.id


def test_index_lists_sessions_and_stops_polling_when_none_runs(client, app):
    """Joined/expected and client progress show; the partial answers 286 once all ended."""
    session_id = _waiting_session(app)
    with app.app_context():
        session = db.session.get(MulticastSession, session_id)
        member = join_session(session, "pc-7")
        member.progress_json = '{"0": {"bytes": 4096, "total": 4096}}'
        db.session.commit()
    page = client.get("/multicast")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "1 / 2 joined" in html and "pc-7" in html and 'value="50"' in html
    assert 'hx-trigger="every 2s"' in html and "data-confirm=" in html
    partial = client.get("/multicast", headers=HX)
    assert partial.status_code == 200 and "<html" not in partial.get_data(as_text=True)
    with app.app_context():
        db.session.get(MulticastSession, session_id).state = "finished"
        db.session.commit()
    done = client.get("/multicast", headers=HX)
    assert done.status_code == 286
    assert "every 2s" not in done.get_data(as_text=True)


def test_new_session_form_validates_then_starts_and_cancel_kills_the_sender(client, app):
    """The form refuses a missing client count, starts a real sender, and cancel stops it."""
    app.config.update(MULTICAST_INTERFACE="lo", MULTICAST_PORT_START=9460,
                      MULTICAST_PORT_END=9479)
    with app.app_context():
        stored_image(app)
        profile_id = db.session.scalar(db.select(Image)).profiles[0].id
    assert client.get("/multicast/new").status_code == 200
    refused = client.post("/multicast/new", data={
        "name": "lab-1", "profile": profile_id, "group": 0, "com_server": 0,
        "max_wait_seconds": 5, "partition_timeout_seconds": 60, "retries_until_drop": 3})
    assert refused.status_code == 422
    assert "Give the number of clients" in refused.get_data(as_text=True)
    created = client.post("/multicast/new", data={
        "name": "lab-1", "profile": profile_id, "group": 0, "com_server": 0,
        "expected_clients": 2, "max_wait_seconds": 5, "partition_timeout_seconds": 60,
        "retries_until_drop": 3})
    assert created.status_code == 303
    marker = f"{app.config['STORAGE_PATH']}/images/lab/hd0/part1"
    deadline = time.monotonic() + 15
    while not _senders(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _senders(marker), "the supervisor did not start udp-sender"
    with app.app_context():
        session_id = db.session.scalar(db.select(MulticastSession.id))
    cancelled = client.post(f"/multicast/{session_id}/cancel", data={"confirmed": "1"})
    assert cancelled.status_code == 303
    deadline = time.monotonic() + 10
    while _senders(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _senders(marker)
    with app.app_context():
        assert db.session.get(MulticastSession, session_id).state == "cancelled"


def test_api_join_reports_and_refusals(app, client, api_headers):
    """Join answers streams with their own ports; progress and done are recorded."""
    session_id = _waiting_session(app, "room", expected=1)
    api = app.test_client()
    assert api.get("/api/v1/multicast/sessions").status_code == 401
    listed = api.get("/api/v1/multicast/sessions?live=1", headers=api_headers).get_json()
    assert [s["name"] for s in listed["sessions"]] == ["room"]
    assert api.get("/api/v1/multicast/sessions/999", headers=api_headers).status_code == 404
    unknown = api.post("/api/v1/multicast/join", headers=api_headers,
                       json={"session": "nope", "disks": [{"size_bytes": 8 << 30}]})
    assert unknown.status_code == 404
    bad = api.post("/api/v1/multicast/join", headers=api_headers,
                   json={"session": "room", "disks": [{"nothing": 1}]})
    assert bad.status_code == 400
    with app.app_context():
        db.session.get(MulticastSession, session_id).state = "sending"
        db.session.commit()
    late = api.post("/api/v1/multicast/join", headers=api_headers,
                    json={"session": "room", "client_id": "x",
                          "disks": [{"size_bytes": 8 << 30}]})
    assert late.status_code == 409 and "sending" in late.get_json()["error"]
    with app.app_context():
        session = db.session.get(MulticastSession, session_id)
        session.state = "waiting"
        member = join_session(session, "pc")
        db.session.commit()
        member_id = member.id
    progress = api.post(f"/api/v1/multicast/clients/{member_id}/progress", headers=api_headers,
                        json={"stream": 1, "bytes": 10, "total": 20, "rate_bps": 5})
    assert progress.get_json() == {"state": "waiting", "client_state": "receiving",
                                   "current_stream": 0, "streams": ["pending", "pending"]}
    outcome_url = f"/api/v1/multicast/clients/{member_id}/streams/0"
    wrong = api.post(outcome_url, headers=api_headers,
                     json={"multicast_bytes": 4000, "http_bytes": 1})
    assert wrong.status_code == 422 and "adds up to 4001" in wrong.get_json()["error"]
    assert api.post(f"/api/v1/multicast/clients/{member_id}/streams/7", headers=api_headers,
                    json={}).status_code == 422
    text = "stream 0: multicast 98 %, then HTTP 2 % (the stream stopped arriving)"
    outcome = api.post(outcome_url, headers=api_headers, json={
        "multicast_bytes": 4000, "http_bytes": 96, "cause": "the stream stopped arriving",
        "text": text})
    assert outcome.status_code == 200, outcome.get_json()
    assert outcome.get_json()["multicast_bytes"] == 4000
    assert outcome.get_json()["http_bytes"] == 96
    done = api.post(f"/api/v1/multicast/clients/{member_id}/done", headers=api_headers)
    assert done.get_json()["state"] == "done"
    assert done.get_json()["progress"]["1"] == {"bytes": 10, "rate_bps": 5, "total": 20}
    shown = api.get(f"/api/v1/multicast/sessions/{session_id}", headers=api_headers).get_json()
    [machine] = shown["summary"]["machines"]
    assert machine["multicast_bytes"] == 4000 and machine["http_bytes"] == 96
    assert machine["fell_back"] == [{"stream": 0, "text": text}]
    assert shown["summary"]["all_fell_back"] is True
    page = client.get("/multicast").get_data(as_text=True)
    assert text in page and "every machine had to complete streams over HTTP" in page
    with app.app_context():
        assert f"client pc: {text}" in db.session.get(MulticastSession, session_id).log
    doc = api.get("/api/v1/openapi.json", headers=api_headers).get_json()
    assert "/multicast/join" in doc["paths"]
    assert "/multicast/sessions/{session_id}/cancel" in doc["paths"]


def test_join_refused_by_the_planner_is_recorded_as_failed(app, api_headers):
    """A machine whose disk the image cannot fit gets the planner's words and is recorded as
    failed (so the sender stops waiting for it); the same machine joins again once fixed."""
    from tests.imaging.test_planner_input import LINUX, store_image

    store_image(app, "fit", LINUX, "block", {})
    api = app.test_client()
    disk = {"logical_sector_size": 512, "physical_sector_size": 512}
    small = api.post("/api/v1/multicast/join", headers=api_headers, json={
        "session": "mc-fit", "client_id": "tiny", "disks": [{**disk, "size_bytes": 256 << 20}]})
    assert small.status_code == 422
    assert "destination disk 0 is too small" in small.get_json()["error"]
    shown = api.get("/api/v1/multicast/sessions", headers=api_headers).get_json()["sessions"]
    [member] = shown[0]["clients"]
    assert member["client_id"] == "tiny" and member["state"] == "failed"
    assert member["error"].startswith("refused at join, nothing was written: destination "
                                      "disk 0 is too small")
    with app.app_context():
        log = db.session.scalar(db.select(MulticastSession).filter_by(name="mc-fit")).log
        assert "client tiny: failed: refused at join, nothing was written" in log
    fixed = api.post("/api/v1/multicast/join", headers=api_headers, json={
        "session": "mc-fit", "client_id": "tiny", "disks": [{**disk, "size_bytes": 64 << 30}]})
    assert fixed.status_code == 200, fixed.get_json()
    failed = api.post(f"/api/v1/multicast/clients/{fixed.get_json()['client_id']}/failed",
                      headers=api_headers, json={"error": "deploy refused, nothing was "
                                                          "written: missing tools"})
    assert failed.get_json()["state"] == "failed"
    with app.app_context():
        log = db.session.scalar(db.select(MulticastSession).filter_by(name="mc-fit")).log
        assert "client tiny: failed: deploy refused, nothing was written: missing tools" in log
