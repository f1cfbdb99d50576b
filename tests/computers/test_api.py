"""The computers and groups API."""

from __future__ import annotations

from app.extensions import db as _db
from tests.tasks.conftest import add_computer, add_image


def _image(app, **kwargs) -> tuple[int, int]:
    with app.app_context():
        image = add_image(**kwargs)
        _db.session.commit()
        return image.id, image.profiles[0].id


def test_computer_crud(app, client, api_headers):
    image_id, profile_id = _image(app)
    created = client.post("/api/v1/computers", headers=api_headers, json={
        "name": "lab-01", "mac": "AA-BB-CC-00-00-01", "image_id": image_id,
        "profile_id": profile_id})
    assert created.status_code == 201, created.json
    computer = created.json["computer"]
    assert computer["mac"] == "aa:bb:cc:00:00:01" and computer["profile_id"] == profile_id
    cid = computer["id"]
    dup = client.post("/api/v1/computers", headers=api_headers,
                      json={"name": "lab-02", "mac": "aa:bb:cc:00:00:01"})
    assert dup.status_code == 409 and dup.json["field"] == "mac"
    bad = client.post("/api/v1/computers", headers=api_headers, json={"name": "bad name!"})
    assert bad.status_code == 400 and bad.json["field"] == "name"
    unknown = client.post("/api/v1/computers", headers=api_headers, json={"name": "x", "id": 3})
    assert unknown.status_code == 400
    listed = client.get("/api/v1/computers?q=cc:00", headers=api_headers).json["computers"]
    assert [c["name"] for c in listed] == ["lab-01"]
    patched = client.patch(f"/api/v1/computers/{cid}", headers=api_headers,
                           json={"name": "lab-9", "image_id": None, "profile_id": None})
    assert patched.json["computer"]["name"] == "lab-9"
    assert patched.json["computer"]["image_id"] is None
    assert client.get(f"/api/v1/computers/{cid}", headers=api_headers).status_code == 200
    assert client.delete(f"/api/v1/computers/{cid}", headers=api_headers).status_code == 204
    assert client.get(f"/api/v1/computers/{cid}", headers=api_headers).status_code == 404


def test_group_crud(app, client, api_headers):
    with app.app_context():
        ids = [add_computer(f"g{i}", f"aa:bb:cc:00:01:0{i}").id for i in range(3)]
        _db.session.commit()
    made = client.post("/api/v1/groups", headers=api_headers,
                       json={"name": "room-a", "computer_ids": ids[:2]})
    assert made.status_code == 201 and made.json["group"]["computer_ids"] == ids[:2]
    gid = made.json["group"]["id"]
    missing = client.patch(f"/api/v1/groups/{gid}", headers=api_headers,
                           json={"computer_ids": [ids[2], 999]})
    # The group exists: an id in the body that names nothing is refused, not a missing group.
    assert missing.status_code == 422 and missing.json["field"] == "computer_ids"
    assert client.get(f"/api/v1/groups/{gid}", headers=api_headers).json["group"][
        "computer_ids"] == ids[:2]
    changed = client.patch(f"/api/v1/groups/{gid}", headers=api_headers,
                           json={"computer_ids": [ids[2]], "description": "back row"})
    assert changed.json["group"]["computer_ids"] == [ids[2]]
    assert [g["name"] for g in client.get("/api/v1/groups",
                                          headers=api_headers).json["groups"]] == ["room-a"]
    assert client.delete(f"/api/v1/groups/{gid}", headers=api_headers).status_code == 204
