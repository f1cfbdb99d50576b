"""The token API for com servers and for queuing replication."""

from __future__ import annotations

from app.models import ComServer, Image, Job

BODY = {"display_name": "castor-b", "url": "http://10.0.0.2:5000",
        "shared_secret": "a-long-enough-shared-secret", "max_bandwidth_kbps": 4000,
        "role_pxe": False}


def test_com_server_crud(client, api_headers, db):
    api = "/api/v1/replication/servers"
    assert client.get(api, headers=api_headers).json == []
    assert client.get(api).status_code == 401  # the API wants a token, not a session
    created = client.post(api, json=BODY, headers=api_headers)
    assert created.status_code == 201, created.json
    server = created.json
    assert server["has_secret"] and "shared_secret" not in server
    assert (server["role_pxe"], server["role_imaging"], server["max_bandwidth_kbps"]) == \
        (False, True, 4000)
    bad = client.post(api, json={**BODY, "display_name": "other", "url": "nope"},
                      headers=api_headers)
    assert bad.status_code == 422 and bad.json["field"] == "url"
    changed = client.put(f"{api}/{server['id']}", json={"max_bandwidth_kbps": 0},
                         headers=api_headers)
    assert changed.status_code == 200 and changed.json["max_bandwidth_kbps"] == 0
    assert changed.json["url"] == BODY["url"] and changed.json["role_pxe"] is False
    assert db.session.get(ComServer, server["id"]).shared_secret == BODY["shared_secret"]
    assert client.delete(f"{api}/{server['id']}", headers=api_headers).status_code == 204
    assert client.get(f"{api}/{server['id']}", headers=api_headers).status_code == 404


def test_replicate_and_status(client, api_headers, db):
    db.session.add(ComServer(display_name="b", url="http://b:1", shared_secret="x" * 20))
    image = Image(name="lab", replication_mode="all")
    db.session.add(image)
    db.session.commit()
    response = client.post(f"/api/v1/replication/images/{image.id}/replicate",
                           headers=api_headers)
    assert response.status_code == 202 and len(response.json["jobs"]) == 1
    assert db.session.get(Job, response.json["jobs"][0]).kind == "replication"
    status = client.get(f"/api/v1/replication/images/{image.id}/status", headers=api_headers)
    assert [(row["server"], row["state"]) for row in status.json] == [("b", "pending")]


def test_openapi_lists_replication_paths(client, api_headers):
    paths = client.get("/api/v1/openapi.json", headers=api_headers).json["paths"]
    assert "/replication/images/{name}/commit" in paths
    assert "/replication/servers" in paths
