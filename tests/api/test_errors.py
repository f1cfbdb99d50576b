"""The API's one error boundary: every answer under /api is JSON, every bad input a 4xx."""

from __future__ import annotations

import json

import pytest

from tests.conftest import sign_in

BIG = str(1 << 64)


def _json_error(answer, status: int) -> dict:
    """Check an answer is a JSON error with the status and a message; return its body."""
    assert answer.status_code == status, (answer.status_code, answer.get_data(as_text=True))
    assert answer.mimetype == "application/json", answer.get_data(as_text=True)[:200]
    body = answer.get_json()
    assert isinstance(body, dict) and isinstance(body["error"], str) and body["error"]
    return body


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/images/abc",
                                  "/api/v1/images/0", "/api/v1/images/-1",
                                  f"/api/v1/images/{BIG}", f"/api/v1/computers/{BIG}",
                                  f"/api/v1/images/{BIG}/profiles/1",
                                  f"/api/v1/client/profiles/{BIG}/options",
                                  f"/api/v1/multicast/sessions/{BIG}"])
def test_unknown_paths_and_huge_ids_are_json_404s(seeded, path):
    _json_error(seeded.app.test_client().get(path, headers=seeded.headers), 404)


def test_wrong_method_is_a_json_405_with_allow(seeded):
    answer = seeded.app.test_client().put("/api/v1/images", headers=seeded.headers)
    _json_error(answer, 405)
    assert "GET" in answer.headers["Allow"] and "POST" in answer.headers["Allow"]


def test_missing_token_is_a_json_401(seeded):
    _json_error(seeded.app.test_client().get("/api/v1/images"), 401)


def test_pages_keep_html_errors(seeded):
    client = seeded.app.test_client()
    sign_in(seeded.app, client, 1)
    answer = client.get("/no-such-page")
    assert answer.status_code == 404 and answer.mimetype == "text/html"


WRITES = [
    ("post", "/api/v1/images"), ("patch", "/api/v1/images/{uploaded}"),
    ("post", "/api/v1/categories"), ("patch", "/api/v1/categories/{category}"),
    ("post", "/api/v1/computers"), ("patch", "/api/v1/computers/{computer}"),
    ("post", "/api/v1/groups"), ("patch", "/api/v1/groups/{group}"),
    ("post", "/api/v1/tasks"),
    ("post", "/api/v1/images/{uploaded}/profiles"),
    ("patch", "/api/v1/images/{uploaded}/profiles/{profile}"),
    ("post", "/api/v1/images/{uploaded}/profiles/{profile}/scripts"),
    ("patch", "/api/v1/images/{uploaded}/profiles/{profile}/scripts/{assignment}"),
    ("post", "/api/v1/images/{uploaded}/profiles/{profile}/plan"),
    ("post", "/api/v1/modules/scripts"), ("patch", "/api/v1/modules/scripts/{script}"),
    ("post", "/api/v1/multicast/sessions"), ("post", "/api/v1/multicast/join"),
    ("post", "/api/v1/replication/servers"), ("put", "/api/v1/replication/servers/{server}"),
    ("post", "/api/v1/client/uploads"), ("post", "/api/v1/client/deploys"),
    ("post", "/api/v1/client/progress"), ("post", "/api/v1/client/log"),
    ("post", "/api/v1/client/checkout"),
]
NOT_OBJECTS = ["-475", "[1, 2]", '"text"', "null", "true", "{not json"]


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize("raw", NOT_OBJECTS)
def test_bodies_that_are_not_objects_are_400s(seeded, method, path, raw):
    client = seeded.app.test_client()
    answer = getattr(client, method)(path.format(**seeded.ids), data=raw,
                                     headers={**seeded.headers,
                                              "Content-Type": "application/json"})
    _json_error(answer, 400)


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_deeply_nested_bodies_are_400s(seeded, method, path):
    raw = '{"name": ' + "[" * 100000 + "]" * 100000 + "}"
    client = seeded.app.test_client()
    answer = getattr(client, method)(path.format(**seeded.ids), data=raw,
                                     headers={**seeded.headers,
                                              "Content-Type": "application/json"})
    _json_error(answer, 400)


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_bodies_that_are_not_json_are_415s(seeded, method, path):
    client = seeded.app.test_client()
    answer = getattr(client, method)(path.format(**seeded.ids), data="name=x",
                                     headers={**seeded.headers,
                                              "Content-Type": "application/x-www-form-urlencoded"})
    _json_error(answer, 415)


def test_too_large_json_body_is_a_413(seeded):
    raw = json.dumps({"name": "x" * (9 << 20)})
    answer = seeded.app.test_client().post("/api/v1/categories", data=raw, headers={
        **seeded.headers, "Content-Type": "application/json"})
    _json_error(answer, 413)


@pytest.mark.parametrize(("method", "path", "body"), [
    ("patch", "/api/v1/computers/{computer}", {"image_id": 1 << 64}),
    ("patch", "/api/v1/computers/{computer}", {"image_id": -1}),
    ("patch", "/api/v1/computers/{computer}", {"profile_id": 0}),
    ("post", "/api/v1/groups", {"name": "g2", "computer_ids": [1 << 64]}),
    ("post", "/api/v1/tasks", {"kind": "deploy", "computer_id": 1 << 64}),
    ("post", "/api/v1/tasks", {"kind": "deploy", "computer_id": "1"}),
    ("post", "/api/v1/tasks", {"kind": "deploy", "computer_id": {"id": 1}}),
    ("post", "/api/v1/tasks", {"kind": ["deploy"], "computer_id": 1}),
    ("post", "/api/v1/client/progress", {"task_id": 1 << 64}),
    ("post", "/api/v1/client/log", {"task_id": "x", "text": "hi"}),
    ("post", "/api/v1/client/uploads", {"image": ["uploaded"]}),
    ("post", "/api/v1/client/deploys", {"image": "uploaded", "disks": "sda"}),
    ("post", "/api/v1/client/deploys", {"image": "uploaded", "disks": [{"size_bytes": "1"}]}),
    ("post", "/api/v1/multicast/sessions", {"name": "m", "image": {"x": 1}}),
    ("post", "/api/v1/multicast/join", {"session": ["m"], "disks": []}),
    ("post", "/api/v1/images/{uploaded}/profiles", {"name": "p2", "description": 5}),
    ("patch", "/api/v1/categories/{category}", {"name": None}),
    ("patch", "/api/v1/images/{blank}", {"name": "x" * 100000}),
    ("post", "/api/v1/computers", {"name": "pc-2", "client_id": "c" * 100000}),
    ("post", "/api/v1/replication/servers", {"display_name": "p2", "url": "http://x",
                                             "max_imaging_clients": 1 << 70}),
    ("put", "/api/v1/replication/servers/{server}", {"max_bandwidth_kbps": "lots"}),
])
def test_wrongly_typed_or_out_of_range_fields_are_4xx(seeded, method, path, body):
    client = seeded.app.test_client()
    answer = getattr(client, method)(path.format(**seeded.ids), json=body,
                                     headers=seeded.headers)
    status = answer.status_code
    assert 400 <= status < 500, (status, answer.get_data(as_text=True))
    _json_error(answer, status)


@pytest.mark.parametrize("query", [f"task_id={BIG}", "task_id=abc", "task_id=-3"])
def test_bad_query_numbers_are_4xx(seeded, query):
    answer = seeded.app.test_client().get(f"/api/v1/client/cancel?{query}",
                                          headers=seeded.headers)
    assert answer.status_code in (400, 404)
    _json_error(answer, answer.status_code)


def test_unknown_fields_are_refused(seeded):
    client = seeded.app.test_client()
    for path, body in (("/api/v1/tasks", {"kind": "deploy", "computer_id": 1, "owner": "x"}),
                       ("/api/v1/multicast/sessions", {"name": "m", "image": "uploaded",
                                                       "colour": "red"})):
        body_json = _json_error(client.post(path, json=body, headers=seeded.headers), 400)
        assert body_json["field"] in ("owner", "colour")


def test_domain_refusals_keep_their_status_and_roll_back(seeded):
    client = seeded.app.test_client()
    # Protected (it was uploaded): 409 from the image rules, and nothing changed.
    _json_error(client.delete(f"/api/v1/images/{seeded.ids['uploaded']}",
                              headers=seeded.headers), 409)
    # The last profile of an image cannot go: 409.
    blank_profiles = client.get(f"/api/v1/images/{seeded.ids['blank']}/profiles",
                                headers=seeded.headers).get_json()
    _json_error(client.delete(f"/api/v1/images/{seeded.ids['blank']}/profiles/"
                              f"{blank_profiles[0]['id']}", headers=seeded.headers), 409)
    # A module with a bad field: 422 with one message per field.
    body = _json_error(client.post("/api/v1/modules/scripts", json={"name": ""},
                                   headers=seeded.headers), 422)
    assert body["errors"]


def test_unexpected_errors_are_json_500s(seeded, monkeypatch):
    from app.api import images

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(images, "run_search", broken)
    body = _json_error(seeded.app.test_client().get("/api/v1/images",
                                                    headers=seeded.headers), 500)
    assert "disk on fire" not in body["error"]


@pytest.mark.parametrize("limit", [BIG, "15758545090096005120", "0", "-1", "many"])
def test_search_limits_out_of_range_are_400s(seeded, limit):
    answer = seeded.app.test_client().get(f"/api/v1/images?limit={limit}",
                                          headers=seeded.headers)
    assert _json_error(answer, 400)["field"] == "limit"
