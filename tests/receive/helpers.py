"""A real Castor server process for upload tests: token, image, raw HTTP, process facts."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from pathlib import Path

from app.extensions import db
from app.models import ApiToken, User
from tests.client.helpers import make_image, tiny_schema
from tests.replication.conftest import Instance

BASE = "/api/v1/client"


def upload_server(folder: Path, image: str = "lab") -> tuple[Instance, str]:
    """An instance (not started) with an admin token and an image; return both."""
    instance = Instance("castor-up", folder)
    with instance.app.app_context():
        user = User(username="admin", is_admin=True)
        user.set_password("correct horse")
        row, token = ApiToken.issue(user, "tests")
        db.session.add_all([user, row])
        db.session.commit()
    make_image(instance.app, image)
    return instance, token


def call(instance: Instance, token: str, method: str, path: str,
         body: dict | bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    """Send one request to the instance; return (status, JSON answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=60)
    data = json.dumps(body).encode() if isinstance(body, dict | list) else body
    conn.request(method, BASE + path, body=data, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        **(headers or {})})
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, json.loads(raw or b"{}")


def open_upload(instance: Instance, token: str, image: str = "lab") -> str:
    """Start an upload with a schema; return its id."""
    status, answer = call(instance, token, "POST", "/uploads", {"image": image})
    assert status == 201, answer
    upload_id = answer["upload_id"]
    status, answer = call(instance, token, "PUT", f"/uploads/{upload_id}/schema",
                          tiny_schema())
    assert status == 200, answer
    return upload_id


def worker_pids(instance: Instance) -> list[int]:
    """The server process and its children (the worker that serves requests)."""
    kids = subprocess.run(["pgrep", "-P", str(instance.process.pid)], capture_output=True,
                          text=True).stdout.split()
    return [instance.process.pid, *map(int, kids)]


def io_counter(pids: list[int], key: str) -> int:
    """Sum one /proc/<pid>/io counter (wchar, write_bytes) over processes."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            name, value = line.split(": ")
            if name == key:
                total += int(value)
    return total


def open_files_under(pids: list[int], folder: Path) -> list[str]:
    """Files under a folder that the processes hold open (deleted ones included)."""
    found = []
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(str(folder)):
                found.append(target)
    return found
