"""Chromium on the dashboard: live per-machine progress, multicast, storage, replication, chart."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from app.extensions import db as _db
from app.models import (
    Computer,
    ComServer,
    Image,
    Job,
    MulticastSession,
    ReplicationStatus,
    Task,
)
from app.models.base import utcnow
from app.tasks.service import finish_task
from tests.browser import login

pytestmark = pytest.mark.browser


@pytest.fixture
def busy(live):
    """A running deploy to lab-01, a live multicast session, a replica, finished tasks."""
    with live.seed() as session:
        image = Image(name="lab", size_on_server_bytes=3 << 30, last_upload_at=utcnow())
        computer = Computer(name="lab-01", mac="52:54:00:00:00:01")
        server = ComServer(display_name="castor-b", url="http://127.0.0.1:9",
                           shared_secret="x" * 20)
        session.add_all([image, computer, server])
        session.flush()
        session.add(Task(kind="deploy", state="imaging", computer_id=computer.id,
                         image_id=image.id, progress_json=json.dumps(
                             {"percent": 20.0, "message": "hd0 part2", "eta_s": 40})))
        session.add(MulticastSession(name="room-12", image_id=image.id, expected_clients=3,
                                     state="waiting"))
        session.add(ReplicationStatus(image_id=image.id, server_id=server.id,
                                      state="replicated", percent=100))
        day = utcnow() - timedelta(days=3)
        for kind in ("upload", "deploy", "deploy"):
            session.add(Task(kind=kind, state="done", image_id=image.id, finished_at=day))
    return live


def test_dashboard_shows_live_tasks_multicast_storage_replication_and_chart(busy, page):
    login(page, busy.url + "/")
    expect(page.locator("h1")).to_have_text("Dashboard")
    row = page.locator("#dashboard-tasks tr[data-state]").first
    expect(row).to_contain_text("lab-01")
    expect(row.locator("progress")).to_have_attribute("value", "20.0")
    expect(page.locator("#dashboard-multicast")).to_contain_text("room-12")
    expect(page.locator("#dashboard-multicast")).to_contain_text("0 of 3 clients")
    storage = page.locator("#dashboard-storage")
    expect(storage).to_contain_text("This server")
    expect(storage).to_contain_text("3.0 GiB")
    expect(storage.locator("tr:has-text('castor-b')")).to_contain_text("3.0 GiB")
    expect(page.locator("#dashboard-replication")).to_contain_text("replicated 1 image copy")
    chart = page.locator("#activity-chart")
    expect(chart.locator("rect.bar.deploy")).to_have_attribute("data-count", "2")
    expect(chart.locator("rect.bar.upload")).to_have_attribute("data-count", "1")

    # Progress moves without a reload; a finished task leaves; a new one appears.
    with busy.seed() as session:
        task = session.scalar(_db.select(Task).filter_by(state="imaging"))
        task.progress_json = json.dumps({"percent": 75.0, "message": "hd0 part3"})
    expect(row.locator("progress")).to_have_attribute("value", "75.0")
    with busy.seed() as session:
        finish_task(session.scalar(_db.select(Task).filter_by(state="imaging")), "done")
        session.get(MulticastSession, 1).state = "done"
    expect(page.locator("#dashboard-live")).to_have_attribute("data-busy", "no")
    expect(page.locator("#dashboard-live")).to_contain_text("Nothing is running")
    with busy.seed() as session:
        session.add(Task(kind="upload", state="queued", image_id=1, computer_id=1))
    expect(page.locator("#dashboard-tasks tr[data-state=queued]")).to_contain_text("lab-01")


def test_storage_refresh_asks_the_peers_and_the_card_updates_itself(busy, page):
    from jobs.worker import make_worker

    login(page, busy.url + "/")
    cell = page.locator("#dashboard-storage tr[data-server='castor-b'] td.space")
    expect(cell).to_have_text("not reported yet")
    page.click("#refresh-storage")
    expect(page.locator("#flashes")).to_contain_text("Asking 1 server for their free space.")
    card = page.locator("#dashboard-storage-card")
    expect(card).to_have_attribute("data-refreshing", "yes")
    expect(page.locator("#refresh-storage")).to_be_disabled()
    make_worker(busy.app, simple=True).work(burst=True)  # nobody listens on castor-b's port
    expect(card).to_have_attribute("data-refreshing", "no")  # swapped in without a reload
    expect(cell).to_contain_text("unreachable: [Errno 111] Connection refused")
    expect(cell).to_contain_text("never reported")
    expect(page.locator("#refresh-storage")).to_be_enabled()


def test_retry_sends_a_failed_delete_again_and_the_failure_leaves_the_card(busy, page):
    with busy.seed() as session:
        server = session.scalar(_db.select(ComServer))
        session.add(Job(id="f" * 32, kind="replication_delete", object_type="com_server",
                        object_id=server.id, status="failed", message="delete old on castor-b",
                        error="deleting old on castor-b failed: unreachable",
                        arguments=json.dumps(["old", server.id])))
    login(page, busy.url + "/")
    failure = page.locator("#dashboard-propagation-failures li")
    expect(failure).to_contain_text("delete old on castor-b")
    failure.locator("button", has_text="Retry").click()
    expect(page.locator("#flashes")).to_contain_text("Queued again: delete old on castor-b.")
    expect(page.locator("#dashboard-propagation-failures")).to_have_count(0)
