"""The images and categories REST API: CRUD, search, errors, OpenAPI."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.extensions import db as _db
from app.models import Image, ImageProfile

IMAGE_KEYS = {"id", "name", "description", "environment", "type", "enabled", "protected",
              "on_demand", "replication_mode", "categories", "size_on_server_bytes",
              "size_on_client_bytes", "last_upload_at", "created_at"}


def _create(client, headers, **body):
    payload = {"name": "img", "environment": "linux", "type": "block", **body}
    return client.post("/api/v1/images", json=payload, headers=headers)


def test_token_required(anon_client):
    response = anon_client.get("/api/v1/images")
    assert response.status_code == 401 and "error" in response.json
    bad = anon_client.get("/api/v1/images", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_create_get_update_delete(client, app, api_headers):
    client.post("/api/v1/categories", json={"name": "lab"}, headers=api_headers)
    created = _create(client, api_headers, name="ubuntu", categories=["lab"],
                      description="base", protected=False, replication_mode="none")
    assert created.status_code == 201
    body = created.json
    assert set(body) == IMAGE_KEYS
    assert (body["type"], body["categories"], body["replication_mode"]) == (
        "block", ["lab"], "none")
    image_id = body["id"]
    with app.app_context():
        assert _db.session.scalar(_db.select(ImageProfile).filter_by(image_id=image_id))
    assert client.get(f"/api/v1/images/{image_id}", headers=api_headers).json == body

    patched = client.patch(f"/api/v1/images/{image_id}", headers=api_headers,
                           json={"name": "ubuntu24", "enabled": False, "categories": []})
    assert patched.status_code == 200
    assert (patched.json["name"], patched.json["enabled"], patched.json["categories"]) == (
        "ubuntu24", False, [])
    assert (Path(app.config["STORAGE_PATH"]) / "images" / "ubuntu24").is_dir()

    assert client.delete(f"/api/v1/images/{image_id}", headers=api_headers).status_code == 204
    assert client.get(f"/api/v1/images/{image_id}", headers=api_headers).status_code == 404
    history = client.get(f"/api/v1/images/{image_id}/history", headers=api_headers)
    assert history.status_code == 404


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"name": "a/b"}, 400, "name"),
    ({"name": "../../etc"}, 400, "name"),
    ({"name": "with space"}, 400, "name"),
    ({"name": "ubuntu\u200b"}, 400, "name"),
    ({"name": ""}, 400, "name"),
    ({"type": "both"}, 422, "type"),
    ({"environment": "macos"}, 400, "environment"),
    ({"description": "x" * 10_001}, 400, "description"),
    ({"categories": ["nope"]}, 422, "categories"),
    ({"categories": "lab"}, 400, "categories"),
    ({"protected": "yes"}, 400, "protected"),
    ({"id": 5}, 400, "id"),
    ({"colour": "red"}, 400, "colour"),
])
def test_create_bad_input(client, app, api_headers, body, status, field):
    response = _create(client, api_headers, **body)
    assert response.status_code == status
    assert response.json["field"] == field and response.json["error"]
    with app.app_context():
        assert _db.session.scalar(_db.select(_db.func.count()).select_from(Image)) == 0


def test_missing_fields_and_non_object_body(client, api_headers):
    response = client.post("/api/v1/images", json={"name": "x"}, headers=api_headers)
    assert (response.status_code, response.json["field"]) == (400, "environment")
    response = client.post("/api/v1/images", json=["x"], headers=api_headers)
    assert response.status_code == 400
    response = client.post("/api/v1/images", data="not json", headers=api_headers)
    assert response.status_code == 415
    response = client.post("/api/v1/images", data="not json", headers={
        **api_headers, "Content-Type": "application/json"})
    assert response.status_code == 400


def test_duplicate_and_fixed_fields(client, api_headers):
    image_id = _create(client, api_headers, name="Dup").json["id"]
    duplicate = _create(client, api_headers, name="dup")
    assert (duplicate.status_code, duplicate.json["field"]) == (409, "name")
    for change in ({"type": "file"}, {"environment": "winpe"}):
        response = client.patch(f"/api/v1/images/{image_id}", json=change, headers=api_headers)
        assert response.status_code == 409 and "can't be changed" in response.json["error"]
    same = client.patch(f"/api/v1/images/{image_id}", json={"type": "block"},
                        headers=api_headers)
    assert same.status_code == 200


def test_protected_delete_is_409(client, api_headers):
    image_id = _create(client, api_headers, name="gold", protected=True).json["id"]
    response = client.delete(f"/api/v1/images/{image_id}", headers=api_headers)
    assert response.status_code == 409 and response.json["field"] == "protected"


def test_search(client, api_headers):
    for name in ("lab",):
        client.post("/api/v1/categories", json={"name": name}, headers=api_headers)
    _create(client, api_headers, name="alpha", categories=["lab"])
    _create(client, api_headers, name="beta")
    _create(client, api_headers, name="gamma")

    def names(query: str) -> list[str]:
        response = client.get(f"/api/v1/images?{query}", headers=api_headers)
        assert response.status_code == 200, response.json
        return [image["name"] for image in response.json["images"]]

    assert names("") == ["alpha", "beta", "gamma"]
    assert names("q=ET") == ["beta"]
    assert names("category=lab") == ["alpha"]
    assert names("category=lab&mode=or") == ["alpha", "beta", "gamma"]
    assert names("limit=2") == ["alpha", "beta"]
    assert names("limit=all") == ["alpha", "beta", "gamma"]
    page = client.get("/api/v1/images?limit=1", headers=api_headers).json
    assert page["total"] == 3 and page["limit"] == 1 and page["images"][0]["last_used_at"] is None
    for query, field in (("limit=0", "limit"), ("mode=xor", "mode"),
                         ("category=nope", "category"), ("limit=", "limit"),
                         ("limit=2&limit=all", "limit"), ("q=a&q=b", "q")):
        response = client.get(f"/api/v1/images?{query}", headers=api_headers)
        assert response.status_code in (400, 422) and response.json["field"] == field


def test_categories_crud(client, api_headers):
    created = client.post("/api/v1/categories", json={"name": "Lab 2", "description": "room"},
                          headers=api_headers)
    assert created.status_code == 201
    category_id = created.json["id"]
    duplicate = client.post("/api/v1/categories", json={"name": "lab 2"}, headers=api_headers)
    assert duplicate.status_code == 409
    bad = client.post("/api/v1/categories", json={"name": "a/b"}, headers=api_headers)
    assert (bad.status_code, bad.json["field"]) == (400, "name")
    renamed = client.patch(f"/api/v1/categories/{category_id}", json={"name": "Lab3"},
                           headers=api_headers)
    assert renamed.json["name"] == "Lab3" and renamed.json["description"] == "room"
    listing = client.get("/api/v1/categories", headers=api_headers).json["categories"]
    assert [c["name"] for c in listing] == ["Lab3"] and listing[0]["image_count"] == 0
    assert client.delete(f"/api/v1/categories/{category_id}",
                         headers=api_headers).status_code == 204
    assert client.get(f"/api/v1/categories/{category_id}",
                      headers=api_headers).status_code == 404


def test_schema_endpoint(client, app, api_headers):
    image_id = _create(client, api_headers, name="s").json["id"]
    missing = client.get(f"/api/v1/images/{image_id}/schema", headers=api_headers)
    assert missing.status_code == 404
    with app.app_context():
        _db.session.get(Image, image_id).schema_json = '{"format": "castor-schema"}'
        _db.session.commit()
    assert client.get(f"/api/v1/images/{image_id}/schema",
                      headers=api_headers).json == {"format": "castor-schema"}


def test_openapi_lists_image_paths(client):
    doc = client.get("/api/v1/openapi.json").json
    assert {"/images", "/images/{image_id}", "/categories"} <= set(doc["paths"])
    assert set(doc["paths"]["/images"]) == {"get", "post"}
    assert {"patch", "delete", "get"} <= set(doc["paths"]["/images/{image_id}"])
    image = doc["components"]["schemas"]["Image"]["properties"]
    assert set(image) == IMAGE_KEYS


def test_search_in_chunks_gives_each_image_its_categories(client, api_headers, monkeypatch):
    import app.images.search as search

    monkeypatch.setattr(search, "IN_LIST_MAX", 1)  # force the chunked and whole-table paths
    for name in ("lab", "win"):
        client.post("/api/v1/categories", json={"name": name}, headers=api_headers)
    _create(client, api_headers, name="a", categories=["lab", "win"])
    _create(client, api_headers, name="b")
    _create(client, api_headers, name="c", categories=["win"])
    images = client.get("/api/v1/images?limit=all", headers=api_headers).json["images"]
    assert {i["name"]: i["categories"] for i in images} == {
        "a": ["lab", "win"], "b": [], "c": ["win"]}
