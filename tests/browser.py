"""The one browser harness: a CSRF-enabled Castor served in a thread, driven by headless Chromium.

Tests ask for `live` (the server: `.url`, `.app`, `.seed()`) and `page` (a fresh Chromium tab,
dialogs accepted). Chromium is Debian's `/usr/bin/chromium`; Playwright never downloads one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from flask import Flask
from werkzeug.serving import make_server

from app.extensions import db as _db
from tests.conftest import create_user, make_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
USERNAME, PASSWORD = "admin", "correct horse"
# Polling pages refresh every 1-2 s; on a machine shared by many test runs give them time.
TIMEOUT_MS = 20_000


@dataclass
class LiveServer:
    """A running Castor: its base URL and the app (for seeding rows and reading them back)."""

    url: str
    app: Flask

    @contextmanager
    def seed(self) -> Iterator:
        """An app context whose session is committed on exit."""
        with self.app.app_context():
            yield _db.session
            _db.session.commit()


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve an app on a free loopback port in a thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole run (each test gets its own context)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    expect.set_options(timeout=None)


@pytest.fixture
def live(tmp_path) -> Iterator[LiveServer]:
    """A CSRF-enabled app with the admin account, served on a free port."""
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    create_user(app, USERNAME, PASSWORD)
    with serve(app) as url:
        yield LiveServer(url, app)
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def new_page(chromium, *, width: int = 1280, height: int = 900, javascript: bool = True):
    """Open a tab in a fresh browser context (own cookies) that accepts confirm dialogs."""
    context = chromium.new_context(viewport={"width": width, "height": height},
                                   java_script_enabled=javascript)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("dialog", lambda dialog: dialog.accept())
    return page


@pytest.fixture
def page(chromium):
    """A fresh Chromium tab at 1280 px."""
    tab = new_page(chromium)
    yield tab
    tab.context.close()


def login(page, url: str, username: str = USERNAME, password: str = PASSWORD) -> None:
    """Open a URL and sign in on the login page it leads to."""
    page.goto(url)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
