"""The image page's live imaging progress partial."""

from __future__ import annotations

import json

from app.extensions import db
from app.models import Task
from tests.client.helpers import make_image


def test_progress_partial_polls_fast_while_running_then_slowly(app, client):
    image_id = make_image(app)
    with app.app_context():
        task = Task(kind="deploy", image_id=image_id, state="imaging", on_demand=True,
                    progress_json=json.dumps({"message": "hd0 part2", "percent": 42.5,
                                              "rate_bytes_s": 10485760, "eta_s": 75}))
        db.session.add(task)
        db.session.commit()
        task_id = task.id
    url = f"/images/{image_id}/progress"
    page = client.get(url)
    assert page.status_code == 200 and b"<html" in page.data and b"42.5" in page.data
    partial = client.get(url, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and b"<html" not in partial.data
    assert b'hx-trigger="every 2s"' in partial.data and b"10.0 MiB/s" in partial.data
    with app.app_context():
        db.session.get(Task, task_id).state = "done"
        db.session.commit()
    done = client.get(url, headers={"HX-Request": "true"})
    assert done.status_code == 200 and b"every 2s" not in done.data
    assert b'hx-trigger="every 10s"' in done.data and b'hx-swap-oob="true"' in done.data


def test_progress_needs_login_and_known_image(app, client, anon_client):
    image_id = make_image(app)
    assert anon_client.get(f"/images/{image_id}/progress").status_code == 302
    assert client.get("/images/999/progress").status_code == 404
