"""A real Castor server on loopback for the boot matrix, and the real client against it."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from werkzeug.serving import make_server

from app.extensions import db
from app.models import ApiToken, Image, User
from tests.client.helpers import make_image
from tests.conftest import make_app

ROOT = Path(__file__).resolve().parents[2]


class CastorServer:
    """A threaded Castor server with an admin API token, serving until stopped."""

    def __init__(self, tmp: Path) -> None:
        self.app = make_app(tmp)
        with self.app.app_context():
            user = User(username="admin", is_admin=True)
            user.set_password("x")
            row, self.token = ApiToken.issue(user, "boot-matrix")
            db.session.add_all([user, row])
            db.session.commit()
        self.httpd = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and release the database."""
        self.httpd.shutdown()
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()

    def new_image(self, name: str, image_type: str) -> None:
        """Create an image with its default profile."""
        make_image(self.app, name, image_type)

    def set_profile(self, image: str, **options) -> None:
        """Change options of an image's default profile."""
        with self.app.app_context():
            row = db.session.scalar(db.select(Image).filter_by(name=image))
            for key, value in options.items():
                setattr(row.profiles[0], key, value)
            db.session.commit()

    def client(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """Run `castor-client` against this server; fail with its log when it fails."""
        argv = [sys.executable, "-m", "client.main", "--server", self.url, "--token",
                self.token, *args]
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"castor-client {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stderr[-4000:]}")
        return proc
