"""Take the README's screenshots: dashboard, image list and a profile tab at 1280 and 390 px.

Run `python -m tests.screenshots [folder]` (default docs/screenshots); it serves a seeded
Castor on a free port and drives Debian's Chromium through the shared browser harness.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright

from app.extensions import db
from app.images import service
from app.models import Category, Computer, ComServer, ReplicationStatus, Task
from app.models.base import utcnow
from tests.browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, USERNAME, serve
from tests.conftest import create_user, make_app

WIDTHS = (1280, 390)
PAGES = (("dashboard", "/"), ("images", "/images/"), ("profile", "/images/1/profiles/1/upload"))


def seed(app) -> None:
    """A small lab: images in categories, a running deploy, a replica and its server's
    reported space, a month of activity."""
    with app.app_context():
        lab, office = Category(name="lab"), Category(name="office")
        db.session.add_all([lab, office])
        images = []
        for n, (name, env, kind) in enumerate((
                ("win11-office", "winpe", "file"), ("ubuntu-2404-lab", "linux", "block"),
                ("debian-12-kiosk", "linux", "block"), ("win10-ltsc", "winpe", "file"))):
            image = service.create_image(app.config["STORAGE_PATH"], name=name,
                                         environment=env, image_type=kind,
                                         categories=[office if env == "winpe" else lab])
            image.size_on_server_bytes = (n + 2) * 7 << 30
            image.last_upload_at = utcnow() - timedelta(days=n * 3)
            images.append(image)
        peer = ComServer(display_name="castor-branch", url="http://10.0.0.2:5000",
                         shared_secret="x" * 20, space_free_bytes=1210 << 30,
                         space_total_bytes=1863 << 30,
                         space_checked_at=utcnow() - timedelta(minutes=4))
        peer.space_tried_at = peer.space_checked_at
        pc = Computer(name="lab-pc-07", mac="52:54:00:00:00:07")
        db.session.add_all([peer, pc])
        db.session.flush()
        db.session.add(ReplicationStatus(image_id=images[0].id, server_id=peer.id,
                                         state="replicated", percent=100))
        db.session.add(Task(kind="deploy", state="imaging", computer_id=pc.id,
                            image_id=images[1].id, progress_json=json.dumps(
                                {"percent": 62.0, "message": "sda part2", "eta_s": 95,
                                 "rate_bytes_s": 96 << 20, "bytes_done": 6 << 30,
                                 "bytes_total": 10 << 30})))
        for day in range(30):
            for k in range(day % 4):
                db.session.add(Task(kind="deploy" if k else "upload", state="done",
                                    image_id=images[k % 4].id,
                                    finished_at=utcnow() - timedelta(days=day)))
        db.session.commit()


def take(folder: Path, browser=None) -> list[Path]:
    """Write the screenshots into `folder` (with `browser`, or a Chromium of its own)."""
    if browser is None:
        with sync_playwright() as pw:
            own = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                return take(folder, own)
            finally:
                own.close()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp), WTF_CSRF_ENABLED=True)
        create_user(app, USERNAME, PASSWORD)
        seed(app)
        with serve(app) as url:
            for width in WIDTHS:
                context = browser.new_context(viewport={"width": width, "height": 900})
                page = context.new_page()
                page.goto(url + "/login")
                page.fill("input[name=username]", USERNAME)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_load_state("networkidle")
                for name, path in PAGES:
                    page.goto(url + path)
                    page.wait_for_load_state("networkidle")
                    target = folder / f"{name}-{width}.png"
                    page.screenshot(path=str(target), full_page=True)
                    written.append(target)
                context.close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots")
    for path in take(out):
        print(path)
