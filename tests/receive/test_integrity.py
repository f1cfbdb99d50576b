"""Chunk digests in the manifest, and the scheduled and command-line integrity checks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from click.testing import CliRunner

from app.extensions import db
from app.models import History, Image, Job
from tests.client.helpers import make_image, tiny_schema

BASE = "/api/v1/client"


def _upload(client, headers, data: bytes) -> dict:
    upload_id = client.post(f"{BASE}/uploads", json={"image": "lab"},
                            headers=headers).json["upload_id"]
    client.put(f"{BASE}/uploads/{upload_id}/schema", json=tiny_schema(), headers=headers)
    r = client.put(f"{BASE}/uploads/{upload_id}/files/hd0/p1.img", data=data, headers=headers)
    assert r.status_code == 201
    entry = {"path": "hd0/p1.img", "kind": "dd", "disk": 0, "partition": 1,
             "size_bytes": len(data), "sha256": r.json["sha256"]}
    r = client.post(f"{BASE}/uploads/{upload_id}/complete", json={"files": [entry]},
                    headers=headers)
    assert r.status_code == 200, r.json
    return r.json["manifest"]


def test_upload_manifest_lists_chunk_digests(app, client, api_headers):
    make_image(app)
    data = os.urandom(100_000)
    manifest = _upload(client, api_headers, data)
    [entry] = manifest["files"]
    assert entry["chunk_bytes"] == 16 << 20
    assert entry["chunks"] == [hashlib.sha256(data).hexdigest()]
    served = client.get(f"{BASE}/images/lab/manifest", headers=api_headers).json
    assert served["files"][0]["chunks"] == entry["chunks"]


def test_scheduled_check_and_command_flag_a_damaged_image(app, client, api_headers, run_jobs,
                                                          monkeypatch):
    from app import cli
    from app.integrity import VERIFY_JOB
    from app.jobs import enqueue

    image_id = make_image(app)
    _upload(client, api_headers, os.urandom(100_000))
    runner = CliRunner()
    monkeypatch.setattr(cli, "_app", lambda: app)
    result = runner.invoke(cli.main, ["images", "verify", "lab"])
    assert result.exit_code == 0 and "lab: ok" in result.output
    stored = Path(app.config["STORAGE_PATH"]) / "images" / "lab" / "hd0" / "p1.img"
    data = bytearray(stored.read_bytes())
    data[50_000] ^= 0x10
    stored.write_bytes(bytes(data))
    with app.app_context():
        job_id = enqueue(VERIFY_JOB, "image_verify").id
    run_jobs()
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert job.status == "finished" and "1 damaged image(s): lab" in job.message
        image = db.session.get(Image, image_id)
        assert "SHA-256 mismatch" in image.damaged and image.verified_at is not None
        assert db.session.scalar(db.select(History).filter_by(
            object_type="image", object_id=image_id, action="damaged")) is not None
    answer = client.post(f"{BASE}/deploys", json={"image": "lab", "disks": [{"size_bytes": 1}]},
                         headers=api_headers)
    assert answer.status_code == 409 and "damaged" in answer.json["error"]
    _damaged_is_shown_and_refused_everywhere(app, client, api_headers, image_id)
    result = runner.invoke(cli.main, ["images", "verify"])
    assert result.exit_code == 1 and "lab: DAMAGED" in result.output


def _damaged_is_shown_and_refused_everywhere(app, client, api_headers, image_id: int) -> None:
    """A damaged image wears a badge on its page and in the list; no deploy path takes it."""
    from tests.tasks.conftest import add_computer

    page = client.get(f"/images/{image_id}").get_data(as_text=True)
    assert "damaged: deploys refused until repaired" in page
    listing = client.get("/images/").get_data(as_text=True)
    assert ">damaged</span>" in listing
    with app.app_context():
        computer_id = add_computer().id
        db.session.commit()
    task = client.post("/api/v1/tasks", headers=api_headers,
                       json={"kind": "deploy", "computer_id": computer_id, "image_id": image_id})
    assert task.status_code == 409 and "damaged" in task.json["error"]
    session = client.post("/api/v1/multicast/sessions", headers=api_headers,
                          json={"name": "room", "image": "lab"})
    assert session.status_code == 422 and "damaged" in session.json["error"]
