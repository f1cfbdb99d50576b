"""Chromium on the tasks page: a new task appears without a reload, done shows no ETA."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from app.extensions import db as _db
from app.models import Task
from app.tasks.service import finish_task
from tests.browser import login
from tests.tasks.conftest import add_image

pytestmark = pytest.mark.browser


@pytest.fixture
def image_id(live):
    """A placeholder image 'lab' with its default profile."""
    with live.seed():
        image = add_image("lab")
        return image.id


def test_tasks_page_shows_a_task_started_after_it_loaded(live, page, image_id):
    login(page, live.url + "/tasks/")
    expect(page.locator("#task-list")).to_contain_text("No active tasks")
    with live.seed() as session:
        session.add(Task(kind="deploy", state="imaging", image_id=image_id, on_demand=True,
                         progress_json=json.dumps({"percent": 51.0, "eta_s": 2,
                                                   "message": "hd0 part1"})))
    row = page.locator("#task-list tr[data-state=imaging]")
    expect(row.locator("progress")).to_have_attribute("value", "51.0")
    expect(row).to_contain_text("2 s left")
    with live.seed() as session:
        finish_task(session.scalar(_db.select(Task)), "done")
    done = page.locator("#task-list tr[data-state=done]")
    expect(done).to_contain_text("done")
    expect(page.locator("#task-list")).not_to_contain_text("left")
    expect(page.locator("#task-list")).to_have_attribute("hx-trigger", "every 10s")

    page.click("#task-list tr[data-state=done] a")
    expect(page.locator("h1")).to_contain_text("Task 1")
    times = page.locator("p.muted").first.inner_text()
    assert re.search(r"\d\d:\d\d:\d\d", times) and not re.search(r":\d\d\.\d+", times), times
    expect(page.locator("section.card").first).to_contain_text("finished")
    expect(page.locator("section.card").first).not_to_contain_text("left")
