"""The computers and tasks pages: forms, starting and cancelling tasks, live polling."""

from __future__ import annotations

import json

from app.extensions import db as _db
from app.models import Computer, ComputerGroup, History, Task
from app.tasks.service import create_task
from tests.tasks.conftest import add_computer, add_image


def _setup(app) -> tuple[int, int, int]:
    with app.app_context():
        image = add_image("lab")
        computer = add_computer("pc-1", "aa:bb:cc:dd:ee:01", image)
        _db.session.commit()
        return image.id, image.profiles[0].id, computer.id


def test_pages_need_login(anon_client):
    for url in ("/computers/", "/tasks/", "/computers/groups"):
        response = anon_client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_add_and_edit_a_computer(app, client):
    image_id, profile_id, _ = _setup(app)
    form = {"name": "lab-7", "mac": "AA:BB:CC:DD:EE:07", "client_id": "", "description": "",
            "image_id": str(image_id), "profile_id": str(profile_id)}
    response = client.post("/computers/new", data=form)
    assert response.status_code == 303
    with app.app_context():
        computer = _db.session.scalar(_db.select(Computer).filter_by(name="lab-7"))
        assert computer.mac == "aa:bb:cc:dd:ee:07" and computer.profile_id == profile_id
        cid = computer.id
    duplicate = client.post("/computers/new", data={**form, "name": "other"})
    assert duplicate.status_code == 200
    assert "already has the MAC address" in duplicate.get_data(as_text=True)
    wrong = client.post(f"/computers/{cid}", data={**form, "image_id": "None"})
    assert "must belong to the chosen image" in wrong.get_data(as_text=True)
    ok = client.post(f"/computers/{cid}", data={**form, "profile_id": "None",
                                                 "description": "desk 7"})
    assert ok.status_code == 303
    page = client.get(f"/computers/{cid}").get_data(as_text=True)
    assert "desk 7" in page and 'name="csrf_token"' in page
    assert "<h2>History</h2>" in page and "<td>update</td>" in page and "<td>create</td>" in page


def test_search_full_page_and_partial(app, client):
    _setup(app)
    page = client.get("/computers/?q=ee:01").get_data(as_text=True)
    assert "<html" in page and "pc-1" in page
    rows = client.get("/computers/?q=nomatch", headers={"HX-Request": "true"})
    text = rows.get_data(as_text=True)
    assert "<html" not in text and "No computers" in text


def test_deploy_button_creates_a_task_and_the_tasks_page_polls(app, client):
    _image_id, _profile_id, cid = _setup(app)
    response = client.post(f"/computers/{cid}/deploy")
    assert response.status_code == 303 and response.headers["Location"].endswith("/tasks/")
    with app.app_context():
        task = _db.session.scalar(_db.select(Task))
        assert task.kind == "deploy" and task.state == "created"
        task.progress_json = json.dumps({"partition": "hd0 part2", "bytes_done": 5 << 20,
                                         "bytes_total": 10 << 20, "rate_bps": 1 << 20,
                                         "eta_s": 65, "percent": 50.0})
        _db.session.commit()
        task_id = task.id
    page = client.get("/tasks/").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in page and f'id="task-{task_id}"' in page
    assert '<progress max="100" value="50.0">' in page and "1 min 5 s left" in page
    partial = client.get("/tasks/", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.get_data(as_text=True)
    # A second deploy while one is active is refused with a message.
    refused = client.post(f"/computers/{cid}/upload", follow_redirects=True)
    assert "already has an active deploy task" in refused.get_data(as_text=True)
    cancel = client.post(f"/tasks/{task_id}/cancel")
    assert cancel.status_code == 303
    done = client.get("/tasks/", headers={"HX-Request": "true"})
    assert done.status_code == 200  # keeps polling slowly, so a new task shows up
    assert 'data-state="cancelled"' in done.get_data(as_text=True)
    assert "every 2s" not in done.get_data(as_text=True)
    assert 'hx-trigger="every 10s"' in done.get_data(as_text=True)


def test_upload_of_a_protected_image_is_refused_in_the_ui(app, client):
    with app.app_context():
        cid = add_computer("pc-2", "aa:bb:cc:dd:ee:02", add_image("gold", protected=True)).id
        _db.session.commit()
    page = client.post(f"/computers/{cid}/upload", follow_redirects=True)
    assert "protected" in page.get_data(as_text=True)
    with app.app_context():
        assert _db.session.scalar(_db.select(_db.func.count()).select_from(Task)) == 0


def test_empty_progress_and_queue_place_render(app, client):
    _i, _p, cid = _setup(app)
    with app.app_context():
        task, _ = create_task("deploy", _db.session.get(Computer, cid))
        task.progress_json = "not json"
        _db.session.commit()
        task_id = task.id
    page = client.get("/tasks/").get_data(as_text=True)
    assert "no progress yet" in page
    assert client.get(f"/tasks/{task_id}").status_code == 200


def test_groups_pages(app, client):
    _i, _p, first = _setup(app)
    with app.app_context():
        second = add_computer("pc-3", "aa:bb:cc:dd:ee:03").id
        _db.session.commit()
    made = client.post("/computers/groups/new", data={
        "name": "room-a", "description": "", "member_ids": [str(first), str(second)]})
    assert made.status_code == 303
    with app.app_context():
        group = _db.session.scalar(_db.select(ComputerGroup))
        assert [c.name for c in group.members] == ["pc-1", "pc-3"]
        gid = group.id
    client.post(f"/computers/groups/{gid}", data={"name": "room-a", "description": "x"})
    with app.app_context():
        assert _db.session.get(ComputerGroup, gid).members == []
    assert "room-a" in client.get("/computers/groups").get_data(as_text=True)
    if "multicast.new" in app.view_functions:
        page = client.get(f"/computers/groups/{gid}").get_data(as_text=True)
        assert f"/multicast/new?group={gid}" in page
    assert client.post(f"/computers/groups/{gid}/delete").status_code == 303
    with app.app_context():
        assert _db.session.scalar(_db.select(_db.func.count()).select_from(History).filter_by(
            object_type="computer_group")) == 3


def test_delete_computer_refused_while_a_task_is_active(app, client):
    _i, _p, cid = _setup(app)
    client.post(f"/computers/{cid}/deploy")
    page = client.post(f"/computers/{cid}/delete", follow_redirects=True)
    assert "cancel it first" in page.get_data(as_text=True)
    with app.app_context():
        task_id = _db.session.scalar(_db.select(Task.id))
    client.post(f"/tasks/{task_id}/cancel")
    assert client.post(f"/computers/{cid}/delete").status_code == 303
    with app.app_context():
        assert _db.session.get(Computer, cid) is None
