"""A Castor app seeded through its own API: admin token, images, profiles, computers, tasks."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from app.extensions import db
from app.models import ApiToken, User
from tests.client.helpers import tiny_schema
from tests.conftest import make_app


@dataclass
class Seeded:
    """The seeded app with the admin's token and the ids of what was created."""

    app: Flask
    token: str
    ids: dict[str, int] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        """Headers of an authenticated API call."""
        return {"Authorization": f"Bearer {self.token}"}


def _ok(answer, status: int = 201) -> dict:
    """Return a JSON answer after checking its status."""
    assert answer.status_code == status, (answer.status_code, answer.get_data(as_text=True))
    return answer.get_json()


def _admin_token(app: Flask) -> str:
    """Create the admin account and return a clear-text API token of it."""
    with app.app_context():
        user = User(username="admin", is_admin=True)
        user.set_password("correct horse")
        db.session.add(user)
        row, clear = ApiToken.issue(user, "api-tests")
        db.session.add(row)
        db.session.commit()
    return clear


def _upload(client, headers: dict, image: str) -> None:
    """Upload a one-file image through the client API."""
    upload_id = _ok(client.post("/api/v1/client/uploads", json={"image": image},
                                headers=headers))["upload_id"]
    _ok(client.put(f"/api/v1/client/uploads/{upload_id}/schema", json=tiny_schema(),
                   headers=headers), 200)
    data = os.urandom(4096)
    path = "hd0/part1.ext4.partclone.zst"
    _ok(client.put(f"/api/v1/client/uploads/{upload_id}/files/{path}", data=data,
                   headers=headers))
    entry = {"path": path, "kind": "partclone", "disk": 0, "partition": 1,
             "filesystem": "ext4", "compression": "zstd", "level": 3,
             "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    _ok(client.post(f"/api/v1/client/uploads/{upload_id}/complete", json={"files": [entry]},
                    headers=headers), 200)


def seeded_app(tmp_path: Path) -> Seeded:
    """Return an app holding one of each API object, created through the API."""
    app = make_app(tmp_path)
    seeded = Seeded(app, _admin_token(app))
    client, headers, ids = app.test_client(), seeded.headers, seeded.ids
    ids["category"] = _ok(client.post("/api/v1/categories", json={"name": "lab"},
                                      headers=headers))["id"]
    for name in ("uploaded", "blank"):
        ids[name] = _ok(client.post("/api/v1/images", headers=headers, json={
            "name": name, "environment": "linux", "type": "block", "categories": ["lab"]}))["id"]
    _upload(client, headers, "uploaded")
    profiles = _ok(client.get(f"/api/v1/images/{ids['uploaded']}/profiles", headers=headers),
                   200)
    ids["profile"] = profiles[0]["id"]
    ids["script"] = _ok(client.post("/api/v1/modules/scripts", headers=headers, json={
        "name": "hello", "contents": "echo hello\n"}))["id"]
    ids["filecopy"] = _ok(client.post("/api/v1/modules/filecopies", headers=headers, json={
        "name": "drivers", "destination_folder": "/opt/drivers"}))["id"]
    ids["assignment"] = _ok(client.post(
        f"/api/v1/images/{ids['uploaded']}/profiles/{ids['profile']}/scripts",
        headers=headers, json={"module_id": ids["script"]}))["id"]
    ids["computer"] = _ok(client.post("/api/v1/computers", headers=headers, json={
        "name": "pc-1", "mac": "52:54:00:00:00:01", "image_id": ids["uploaded"],
        "profile_id": ids["profile"]}))["computer"]["id"]
    ids["group"] = _ok(client.post("/api/v1/groups", headers=headers, json={
        "name": "room-1", "computer_ids": [ids["computer"]]}))["group"]["id"]
    ids["task"] = _ok(client.post("/api/v1/tasks", headers=headers, json={
        "kind": "deploy", "computer_id": ids["computer"]}))["task"]["id"]
    ids["server"] = _ok(client.post("/api/v1/replication/servers", headers=headers, json={
        "display_name": "peer", "url": "http://peer.example:5000",
        "shared_secret": "s" * 32}))["id"]
    return seeded
