"""Chromium drives the image pages: login, create, search, protected delete, bulk delete."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from app.extensions import db as _db
from app.images import service
from tests.conftest import create_user, make_app

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def live_server(tmp_path):
    """Serve a CSRF-enabled app on a free loopback port in a thread."""
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    create_user(app, "admin", "correct horse")
    with app.app_context():
        for name in ("alpha", "beta"):
            service.create_image(app.config["STORAGE_PATH"], name=name, environment="linux",
                                 image_type="block")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    thread.join(timeout=5)
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def test_login_create_search_and_delete(live_server):
    from playwright.sync_api import expect, sync_playwright

    base, app = live_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            page.on("dialog", lambda dialog: dialog.accept())

            page.goto(base + "/images/")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", "correct horse")
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Images")

            page.click("text=New Image")
            page.fill("input[name=name]", "gold-master")
            page.select_option("select[name=environment]", "winpe")
            page.select_option("select[name=image_type]", "both")
            page.fill("textarea[name=description]", "Protected golden image")
            page.check("input[name=protected]")
            page.click("text=Add Image")
            expect(page.locator(".flash")).to_contain_text("Image gold-master created.")

            # Active search: typing swaps only the rows and pushes the URL.
            page.click("nav >> text=Images")
            page.fill("input[name=q]", "gold")
            expect(page.locator("#results")).to_contain_text("Showing 1 of 1 image.")
            expect(page.locator("#results")).not_to_contain_text("alpha")
            expect(page).to_have_url(f"{base}/images/?q=gold&mode=any&limit=25")

            # Deleting a protected image is refused with a message.
            page.click("#results >> text=gold-master")
            page.click("text=Delete Image")
            expect(page.locator(".flash-error")).to_contain_text("gold-master is protected")

            # Bulk delete: select all, confirm, protected one skipped and named.
            page.goto(base + "/images/")
            expect(page.locator("#results")).to_contain_text("Showing 3 of 3 images.")
            page.check("[data-select-all]")
            page.click("text=Delete Selected Images")
            expect(page.locator(".flash-success")).to_contain_text(
                "Deleted 2 image(s): alpha, beta.")
            expect(page.locator(".flash-error")).to_contain_text(
                "Skipped protected image(s): gold-master.")
            expect(page.locator("#results")).to_contain_text("Showing 1 of 1 image.")
        finally:
            browser.close()
