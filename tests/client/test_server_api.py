"""The client API on the server: upload sessions, verified swap-in, downloads, tasks."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from app.extensions import db
from app.models import History, Image, Task
from app.models.base import utcnow
from tests.client.helpers import make_image, tiny_schema

BASE = "/api/v1/client"


def _upload(client, headers, image="lab", files=None, schema=None):
    answer = client.post(f"{BASE}/uploads", json={"image": image}, headers=headers)
    assert answer.status_code == 201, answer.json
    upload_id = answer.json["upload_id"]
    r = client.put(f"{BASE}/uploads/{upload_id}/schema", json=schema or tiny_schema(),
                   headers=headers)
    assert r.status_code == 200, r.json
    entries = []
    for path, data in (files or {}).items():
        r = client.put(f"{BASE}/uploads/{upload_id}/files/{path}", data=data, headers=headers)
        assert r.status_code == 201, r.json
        assert r.json["sha256"] == hashlib.sha256(data).hexdigest()
        entries.append({"path": path, "kind": "partclone", "disk": 0, "partition": 1,
                        "filesystem": "ext4", "compression": "zstd", "level": 3,
                        "size_bytes": len(data), "sha256": r.json["sha256"]})
    return upload_id, entries


def test_full_upload_swaps_in_and_protects(app, client, api_headers):
    image_id = make_image(app)
    data = os.urandom(300000)
    upload_id, entries = _upload(client, api_headers, files={"hd0/part1.ext4.partclone.zst": data})
    r = client.post(f"{BASE}/uploads/{upload_id}/complete", json={"files": entries},
                    headers=api_headers)
    assert r.status_code == 200, r.json
    folder = Path(app.config["STORAGE_PATH"]) / "images" / "lab"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["upload_id"] == upload_id
    assert manifest["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert (folder / "hd0/part1.ext4.partclone.zst").read_bytes() == data
    assert not (Path(app.config["STORAGE_PATH"]) / "staging" / upload_id).exists()
    with app.app_context():
        image = db.session.get(Image, image_id)
        assert image.protected and image.last_upload_id == upload_id
        assert image.size_on_server_bytes >= len(data)
        assert image.size_on_client_bytes == 1000000
        assert image.schema["disks"][0]["name"] == "sda"
        actions = [h.action for h in db.session.scalars(db.select(History).filter_by(
            object_type="image", object_id=image_id))]
        assert "upload" in actions
        task = db.session.scalars(db.select(Task)).one()
        assert task.kind == "upload" and task.on_demand

    # Protected now: a second upload is refused before anything is written.
    r = client.post(f"{BASE}/uploads", json={"image": "lab"}, headers=api_headers)
    assert r.status_code == 409 and "protected" in r.json["error"]


def test_download_supports_range(app, client, api_headers):
    make_image(app)
    data = os.urandom(100000)
    upload_id, entries = _upload(client, api_headers, files={"hd0/p.bin": data})
    client.post(f"{BASE}/uploads/{upload_id}/complete", json={"files": entries},
                headers=api_headers)
    full = client.get(f"{BASE}/images/lab/files/hd0/p.bin", headers=api_headers)
    assert full.status_code == 200 and full.data == data
    part = client.get(f"{BASE}/images/lab/files/hd0/p.bin",
                      headers={**api_headers, "Range": "bytes=1000-"})
    assert part.status_code == 206 and part.data == data[1000:]
    assert client.get(f"{BASE}/images/lab/files/../x", headers=api_headers).status_code in (
        400, 404)
    manifest = client.get(f"{BASE}/images/lab/manifest", headers=api_headers).json
    assert manifest["files"][0]["path"] == "hd0/p.bin"


def test_declared_checksum_mismatch_aborts_and_cleans(app, client, api_headers):
    make_image(app)
    upload_id, _ = _upload(client, api_headers)
    r = client.put(f"{BASE}/uploads/{upload_id}/files/hd0/x.bin", data=b"abc",
                   headers={**api_headers, "X-Castor-Sha256": "0" * 64})
    assert r.status_code == 422
    assert not (Path(app.config["STORAGE_PATH"]) / "staging" / upload_id).exists()
    r = client.post(f"{BASE}/uploads/{upload_id}/complete", json={"files": []},
                    headers=api_headers)
    assert r.status_code == 404


def test_failed_upload_keeps_previous_image(app, client, api_headers):
    image_id = make_image(app)
    old = b"old image" * 1000
    upload_id, entries = _upload(client, api_headers, files={"hd0/a.bin": old})
    client.post(f"{BASE}/uploads/{upload_id}/complete", json={"files": entries},
                headers=api_headers)
    with app.app_context():
        db.session.get(Image, image_id).protected = False
        db.session.commit()
    upload_id, entries = _upload(client, api_headers, files={"hd0/a.bin": b"new"})
    entries[0]["sha256"] = "1" * 64  # the client saw other bytes than the server
    r = client.post(f"{BASE}/uploads/{upload_id}/complete", json={"files": entries},
                    headers=api_headers)
    assert r.status_code == 422
    folder = Path(app.config["STORAGE_PATH"]) / "images" / "lab"
    assert (folder / "hd0/a.bin").read_bytes() == old
    assert list((Path(app.config["STORAGE_PATH"]) / "staging").iterdir()) == []


def test_missing_file_and_bad_paths_refused(app, client, api_headers):
    make_image(app)
    upload_id, _ = _upload(client, api_headers)
    for bad in ("../escape", "manifest.json", ".upload.json"):
        r = client.put(f"{BASE}/uploads/{upload_id}/files/{bad}", data=b"x",
                       headers=api_headers)
        assert r.status_code in (400, 404), bad
    r = client.post(f"{BASE}/uploads/{upload_id}/complete",
                    json={"files": [{"path": "hd0/never.bin", "kind": "partclone"}]},
                    headers=api_headers)
    assert r.status_code == 422 and "never received" in r.json["error"]


def test_invalid_schema_refused(app, client, api_headers):
    make_image(app)
    r = client.post(f"{BASE}/uploads", json={"image": "lab"}, headers=api_headers)
    upload_id = r.json["upload_id"]
    r = client.put(f"{BASE}/uploads/{upload_id}/schema", json={"format": "other"},
                   headers=api_headers)
    assert r.status_code == 422


def test_schema_only_upload_keeps_folder(app, client, api_headers):
    image_id = make_image(app)
    upload_id, _ = _upload(client, api_headers)
    r = client.post(f"{BASE}/uploads/{upload_id}/complete", json={"schema_only": True},
                    headers=api_headers)
    assert r.status_code == 200
    with app.app_context():
        image = db.session.get(Image, image_id)
        assert image.schema["format"] == "castor-schema"
        assert not image.protected
    assert not (Path(app.config["STORAGE_PATH"]) / "images" / "lab").exists()


def test_auth_unknown_image_and_lists(app, client, anon_client, api_headers):
    make_image(app, "lab")
    make_image(app, "hidden", on_demand=False)
    make_image(app, "off", enabled=False)
    assert anon_client.post(f"{BASE}/uploads", json={"image": "lab"}).status_code == 401
    r = client.post(f"{BASE}/uploads", json={"image": "no pe"}, headers=api_headers)
    assert r.status_code == 400 and "letters" in r.json["error"]
    with app.app_context():
        db.session.get(Image, 1).last_upload_at = utcnow()
        db.session.commit()
    names = [i["name"] for i in client.get(f"{BASE}/images?on_demand=1",
                                           headers=api_headers).json["images"]]
    assert names == ["lab"]
    profiles = client.get(f"{BASE}/images/lab/profiles", headers=api_headers).json["profiles"]
    options = client.get(f"{BASE}/profiles/{profiles[0]['id']}/options",
                         headers=api_headers).json
    assert options["compression_algorithm"] == "zstd" and options["scripts"] == []


def test_on_demand_list_offers_only_deployable_images(app, client, api_headers):
    make_image(app, "uploaded")
    make_image(app, "placeholder")
    with app.app_context():
        db.session.scalar(db.select(Image).filter_by(name="uploaded")).last_upload_at = utcnow()
        db.session.commit()
    listed = client.get(f"{BASE}/images?on_demand=1", headers=api_headers).json["images"]
    assert [i["name"] for i in listed] == ["uploaded"]


def test_on_demand_upload_of_a_new_name_creates_the_image(app, client, api_headers):
    r = client.post(f"{BASE}/uploads", json={"image": "fresh-build"}, headers=api_headers)
    assert r.status_code == 201, r.json
    assert (r.json["image"]["environment"], r.json["image"]["type"]) == ("linux", "block")
    assert r.json["profile"]["name"] == "default"
    with app.app_context():
        image = db.session.scalar(db.select(Image).filter_by(name="fresh-build"))
        assert [p.name for p in image.profiles] == ["default"]


def test_task_token_progress_cancel_and_checkout(app, client, anon_client):
    from app.tickets import issue_task_token

    image_id = make_image(app)
    with app.app_context():
        task = Task(kind="upload", image_id=image_id)
        db.session.add(task)
        db.session.flush()
        token = issue_task_token(task)
        db.session.commit()
        task_id = task.id
    headers = {"Authorization": f"Bearer {token}"}
    r = anon_client.post(f"{BASE}/checkin", json={}, headers=headers)
    assert r.status_code == 200 and r.json["task"]["id"] == task_id
    r = anon_client.post(f"{BASE}/progress", json={"partition": 1, "bytes_done": 10,
                                                    "percent": 5.0}, headers=headers)
    assert r.status_code == 200 and r.json["cancel"] is False
    with app.app_context():
        row = db.session.get(Task, task_id)
        assert row.progress["bytes_done"] == 10
        row.cancel_requested = True
        db.session.commit()
    assert anon_client.get(f"{BASE}/cancel", headers=headers).json["cancel"] is True
    anon_client.post(f"{BASE}/log", json={"text": "line\n"}, headers=headers)
    r = anon_client.post(f"{BASE}/checkout", json={"ok": False, "error": "boom"},
                         headers=headers)
    assert r.json["task"]["state"] == "failed"
    # The task is over: its token no longer opens the API.
    assert anon_client.get(f"{BASE}/cancel", headers=headers).status_code == 401


def test_openapi_lists_client_paths(app, client, api_headers):
    doc = client.get("/api/v1/openapi.json", headers=api_headers).json
    assert "/client/uploads/{upload_id}/files/{path}" in doc["paths"]
    assert "/client/deploys" in doc["paths"]


def test_segmented_file_upload_and_wrong_offset(app, client, api_headers):
    from app.receive import area

    make_image(app)
    upload_id, _ = _upload(client, api_headers)
    url = f"{BASE}/uploads/{upload_id}/files/hd0/seg.bin"
    parts = [os.urandom(70000), os.urandom(50000), os.urandom(1000)]
    offset = 0
    for i, part in enumerate(parts):
        if i == 1:
            area._RUNNING.clear()  # as if another server process took the first segment
        final = "1" if i == len(parts) - 1 else "0"
        r = client.put(url, data=part, headers={**api_headers, "X-Castor-Offset": str(offset),
                                                "X-Castor-Final": final})
        offset += len(part)
        assert r.status_code == (201 if final == "1" else 200), r.json
    whole = b"".join(parts)
    assert r.json == {"path": "hd0/seg.bin", "size_bytes": len(whole),
                      "sha256": hashlib.sha256(whole).hexdigest()}
    # A segment that does not continue the stored bytes ends the upload.
    url2 = f"{BASE}/uploads/{upload_id}/files/hd0/other.bin"
    client.put(url2, data=b"abc", headers={**api_headers, "X-Castor-Offset": "0",
                                           "X-Castor-Final": "0"})
    r = client.put(url2, data=b"def", headers={**api_headers, "X-Castor-Offset": "5",
                                               "X-Castor-Final": "1"})
    assert r.status_code == 409
    assert not (Path(app.config["STORAGE_PATH"]) / "staging" / upload_id).exists()
