"""Replication between three real Castor instances over loopback HTTP."""

from __future__ import annotations

import re
import shutil
import threading
import time

import pytest

from app import storage
from app.extensions import db
from app.filters import human_bytes
from app.models import ComServer, Image, Job, ReplicationStatus
from app.replication import queue_one, queue_replication
from tests.conftest import create_user, sign_in
from tests.replication.conftest import make_image, run_worker

MIB = 1 << 20


def _status(instance, image_id: int, server_id: int) -> ReplicationStatus:
    with instance.app.app_context():
        row = db.session.scalar(db.select(ReplicationStatus)
                                .filter_by(image_id=image_id, server_id=server_id))
        db.session.expunge(row)
        return row


def _replicate(instance, image_id: int, server_id: int | None = None) -> list[str]:
    """Queue replication (all targets, or one server) and run the jobs; return job ids."""
    with instance.app.app_context():
        image = db.session.get(Image, image_id)
        if server_id is None:
            jobs = queue_replication(image, force=True)
        else:
            from app.models import ComServer

            jobs = [queue_one(image, db.session.get(ComServer, server_id))]
        ids = [job.id for job in jobs]
    run_worker(instance)
    return ids


def _job(instance, job_id: str) -> Job:
    with instance.app.app_context():
        row = db.session.get(Job, job_id)
        db.session.expunge(row)
        return row


def test_replicates_to_two_then_sends_nothing_when_unchanged(trio):
    a, b, c, ids = trio
    image_id = make_image(a, "two-targets", [MIB, 2 * MIB, 3000])
    job_ids = _replicate(a, image_id)
    assert len(job_ids) == 2
    for job_id in job_ids:
        assert _job(a, job_id).status == "finished", _job(a, job_id).error
    for target, key in ((b, "b"), (c, "c")):
        folder = target.image_folder("two-targets")
        assert storage.verify_folder(folder) == []
        assert (folder / "schema.json").read_bytes() == \
            (a.image_folder("two-targets") / "schema.json").read_bytes()
        status = _status(a, image_id, ids[key])
        assert status.state == "replicated"
        assert status.bytes_sent == 3 * MIB + 3000 + (folder / "schema.json").stat().st_size
        with target.app.app_context():
            replica = db.session.scalar(db.select(Image).filter_by(name="two-targets"))
            assert replica is not None and replica.replication_mode == "none"

    job_ids = _replicate(a, image_id)
    for job_id, key in zip(job_ids, ("b", "c"), strict=True):
        assert "0 bytes sent" in _job(a, job_id).message
        assert _status(a, image_id, ids[key]).bytes_sent == 0


def test_corrupted_file_on_target_is_detected_and_resent(trio):
    a, b, _c, ids = trio
    image_id = make_image(a, "corrupt-me", [MIB, MIB], mode="selective")
    with a.app.app_context():
        from app.models import ComServer

        image = db.session.get(Image, image_id)
        image.replication_servers = [db.session.get(ComServer, ids["b"])]
        db.session.commit()
    _replicate(a, image_id)
    victim = b.image_folder("corrupt-me") / "hd0/part2.ext4.partclone.zst"
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert storage.verify_folder(b.image_folder("corrupt-me")) != []

    _replicate(a, image_id)
    status = _status(a, image_id, ids["b"])
    assert status.state == "replicated"
    assert status.bytes_sent == MIB  # only the damaged file went again
    assert storage.verify_folder(b.image_folder("corrupt-me")) == []


def test_selective_sends_only_where_chosen(trio):
    a, b, c, ids = trio
    image_id = make_image(a, "only-c", [MIB], mode="selective")
    with a.app.app_context():
        from app.models import ComServer

        image = db.session.get(Image, image_id)
        image.replication_servers = [db.session.get(ComServer, ids["c"])]
        db.session.commit()
    job_ids = _replicate(a, image_id)
    assert len(job_ids) == 1
    assert storage.verify_folder(c.image_folder("only-c")) == []
    assert not b.image_folder("only-c").exists()


def test_mode_none_sends_nothing(trio):
    a, b, c, _ids = trio
    image_id = make_image(a, "stay-home", [1000], mode="none")
    assert _replicate(a, image_id) == []
    assert not b.image_folder("stay-home").exists()
    assert not c.image_folder("stay-home").exists()


def test_killed_target_keeps_old_copy_and_resumes(trio):
    a, b, _c, ids = trio
    image_id = make_image(a, "resume-me", [MIB, 3 * MIB])
    _replicate(a, image_id, ids["b"])
    old_manifest = (b.image_folder("resume-me") / "manifest.json").read_bytes()

    # A new upload replaces the files; the second one is big and slowed to ~2 MB/s.
    folder = a.image_folder("resume-me")
    storage.delete_image(a.storage, "resume-me")
    with a.app.app_context():
        db.session.delete(db.session.get(Image, image_id))
        db.session.commit()
    image_id = make_image(a, "resume-me", [MIB, 3 * MIB])
    a.set_peer(ids["b"], max_bandwidth_kbps=16000)
    parts = b.storage / "incoming" / "resume-me"

    def kill_midway() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            received = storage.folder_size(parts / "tree") + storage.folder_size(parts / "parts")
            if received > 2 * MIB:
                b.kill()
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_midway)
    killer.start()
    try:
        first = _replicate(a, image_id, ids["b"])[0]
    finally:
        killer.join()
    job = _job(a, first)
    assert job.status == "failed"
    assert "unreachable" in job.error
    status = _status(a, image_id, ids["b"])
    assert status.state == "failed" and "unreachable" in status.error
    assert status.last_try_at is not None
    # The previous complete copy is still there, untouched.
    assert (b.image_folder("resume-me") / "manifest.json").read_bytes() == old_manifest
    assert storage.verify_folder(b.image_folder("resume-me")) == []

    b.start()
    a.set_peer(ids["b"], max_bandwidth_kbps=0)
    second = _replicate(a, image_id, ids["b"])[0]
    assert _job(a, second).status == "finished", _job(a, second).error
    status = _status(a, image_id, ids["b"])
    assert status.state == "replicated"
    total = sum(e["size_bytes"] for e in storage.read_manifest(folder)["files"])
    assert 0 < status.bytes_sent < total - 2 * MIB + 256 * 1024
    assert storage.read_manifest(b.image_folder("resume-me")) == storage.read_manifest(folder)
    assert storage.verify_folder(b.image_folder("resume-me")) == []


def test_wrong_secret_fails_with_a_clear_error(trio):
    a, b, _c, ids = trio
    image_id = make_image(a, "bad-secret", [1000])
    a.set_peer(ids["b"], shared_secret="not-the-secret")
    try:
        job_id = _replicate(a, image_id, ids["b"])[0]
    finally:
        with b.app.app_context():
            from app.models import ComServer

            secret = db.session.scalar(db.select(ComServer).filter_by(is_local=False))
            a.set_peer(ids["b"], shared_secret=secret.shared_secret)
    job = _job(a, job_id)
    assert job.status == "failed"
    assert "bad signature" in job.error
    assert _status(a, image_id, ids["b"]).state == "failed"
    assert not b.image_folder("bad-secret").exists()


def test_delete_and_rename_propagate(trio):
    a, b, c, _ids = trio
    image_id = make_image(a, "to-rename", [1000])
    _replicate(a, image_id)
    assert b.image_folder("to-rename").exists() and c.image_folder("to-rename").exists()
    from app.replication import propagate_delete, propagate_rename

    with a.app.app_context():
        assert len(propagate_rename("to-rename", "renamed")) == 2
    run_worker(a)
    for target in (b, c):
        assert not target.image_folder("to-rename").exists()
        assert storage.verify_folder(target.image_folder("renamed")) == []
        with target.app.app_context():
            assert db.session.scalar(db.select(Image).filter_by(name="renamed")) is not None
    with a.app.app_context():
        assert len(propagate_delete("renamed")) == 2
    run_worker(a)
    for target in (b, c):
        assert not target.image_folder("renamed").exists()
        with target.app.app_context():
            assert db.session.scalar(db.select(Image).filter_by(name="renamed")) is None


def test_source_manifest_lying_about_a_size_fails_and_target_keeps_its_copy(trio):
    a, b, _c, ids = trio
    image_id = make_image(a, "liar", [5000])
    _replicate(a, image_id, ids["b"])
    before = (b.image_folder("liar") / "manifest.json").read_bytes()
    folder = a.image_folder("liar")
    manifest = storage.read_manifest(folder)
    (folder / "hd0/part1.ext4.partclone.zst").write_bytes(b"x" * 6000)
    job_id = _replicate(a, image_id, ids["b"])[0]
    job = _job(a, job_id)
    assert job.status == "failed" and "manifest lies" in job.error
    assert storage.read_manifest(folder) == manifest  # the source is left as it was
    assert (b.image_folder("liar") / "manifest.json").read_bytes() == before
    assert storage.verify_folder(b.image_folder("liar")) == []


def test_bandwidth_limit_holds_on_the_wire(trio):
    a, _b, c, ids = trio
    image_id = make_image(a, "slow-lane", [3 * MIB // 2], mode="none")
    a.set_peer(ids["c"], max_bandwidth_kbps=4000)  # 500,000 bytes a second
    try:
        started = time.monotonic()
        _replicate(a, image_id, ids["c"])
        elapsed = time.monotonic() - started
    finally:
        a.set_peer(ids["c"], max_bandwidth_kbps=0)
    status = _status(a, image_id, ids["c"])
    assert status.state == "replicated"
    # 1.5 MiB less the bucket's quarter-second burst cannot go faster than ~2.9 s.
    assert elapsed >= 2.8
    assert status.rate_bps <= 550_000  # the burst lets the average sit a little above


@pytest.fixture(scope="module")
def web(trio):
    """A browser-like client of A: signed in as an admin, CSRF tokens checked."""
    a = trio[0]
    client = a.app.test_client()
    sign_in(a.app, client, create_user(a.app))
    a.app.config["WTF_CSRF_ENABLED"] = True
    try:
        yield client
    finally:
        a.app.config["WTF_CSRF_ENABLED"] = False


def _csrf(client, image_id: int) -> str:
    """Read the CSRF token from the image's General page, as a browser would."""
    page = client.get(f"/images/{image_id}").text
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def _protect(instance, name: str) -> None:
    with instance.app.app_context():
        db.session.scalar(db.select(Image).filter_by(name=name)).protected = True
        db.session.commit()


def _row(instance, name: str) -> Image | None:
    with instance.app.app_context():
        return db.session.scalar(db.select(Image).filter_by(name=name))


def test_deleting_in_the_web_ui_deletes_on_the_peers_except_a_protected_copy(trio, web):
    a, b, c, _ids = trio
    image_id = make_image(a, "web-delete", [2000])
    _replicate(a, image_id)
    _protect(c, "web-delete")  # c's admin keeps its copy
    token = _csrf(web, image_id)
    answer = web.post(f"/images/{image_id}/delete", data={"csrf_token": token,
                                                          "confirmed": "1"})
    assert answer.status_code == 303
    page = web.get(answer.headers["Location"]).text
    assert "Image web-delete deleted." in page
    assert "The deletion is queued on 2 other servers: castor-b, castor-c." in page
    assert not a.image_folder("web-delete").exists() and _row(a, "web-delete") is None

    run_worker(a)
    assert not b.image_folder("web-delete").exists() and _row(b, "web-delete") is None
    assert storage.verify_folder(c.image_folder("web-delete")) == []
    assert _row(c, "web-delete") is not None
    with a.app.app_context():
        jobs = {job.message: job for job in db.session.scalars(
            db.select(Job).filter_by(kind="replication_delete"))}
    assert jobs["web-delete: deleted"].status == "finished"
    refused = jobs["delete web-delete on castor-c"]
    assert refused.status == "failed" and "is protected here" in refused.error
    dashboard = web.get("/").text
    assert "delete web-delete on castor-c" in dashboard and "is protected here" in dashboard


def test_renaming_in_the_web_ui_renames_on_the_peers(trio, web):
    a, b, c, ids = trio
    image_id = make_image(a, "web-old", [3000, 1000])
    _replicate(a, image_id)
    _protect(b, "web-old")  # protected means kept, not frozen: a rename still follows
    token = _csrf(web, image_id)
    answer = web.post(f"/images/{image_id}", data={
        "csrf_token": token, "name": "web-new", "description": "", "enabled": "y",
        "on_demand": "y"})
    assert answer.status_code == 303
    page = web.get(answer.headers["Location"]).text
    assert "Image web-new updated." in page
    assert "The rename is queued on 2 other servers: castor-b, castor-c." in page
    assert storage.verify_folder(a.image_folder("web-new")) == []

    run_worker(a)
    for target in (b, c):
        assert not target.image_folder("web-old").exists()
        assert storage.verify_folder(target.image_folder("web-new")) == []
        assert storage.read_manifest(target.image_folder("web-new")) == \
            storage.read_manifest(a.image_folder("web-new"))
        assert _row(target, "web-old") is None
        assert _row(target, "web-new").origin == "castor-a"
    assert _row(b, "web-new").protected
    for key in ("b", "c"):
        assert _status(a, image_id, ids[key]).state == "replicated"
    # The copies carry on under the new name: nothing needs sending again.
    job_ids = _replicate(a, image_id)
    assert all("0 bytes sent" in _job(a, job_id).message for job_id in job_ids)


def _refresh_space(instance, client) -> None:
    """Press Refresh on the dashboard's Storage card and let the worker ask the peers."""
    page = client.get("/").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    answer = client.post("/dashboard/storage/refresh", data={"csrf_token": token})
    assert answer.status_code == 303
    assert "Asking 2 servers for their free space." in client.get("/").text
    run_worker(instance)


def _space_cell(page: str, name: str) -> tuple[str, str]:
    """Return the state and the words of a server's Free cell on the dashboard."""
    row = re.search(rf'<tr data-server="{name}">.*?</tr>', page, re.S).group(0)
    state = re.search(r'<td class="space" data-state="(\w+)"', row).group(1)
    words = " ".join(re.sub(r"<[^>]+>", " ", row).split()).replace(" ,", ",")
    return state, words


def _space_row(instance, server_id: int) -> ComServer:
    with instance.app.app_context():
        row = db.session.get(ComServer, server_id)
        db.session.expunge(row)
        return row


def test_the_dashboard_shows_each_peers_real_free_space_after_a_refresh(trio, web):
    a, b, c, ids = trio
    _refresh_space(a, web)
    page = web.get("/").text
    assert 'data-refreshing="no"' in page
    for peer, key in ((b, "b"), (c, "c")):
        usage = shutil.disk_usage(peer.storage)
        row = _space_row(a, ids[key])
        assert row.space_error == "" and row.space_total_bytes == usage.total
        assert abs(row.space_free_bytes - usage.free) < 256 * MIB  # the disk is shared
        state, words = _space_cell(page, peer.name)
        assert state == "reported"
        shown = f"{human_bytes(row.space_free_bytes)} free of {human_bytes(usage.total)}, "
        assert re.search(re.escape(shown) + r"\d+ s ago", words), words


def test_a_stopped_peer_shows_unreachable_and_its_last_known_space(trio, web):
    a, b, c, ids = trio
    _refresh_space(a, web)
    known = _space_row(a, ids["c"])
    assert known.space_checked_at is not None
    c.kill()
    try:
        _refresh_space(a, web)
        page = web.get("/").text
        state, words = _space_cell(page, "castor-c")
        assert state == "failed"
        assert (f"unreachable: [Errno 111] Connection refused, last known "
                f"{human_bytes(known.space_free_bytes)} free of "
                f"{human_bytes(known.space_total_bytes)}") in words
        after = _space_row(a, ids["c"])
        assert after.space_checked_at == known.space_checked_at
        assert after.space_tried_at > known.space_checked_at
        assert _space_cell(page, "castor-b")[0] == "reported"
        with a.app.app_context():
            job = db.session.scalar(db.select(Job).filter_by(kind="replication_space",
                                                             object_id=ids["c"])
                                    .order_by(Job.created_at.desc()))
            assert job.status == "failed" and "castor-c" in job.error
    finally:
        c.start()
