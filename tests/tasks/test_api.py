"""The tasks API and the task-mode client calls."""

from __future__ import annotations

from app.extensions import db as _db
from app.models import Image, Task
from tests.tasks.conftest import add_computer, add_image, set_max_clients


def _trade(client, ticket: str, mac: str = "aa:bb:cc:dd:ee:01", **identity) -> dict:
    """Check in with a boot ticket; return the answer (with its task token)."""
    answer = client.post("/api/v1/client/checkin", json={"ticket": ticket, "mac": mac,
                                                           **identity})
    assert answer.status_code == 200, answer.json
    return answer.json


def _image(app, **kwargs) -> tuple[int, int]:
    with app.app_context():
        image = add_image(**kwargs)
        _db.session.commit()
        return image.id, image.profiles[0].id


def test_api_needs_a_token(anon_client):
    assert anon_client.get("/api/v1/computers").status_code == 401
    assert anon_client.post("/api/v1/tasks", json={}).status_code == 401
    assert anon_client.post("/api/v1/client/checkin", json={}).status_code == 401
    assert anon_client.post("/api/v1/client/checkin",
                            json={"ticket": "cbt_forged", "mac": "aa:bb:cc:00:00:01"}
                            ).status_code == 401
    bogus = {"Authorization": "Bearer ctk_not-a-task"}
    assert anon_client.get("/api/v1/tasks/1/cancel", headers=bogus).status_code == 401


def test_task_create_list_cancel_and_poll(app, client, api_headers):
    image_id, _ = _image(app)
    with app.app_context():
        image = _db.session.get(Image, image_id)
        image.profiles[0].web_cancel = True
        cid = add_computer(image=image).id
        _db.session.commit()
    made = client.post("/api/v1/tasks", headers=api_headers,
                       json={"kind": "upload", "computer_id": cid})
    assert made.status_code == 201
    task = made.json["task"]
    assert task["state"] == "created" and task["image"]["id"] == image_id
    token = _trade(client, made.json["ticket"])["token"]
    again = client.post("/api/v1/tasks", headers=api_headers,
                        json={"kind": "deploy", "computer_id": cid})
    assert again.status_code == 409
    active = client.get("/api/v1/tasks", headers=api_headers).json["tasks"]
    assert [t["id"] for t in active] == [task["id"]]
    own = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/tasks/{task['id']}/cancel",
                      headers=own).json == {"cancel": False, "state": "checked_in"}
    cancelled = client.post(f"/api/v1/tasks/{task['id']}/cancel", headers=api_headers)
    assert cancelled.json["task"]["state"] == "cancelled"
    assert client.get(f"/api/v1/tasks/{task['id']}/cancel",
                      headers=own).json == {"cancel": True, "state": "cancelled"}
    assert client.get("/api/v1/tasks", headers=api_headers).json["tasks"] == []
    assert len(client.get("/api/v1/tasks?state=all", headers=api_headers).json["tasks"]) == 1
    assert client.post(f"/api/v1/tasks/{task['id']}/cancel",
                       headers=api_headers).status_code == 409


def test_task_refusals(app, client, api_headers):
    image_id, _ = _image(app, name="gold", protected=True)
    with app.app_context():
        cid = add_computer().id
        _db.session.commit()
    refused = client.post("/api/v1/tasks", headers=api_headers,
                          json={"kind": "upload", "computer_id": cid, "image_id": image_id})
    assert refused.status_code == 409 and "protected" in refused.json["error"]
    assert client.post("/api/v1/tasks", headers=api_headers,
                       json={"kind": "nuke", "computer_id": cid}).status_code == 400
    assert client.post("/api/v1/tasks", headers=api_headers,
                       json={"kind": "deploy", "computer_id": 999}).status_code == 404


def test_checkin_start_and_queue_through_the_api(app, client, api_headers):
    image_id, _ = _image(app)
    with app.app_context():
        set_max_clients(1)
        first = add_computer("one", "aa:bb:cc:00:02:01")
        second = add_computer("two", "aa:bb:cc:00:02:02")
        first.image_id = second.image_id = image_id
        _db.session.commit()
        first_id, second_id = first.id, second.id
    tickets = []
    for cid in (first_id, second_id):
        made = client.post("/api/v1/tasks", headers=api_headers,
                           json={"kind": "deploy", "computer_id": cid})
        tickets.append((made.json["task"]["id"], made.json["ticket"]))
    (t1, ticket1), (t2, ticket2) = tickets
    body = _trade(client, ticket1, "aa:bb:cc:00:02:01", model="M1", serial="S")
    tok1 = body["token"]
    assert body["task"]["id"] == t1 and tok1 and not body["on_demand"]
    assert body["task"]["state"] == "checked_in" and body["computer"]["model"] == "M1"
    assert body["task"]["profile"]["name"] == "default"
    # Checking in again with the task token issues nothing new.
    again = client.post("/api/v1/client/checkin", headers={"Authorization": f"Bearer {tok1}"},
                        json={"mac": "aa:bb:cc:00:02:01"}).json
    assert again["task"]["id"] == t1 and again["token"] is None
    # The second client checks in with the API token and gets its own task token.
    answer2 = client.post("/api/v1/client/checkin", headers=api_headers,
                          json={"mac": "AA:BB:CC:00:02:02"}).json
    assert answer2["task"]["id"] == t2 and answer2["token"]
    new2 = {"Authorization": f"Bearer {answer2['token']}"}
    assert client.post(f"/api/v1/tasks/{t2}/start",
                       headers={"Authorization": f"Bearer {ticket2}"}).status_code == 401
    assert client.post(f"/api/v1/tasks/{t1}/start", headers={
        "Authorization": f"Bearer {tok1}"}).json["state"] == "imaging"
    queued = client.post(f"/api/v1/tasks/{t2}/start", headers=new2).json
    assert queued == {"state": "queued", "position": 1, "cancel": False}
    # A task token only acts on its own task.
    assert client.post(f"/api/v1/tasks/{t1}/start", headers=new2).status_code == 404
    assert client.get(f"/api/v1/tasks/{t2}", headers=new2).json["task"]["queue_position"] == 1
    client.post(f"/api/v1/tasks/{t1}/cancel", headers=api_headers)
    assert client.post(f"/api/v1/tasks/{t2}/start", headers=new2).json["state"] == "imaging"
    assert client.post(f"/api/v1/tasks/{t1}/start", headers={
        "Authorization": f"Bearer {tok1}"}).status_code == 409


def test_checkin_of_an_unknown_client(client, api_headers):
    answer = client.post("/api/v1/client/checkin", headers=api_headers,
                         json={"mac": "aa:bb:cc:00:03:01", "client_id": "u1", "name": "kiosk"})
    assert answer.json["on_demand"] and answer.json["task"] is None
    assert answer.json["computer"]["name"] == "kiosk"
    bad = client.post("/api/v1/client/checkin", headers=api_headers, json={"mac": "nope"})
    assert bad.status_code == 400 and bad.json["field"] == "mac"


def test_openapi_lists_the_paths(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/computers", "/computers/{computer_id}", "/groups", "/groups/{group_id}",
                 "/tasks", "/tasks/{task_id}/cancel", "/client/checkin",
                 "/tasks/{task_id}/start"):
        assert path in paths


def test_web_cancel_reaches_the_imaging_client(app, client, api_headers):
    image_id, _ = _image(app)
    with app.app_context():
        image = _db.session.get(Image, image_id)
        image.profiles[0].web_cancel = True
        cid = add_computer(image=image).id
        _db.session.commit()
    made = client.post("/api/v1/tasks", headers=api_headers,
                       json={"kind": "deploy", "computer_id": cid}).json
    task_id = made["task"]["id"]
    own = {"Authorization": f"Bearer {_trade(client, made['ticket'])['token']}"}
    assert client.post(f"/api/v1/tasks/{task_id}/start", headers=own).json["state"] == "imaging"
    answer = client.post(f"/api/v1/tasks/{task_id}/cancel", headers=api_headers).json
    assert answer["ended"] is False and answer["task"]["cancel_requested"] is True
    # The client's progress report is answered with the stop order, its token still valid.
    progress = client.post("/api/v1/client/progress", headers=own,
                           json={"percent": 10, "bytes_done": 1, "bytes_total": 10})
    assert progress.status_code == 200 and progress.json["cancel"] is True
    assert client.post(f"/api/v1/tasks/{task_id}/log", headers=own,
                       json={"text": "stopped\n"}).status_code == 200
    checkout = client.post("/api/v1/client/checkout", headers=own,
                           json={"ok": False, "cancelled": True, "error": "cancelled"})
    assert checkout.json["task"]["state"] == "cancelled"
    with app.app_context():
        assert _db.session.get(Task, task_id).log == "stopped\n"
