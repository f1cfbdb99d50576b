"""Fixtures of the client tests: a real Castor server on loopback with an API token."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app.extensions import db
from app.models import ApiToken, User
from tests.conftest import make_app

MIB = 1 << 20


class KillSwitch:
    """WSGI middleware: once armed, calls a hook in the middle of a file upload's body."""

    def __init__(self, app) -> None:
        self.app = app
        self.hook = None

    def __call__(self, environ, start_response):
        hook = self.hook
        if hook is not None and environ["REQUEST_METHOD"] == "PUT" and "/files/hd0/part2" in (
                environ["PATH_INFO"]):
            self.hook = None
            environ["wsgi.input"] = _FiringInput(environ["wsgi.input"], hook)
        return self.app(environ, start_response)


class _FiringInput:
    """A request body that fires a hook once 2 MiB of it were read."""

    def __init__(self, inner, hook) -> None:
        self.inner, self.hook, self.seen = inner, hook, 0

    def _count(self, n: int) -> None:
        self.seen += n
        if self.hook is not None and self.seen > 2 * MIB:
            hook, self.hook = self.hook, None
            hook()

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self._count(len(data))
        return data

    def readinto(self, buffer) -> int:
        n = self.inner.readinto(buffer)
        self._count(n or 0)
        return n

    def readline(self, size: int = -1) -> bytes:
        return self.inner.readline(size)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Castor server on 127.0.0.1 with an admin API token."""
    tmp = tmp_path_factory.mktemp("server")
    app = make_app(tmp)
    with app.app_context():
        user = User(username="admin", is_admin=True)
        user.set_password("x")
        row, token = ApiToken.issue(user, "e2e")
        db.session.add_all([user, row])
        db.session.commit()
    switch = KillSwitch(app)
    httpd = make_server("127.0.0.1", 0, switch, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {"app": app, "url": f"http://127.0.0.1:{httpd.server_port}", "token": token,
           "storage": Path(app.config["STORAGE_PATH"]), "tmp": tmp, "switch": switch}
    httpd.shutdown()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


