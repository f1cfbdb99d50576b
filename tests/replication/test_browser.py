"""Chromium watches the Replication tab update itself while a replication runs."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from app.extensions import db as _db
from app.models import ComServer, Image, Job, ReplicationStatus
from tests.conftest import create_user, make_app

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def live_tab(tmp_path):
    """Serve an app with an image whose replication to 'castor-b' is in progress."""
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    create_user(app, "admin", "correct horse")
    with app.app_context():
        server = ComServer(display_name="castor-b", url="http://127.0.0.1:9",
                           shared_secret="x" * 20)
        image = Image(name="lab", replication_mode="all")
        _db.session.add_all([server, image])
        _db.session.flush()
        _db.session.add(ReplicationStatus(image_id=image.id, server_id=server.id,
                                          state="in_progress", percent=10, rate_bps=1 << 20))
        _db.session.add(Job(id="job-1", kind="replication", object_type="image",
                            object_id=image.id, status="running"))
        _db.session.commit()
        image_id = image.id
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app, image_id
    server.shutdown()
    thread.join(timeout=5)
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def _update(app, **fields) -> None:
    with app.app_context():
        row = _db.session.scalar(_db.select(ReplicationStatus))
        for key, value in fields.items():
            setattr(row, key, value)
        _db.session.commit()


def test_replication_tab_shows_live_status(live_tab):
    from playwright.sync_api import expect, sync_playwright

    base, app, image_id = live_tab
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            page.goto(f"{base}/images/{image_id}/replication")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", "correct horse")
            page.click("button[type=submit]")
            row = page.locator("#replication-status tr[data-server=castor-b]")
            expect(row).to_contain_text("In progress")
            expect(row).to_contain_text("10%")

            _update(app, percent=63, rate_bps=3 << 20)
            expect(row).to_contain_text("63%")  # polled in, no reload
            expect(row).to_contain_text("3.0 MiB/s")

            _update(app, state="replicated", percent=100, bytes_sent=5 << 20)
            with app.app_context():
                _db.session.get(Job, "job-1").status = "finished"
                _db.session.commit()
            expect(row).to_contain_text("Replicated")
            # The last answer stopped the polling: the element lost its trigger.
            expect(page.locator("#replication-status")).not_to_have_attribute(
                "hx-trigger", "every 1s")
        finally:
            browser.close()
