"""Chromium watches the Replication tab update itself while a replication runs."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.extensions import db as _db
from app.models import ComServer, Image, Job, ReplicationStatus
from tests.browser import login

pytestmark = pytest.mark.browser


@pytest.fixture
def replicating(live):
    """An image whose replication to 'castor-b' is in progress; returns its id."""
    with live.seed() as session:
        server = ComServer(display_name="castor-b", url="http://127.0.0.1:9",
                           shared_secret="x" * 20)
        image = Image(name="lab", replication_mode="all")
        session.add_all([server, image])
        session.flush()
        session.add(ReplicationStatus(image_id=image.id, server_id=server.id,
                                      state="in_progress", percent=10, rate_bps=1 << 20))
        session.add(Job(id="job-1", kind="replication", object_type="image",
                        object_id=image.id, status="running"))
        image_id = image.id
    return image_id


def _update(app, **fields) -> None:
    with app.app_context():
        row = _db.session.scalar(_db.select(ReplicationStatus))
        for key, value in fields.items():
            setattr(row, key, value)
        _db.session.commit()


def test_replication_tab_shows_live_status(live, replicating, page):
    login(page, f"{live.url}/images/{replicating}/replication")
    row = page.locator("#replication-status tr[data-server=castor-b]")
    expect(row).to_contain_text("In progress")
    expect(row).to_contain_text("10%")

    _update(live.app, percent=63, rate_bps=3 << 20)
    expect(row).to_contain_text("63%")  # polled in, no reload
    expect(row).to_contain_text("3.0 MiB/s")

    _update(live.app, state="replicated", percent=100, bytes_sent=5 << 20)
    with live.seed() as session:
        session.get(Job, "job-1").status = "finished"
    expect(row).to_contain_text("Replicated")
    # The last answer stopped the polling: the element lost its trigger.
    expect(page.locator("#replication-status")).not_to_have_attribute("hx-trigger", "every 1s")


def test_selective_with_no_server_is_refused_and_replicate_now_needs_an_upload(live, page):
    with live.seed() as session:
        session.add(ComServer(display_name="castor-c", url="http://127.0.0.1:9",
                              shared_secret="y" * 20))
        image = Image(name="never-uploaded")
        session.add(image)
        session.flush()
        image_id = image.id
    login(page, f"{live.url}/images/{image_id}/replication")
    expect(page.locator("text=Replicate Now")).to_have_count(0)
    expect(page.locator("[data-field=replicate-now]")).to_contain_text("Nothing uploaded yet")

    page.select_option("select[name=mode]", "selective")
    page.click("text=Update Image")
    expect(page.locator(".error")).to_contain_text("at least one server")
    with live.app.app_context():
        assert _db.session.get(Image, image_id).replication_mode == "global"
