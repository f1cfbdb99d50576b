"""The computers and groups pages: add, edit, search, members, delete."""

from __future__ import annotations

from app.extensions import db as _db
from app.models import Computer, ComputerGroup, History, Task
from tests.tasks.conftest import add_computer, lab_computer


def test_pages_need_login(anon_client):
    for url in ("/computers/", "/computers/groups"):
        response = anon_client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_add_and_edit_a_computer(app, client):
    image_id, profile_id, _ = lab_computer(app)
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
    lab_computer(app)
    page = client.get("/computers/?q=ee:01").get_data(as_text=True)
    assert "<html" in page and "pc-1" in page
    rows = client.get("/computers/?q=nomatch", headers={"HX-Request": "true"})
    text = rows.get_data(as_text=True)
    assert "<html" not in text and "No computers" in text


def test_groups_pages(app, client):
    _i, _p, first = lab_computer(app)
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
    deleted = client.post(f"/computers/groups/{gid}/delete", data={"confirmed": "1"})
    assert deleted.status_code == 303
    with app.app_context():
        assert _db.session.scalar(_db.select(_db.func.count()).select_from(History).filter_by(
            object_type="computer_group")) == 3


def test_delete_computer_refused_while_a_task_is_active(app, client):
    _i, _p, cid = lab_computer(app)
    client.post(f"/computers/{cid}/deploy", data={"confirmed": "1"})
    page = client.post(f"/computers/{cid}/delete", follow_redirects=True)
    assert "cancel it first" in page.get_data(as_text=True)
    with app.app_context():
        task_id = _db.session.scalar(_db.select(Task.id))
    client.post(f"/tasks/{task_id}/cancel", data={"confirmed": "1"})
    assert client.post(f"/computers/{cid}/delete", data={"confirmed": "1"}).status_code == 303
    with app.app_context():
        assert _db.session.get(Computer, cid) is None

