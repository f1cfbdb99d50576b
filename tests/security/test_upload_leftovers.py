"""Uploads: a server-side abort ends its on-demand task; no client breaks another's upload."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from app import uploads
from app.extensions import db as _db
from app.models import Task
from app.storage import staging_root
from app.tasks.service import create_task
from tests.client.helpers import make_image, tiny_schema
from tests.tasks.conftest import add_computer

BASE = "/api/v1/client"
DATA = b"partition bytes " * 1000


@pytest.fixture
def lab(app, api_headers):
    make_image(app, "lab")
    return app.test_client()


def _open(client, headers, image: str = "lab") -> dict:
    answer = client.post(f"{BASE}/uploads", json={"image": image}, headers=headers)
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    schema = client.put(f"{BASE}/uploads/{body['upload_id']}/schema", json=tiny_schema(),
                        headers=headers)
    assert schema.status_code == 200, schema.get_json()
    return body


def _put(client, headers, upload_id: str, sha256: str | None = None):
    return client.put(f"{BASE}/uploads/{upload_id}/files/hd0/part1.img", data=DATA,
                      headers={**headers, "X-Castor-Sha256":
                               sha256 or hashlib.sha256(DATA).hexdigest()})


def _complete(client, headers, upload_id: str, files: list | None = None):
    files = files if files is not None else [{
        "path": "hd0/part1.img", "kind": "dd", "disk": 0, "partition": 1,
        "size_bytes": len(DATA), "sha256": hashlib.sha256(DATA).hexdigest()}]
    return client.post(f"{BASE}/uploads/{upload_id}/complete", json={"files": files},
                       headers=headers)


def _task(app, task_id: int) -> tuple[str, str]:
    with app.app_context():
        task = _db.session.get(Task, task_id)
        return task.state, task.error


def test_bad_bytes_end_the_on_demand_task(app, lab, api_headers):
    upload = _open(lab, api_headers)
    assert upload["on_demand"] and _task(app, upload["task_id"])[0] == "imaging"
    answer = _put(lab, api_headers, upload["upload_id"], sha256="0" * 64)
    assert 400 <= answer.status_code < 500
    state, error = _task(app, upload["task_id"])
    assert state == "failed" and "aborted by the server" in error
    assert not (staging_root(app.config["STORAGE_PATH"]) / upload["upload_id"]).exists()


def test_a_refused_completion_ends_the_on_demand_task(app, lab, api_headers):
    upload = _open(lab, api_headers)
    assert _put(lab, api_headers, upload["upload_id"]).status_code == 201
    answer = _complete(lab, api_headers, upload["upload_id"], files=[
        {"path": "hd0/other.img", "kind": "dd", "size_bytes": 1}])
    assert answer.status_code == 422
    state, error = _task(app, upload["task_id"])
    assert state == "failed" and "never received" in error


def test_a_client_abort_leaves_the_check_out_to_the_client(app, lab, api_headers):
    upload = _open(lab, api_headers)
    assert lab.delete(f"{BASE}/uploads/{upload['upload_id']}",
                      headers=api_headers).status_code == 200
    assert _task(app, upload["task_id"])[0] == "imaging"
    checkout = lab.post(f"{BASE}/checkout", json={"task_id": upload["task_id"], "ok": False,
                                                   "cancelled": True}, headers=api_headers)
    assert checkout.status_code == 200 and _task(app, upload["task_id"])[0] == "cancelled"


def test_a_second_client_cannot_kill_a_running_upload(app, lab, api_headers):
    first = _open(lab, api_headers)
    assert _put(lab, api_headers, first["upload_id"]).status_code == 201
    refused = lab.post(f"{BASE}/uploads", json={"image": "lab"}, headers=api_headers)
    assert refused.status_code == 409, refused.get_json()
    assert first["upload_id"] in refused.get_json()["error"]
    # The refused attempt left no task behind, and the first upload finishes.
    with app.app_context():
        assert _db.session.scalar(_db.select(_db.func.count()).select_from(Task)) == 1
    answer = _complete(lab, api_headers, first["upload_id"])
    assert answer.status_code == 200, answer.get_json()


def test_a_quiet_upload_is_replaced_and_its_task_ended(app, lab, api_headers):
    first = _open(lab, api_headers)
    folder = staging_root(app.config["STORAGE_PATH"]) / first["upload_id"]
    past = time.time() - uploads.IDLE_SECONDS - 5
    for path in (folder, *folder.rglob("*")):
        os.utime(path, (past, past))
    second = _open(lab, api_headers)
    assert not folder.exists() and second["upload_id"] != first["upload_id"]
    state, error = _task(app, first["task_id"])
    assert state == "failed" and "replaced by a new one" in error
    assert _task(app, second["task_id"])[0] == "imaging"


def test_the_task_holding_an_upload_may_start_it_over(app, lab):
    with app.app_context():
        image_id = _db.session.scalar(_db.text("SELECT id FROM image WHERE name = 'lab'"))
        from app.models import Image

        computer = add_computer("pc-1", "aa:bb:cc:dd:ee:01", _db.session.get(Image, image_id))
        _task_row, ticket = create_task("upload", computer)
        _db.session.commit()
    token = lab.post(f"{BASE}/checkin", json={"ticket": ticket,
                                               "mac": "aa:bb:cc:dd:ee:01"}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    first = _open(lab, headers)
    assert _put(lab, headers, first["upload_id"]).status_code == 201
    # The machine rebooted mid-upload and starts its task's upload again.
    again = _open(lab, headers)
    assert again["task_id"] == first["task_id"]
    assert not Path(staging_root(app.config["STORAGE_PATH"]) / first["upload_id"]).exists()
    assert _task(app, first["task_id"])[0] == "imaging"
