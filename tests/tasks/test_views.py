"""The tasks pages: starting tasks from a computer, cancelling, live polling."""

from __future__ import annotations

import json

from app.extensions import db as _db
from app.models import Computer, Task
from app.tasks.service import create_task
from tests.tasks.conftest import add_computer, add_image, lab_computer


def test_pages_need_login(anon_client):
    for url in ("/tasks/",):
        response = anon_client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_deploy_button_creates_a_task_and_the_tasks_page_polls(app, client):
    _image_id, _profile_id, cid = lab_computer(app)
    response = client.post(f"/computers/{cid}/deploy", data={"confirmed": "1"})
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
    cancel = client.post(f"/tasks/{task_id}/cancel", data={"confirmed": "1"})
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
    _i, _p, cid = lab_computer(app)
    with app.app_context():
        task, _ = create_task("deploy", _db.session.get(Computer, cid))
        task.progress_json = "not json"
        _db.session.commit()
        task_id = task.id
    page = client.get("/tasks/").get_data(as_text=True)
    assert "no progress yet" in page
    assert client.get(f"/tasks/{task_id}").status_code == 200
