"""Chromium: add a computer, start a deploy, watch live progress on /tasks, polling stops."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from app.extensions import db as _db
from app.models import Task
from app.tasks.service import finish_task
from tests.browser import login
from tests.tasks.conftest import add_image

pytestmark = pytest.mark.browser


@pytest.fixture
def app(live):
    """The served app (this module does not share the tasks app); it holds an image 'lab'."""
    with live.seed():
        add_image("lab")
    return live.app


def _set_progress(app, **report) -> None:
    with app.app_context():
        task = _db.session.scalar(_db.select(Task))
        task.state = "imaging"
        task.progress_json = json.dumps(report)
        _db.session.commit()


def test_deploy_from_the_ui_with_live_progress(app, live, page):
    login(page, live.url + "/computers/new")
    page.fill("input[name=name]", "lab-01")
    page.fill("input[name=mac]", "52-54-00-00-00-01")
    page.select_option("select[name=image_id]", label="lab")
    page.click("button:has-text('Add computer')")
    expect(page.locator(".flash")).to_contain_text("Computer lab-01 added.")

    page.click("nav >> text=Computers")
    page.fill("input[name=q]", "00:01")
    expect(page.locator("#computer-rows")).to_contain_text("52:54:00:00:00:01")
    page.click("#computer-rows >> button:has-text('Deploy')")
    expect(page.locator(".flash")).to_contain_text("Deploy task")
    row = page.locator("#task-list tr[data-state]").first
    expect(row).to_contain_text("created")
    expect(row).to_contain_text("no progress yet")

    # The client reports progress: the page shows it without a reload.
    _set_progress(app, message="hd0 part1", bytes_done=30 << 20, bytes_total=60 << 20,
                  rate_bytes_s=10 << 20, eta_s=3, percent=50.0)
    expect(row.locator("progress")).to_have_attribute("value", "50.0")
    expect(row).to_contain_text("imaging")
    expect(row).to_contain_text("hd0 part1")

    with app.app_context():
        finish_task(_db.session.scalar(_db.select(Task)), "done")
        _db.session.commit()
    expect(page.locator("#task-list")).to_contain_text("No active tasks")
    expect(page.locator("#task-list")).not_to_have_attribute("hx-trigger", "every 2s")
