"""A web task end to end: the UI creates it, PXE hands out a boot ticket, the client in task mode
images a real disk-image file, the task ends done (upload, then deploy of that image)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app.extensions import db as _db
from app.models import History, Image, Task
from tests.client.disks import make_disk, read_sums
from tests.conftest import needs_root
from tests.tasks.conftest import add_computer, add_image
from tests.tasks.sysfs import make_sysfs

pytestmark = [needs_root]
ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20
MAC = "52:54:00:ab:cd:01"


@pytest.fixture
def live(app):
    """The module's app served on 127.0.0.1 in a thread."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(5)


def pxe_ticket(live: str) -> str:
    """Fetch the iPXE script as the booting machine would and take its boot ticket."""
    with urllib.request.urlopen(f"{live}/boot/ipxe?mac={MAC}") as response:
        script = response.read().decode()
    assert "castor_ticket=" in script, script
    return script.split("castor_ticket=", 1)[1].split()[0]


def task_mode(live: str, ticket: str, disk: Path, sysfs: Path) -> subprocess.CompletedProcess:
    """Run `castor-client task` for real, as the imaging environment does after boot."""
    argv = [sys.executable, "-m", "client.main", "--server", live, "task", "--ticket", ticket,
            "--disk", str(disk), "--sys-root", str(sysfs), "--dry-run", "--poll", "0.2"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def test_upload_then_deploy_from_the_web_ui(app, client, live, tmp_path):
    source = tmp_path / "source.img"
    sums = make_disk(source, 80, "gpt", [(48, "ext4")], seed=8, big_bytes=3 * MIB)
    sysfs = make_sysfs(tmp_path / "sys", mac=MAC)
    with app.app_context():
        image = add_image("e2e")
        cid = add_computer("lab-pc", MAC, image).id
        _db.session.commit()

    assert client.post(f"/computers/{cid}/upload",
                       data={"confirmed": "1"}).status_code == 303
    proc = task_mode(live, pxe_ticket(live), source, sysfs)
    assert "Task " in proc.stdout and "done" in proc.stdout
    with app.app_context():
        upload = _db.session.scalar(_db.select(Task).filter_by(kind="upload"))
        image = _db.session.scalar(_db.select(Image).filter_by(name="e2e"))
        assert upload.state == "done", upload.error
        assert upload.progress.get("bytes_done", 0) > 0
        assert f"task {upload.id}: upload started" in upload.log
        assert image.protected and image.schema is not None
        actions = {(h.object_type, h.action) for h in _db.session.scalars(_db.select(History))}
        assert {("image", "upload"), ("computer", "upload")} <= actions
    folder = Path(app.config["STORAGE_PATH"]) / "images" / "e2e"
    assert json.loads((folder / "manifest.json").read_text())["image"] == "e2e"
    # Its boot files are gone: the machine boots the default menu again.
    with urllib.request.urlopen(f"{live}/boot/ipxe?mac={MAC}") as response:
        assert "menu Castor" in response.read().decode()
    page = client.get("/tasks/").get_data(as_text=True)
    assert f'id="task-{upload.id}" data-state="done"' in page

    target = tmp_path / "target.img"
    subprocess.run(["truncate", "-s", f"{80 * MIB}", str(target)], check=True)
    assert client.post(f"/computers/{cid}/deploy",
                       data={"confirmed": "1"}).status_code == 303
    task_mode(live, pxe_ticket(live), target, sysfs)
    with app.app_context():
        deploy = _db.session.scalar(_db.select(Task).filter_by(kind="deploy"))
        assert deploy.state == "done", deploy.error
    assert read_sums(target, 1, "ext4") == sums[1]
