"""Chromium: add a computer, start a deploy, watch live progress on /tasks, polling stops."""

from __future__ import annotations

import json
import threading

import pytest
from werkzeug.serving import make_server

from app.extensions import db as _db
from app.models import Task
from app.tasks.service import finish_task
from tests.conftest import create_user, make_app
from tests.tasks.conftest import add_image

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def app(tmp_path):
    """A CSRF-enabled app of its own (this module does not share the tasks app)."""
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def live(app):
    """Serve the app on a free loopback port in a thread."""
    create_user(app, "admin", "correct horse")
    with app.app_context():
        add_image("lab")
        _db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def _set_progress(app, **report) -> None:
    with app.app_context():
        task = _db.session.scalar(_db.select(Task))
        task.state = "imaging"
        task.progress_json = json.dumps(report)
        _db.session.commit()


def test_deploy_from_the_ui_with_live_progress(app, live):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # polling every 2 s on a busy machine
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(live + "/computers/new")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", "correct horse")
            page.click("button[type=submit]")

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
        finally:
            browser.close()
            expect.set_options(timeout=None)  # back to Playwright's default for other tests
