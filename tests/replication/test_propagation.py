"""Deletes and renames made here, sent on to peers: which images, which servers, when."""

from __future__ import annotations

import pytest
from rq.job import Job as RQJob

from app import storage
from app.extensions import db as _db
from app.images import service
from app.jobs import redis_connection
from app.models import ComServer, Image, Job, ReplicationStatus
from tests.conftest import create_user, make_app, sign_in


def _peers() -> tuple[ComServer, ComServer]:
    """Two peers that do not answer, and the row of this server."""
    b = ComServer(display_name="b", url="http://127.0.0.1:9", shared_secret="x" * 20)
    c = ComServer(display_name="c", url="http://127.0.0.1:9", shared_secret="y" * 20)
    _db.session.add_all([b, c, ComServer(display_name="me", url="http://me:1", is_local=True)])
    _db.session.commit()
    return b, c


def _image(name: str, mode: str = "all", origin: str = "", protected: bool = False,
           on: tuple[ComServer, ...] = ()) -> Image:
    """An image with its folder, replicated (a status row) to the servers `on`."""
    from flask import current_app

    image = service.create_image(current_app.config["STORAGE_PATH"], name=name,
                                 environment="linux", image_type="block",
                                 protected=protected, replication_mode=mode)
    image.origin = origin
    for server in on:
        _db.session.add(ReplicationStatus(image_id=image.id, server_id=server.id,
                                          state="replicated"))
    _db.session.commit()
    return image


def _jobs(kind: str) -> list[Job]:
    _db.session.expire_all()
    return list(_db.session.scalars(_db.select(Job).filter_by(kind=kind).order_by(Job.message)))


def _delete(client, image_id: int):
    return client.post(f"/images/{image_id}/delete", data={"confirmed": "1"},
                       follow_redirects=True)


def _rename(client, image_id: int, name: str):
    return client.post(f"/images/{image_id}", data={"name": name, "enabled": "y"},
                       follow_redirects=True)


def test_delete_goes_to_the_servers_holding_a_copy(client, db):
    b, _c = _peers()
    held = _image("held", mode="none", on=(b,))  # replicated to b before its mode changed
    alone = _image("alone", mode="none")
    page = _delete(client, held.id).text
    assert "Image held deleted." in page
    assert "The deletion is queued on 1 other server: b." in page
    rows = _jobs("replication_delete")
    assert [(row.message, row.status, row.object_id) for row in rows] == \
        [("delete held on b", "queued", b.id)]
    assert RQJob.fetch(rows[0].id, connection=redis_connection()).args == \
        (rows[0].id, "held", b.id)
    assert _db.session.scalar(_db.select(ReplicationStatus)) is None  # gone with the image

    page = _delete(client, alone.id).text
    assert "Image alone deleted." in page and "queued on" not in page
    assert len(_jobs("replication_delete")) == 1


def test_rename_goes_to_the_targets_and_holders(client, db):
    b, c = _peers()
    image = _image("before", on=(b,))
    page = _rename(client, image.id, "after").text
    assert "Image after updated." in page
    assert "The rename is queued on 2 other servers: b, c." in page
    rows = _jobs("replication_rename")
    assert [row.message for row in rows] == ["rename before to after on b",
                                             "rename before to after on c"]
    assert RQJob.fetch(rows[0].id, connection=redis_connection()).args == \
        (rows[0].id, "before", "after", b.id)
    # Saving the page without a new name sends nothing.
    assert "queued on" not in _rename(client, image.id, "after").text
    assert len(_jobs("replication_rename")) == 2


def test_a_copy_from_a_peer_changes_here_only(client, db):
    b, _c = _peers()
    copy = _image("from-a", origin="castor-a", on=(b,))
    page = _rename(client, copy.id, "mine").text
    assert "Replicated here from castor-a: renamed on this server only" in page
    page = _delete(client, copy.id).text
    assert "Image mine deleted." in page
    assert "Replicated here from castor-a: deleted on this server only; castor-a keeps " \
        "its copy" in page
    assert _jobs("replication_rename") == [] and _jobs("replication_delete") == []


def test_bulk_delete_sends_each_deleted_image_and_skips_protected(client, db):
    _peers()
    ids = [_image(name, protected=name == "gold").id for name in ("one", "two", "gold")]
    ids.append(_image("copy", origin="castor-a").id)
    page = client.post("/images/delete", data={"image_ids": [str(i) for i in ids],
                                               "confirmed": "1"}, follow_redirects=True).text
    assert "Deleted 3 image(s): copy, one, two." in page
    assert "The deletion is queued on 2 other servers: b, c." in page
    assert "Replicated here from castor-a: deleted on this server only" in page
    assert [row.message for row in _jobs("replication_delete")] == [
        "delete one on b", "delete one on c", "delete two on b", "delete two on c"]


def test_the_api_sends_deletes_and_renames_too(app, db, api_headers):
    _peers()
    image = _image("api-one")
    client = app.test_client()
    answer = client.patch(f"/api/v1/images/{image.id}", json={"name": "api-two"},
                          headers=api_headers)
    assert answer.status_code == 200 and answer.get_json()["name"] == "api-two"
    assert len(_jobs("replication_rename")) == 2
    assert client.delete(f"/api/v1/images/{image.id}", headers=api_headers).status_code == 204
    assert [row.message for row in _jobs("replication_delete")] == ["delete api-two on b",
                                                                     "delete api-two on c"]


def test_a_refused_or_failed_local_change_sends_nothing(app, db, api_headers, monkeypatch):
    _peers()
    gold = _image("gold", protected=True)
    taken = _image("taken")
    client = app.test_client()
    assert client.delete(f"/api/v1/images/{gold.id}", headers=api_headers).status_code == 409
    answer = client.patch(f"/api/v1/images/{gold.id}", json={"name": "taken"},
                          headers=api_headers)
    assert answer.status_code == 409
    # A folder without a row is never overwritten: the rename fails after the flush.
    storage.image_dir(app.config["STORAGE_PATH"], "orphan").mkdir()
    answer = client.patch(f"/api/v1/images/{taken.id}", json={"name": "orphan"},
                          headers=api_headers)
    assert answer.status_code == 409
    # The commit of a delete fails: the folder comes back and nothing is sent.
    monkeypatch.setattr(_db.session, "commit", _failing_commit)
    with pytest.raises(RuntimeError):
        service.delete_image(app.config["STORAGE_PATH"], taken)
    monkeypatch.undo()
    _db.session.rollback()
    assert storage.image_dir(app.config["STORAGE_PATH"], "taken").is_dir()
    assert [image.name for image in _db.session.scalars(_db.select(Image)
                                                        .order_by(Image.name))] == ["gold",
                                                                                    "taken"]
    assert _jobs("replication_delete") == [] and _jobs("replication_rename") == []


def _failing_commit() -> None:
    raise RuntimeError("the database went away")


@pytest.fixture
def no_redis_app(tmp_path):
    """An app whose Redis does not answer (nothing listens on port 1)."""
    app = make_app(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def test_redis_down_never_breaks_the_local_change(no_redis_app):
    app = no_redis_app
    client = app.test_client()
    sign_in(app, client, create_user(app))
    with app.app_context():
        b, c = _peers()
        ids = [_image(name, on=(b, c)).id for name in ("lab", "spare")]
    page = _rename(client, ids[0], "lab2").text
    assert "Image lab2 updated." in page
    assert "The rename could not be queued on b, c (the job queue is unreachable)" in page
    page = _delete(client, ids[0]).text
    assert "Image lab2 deleted." in page
    assert "The deletion could not be queued on b, c" in page
    page = client.post("/images/delete", data={"image_ids": [str(ids[1])], "confirmed": "1"},
                       follow_redirects=True).text
    assert "Deleted 1 image(s): spare." in page
    with app.app_context():
        assert _db.session.scalar(_db.select(Image)) is None
        assert not storage.image_dir(app.config["STORAGE_PATH"], "lab").exists()
        rows = _jobs("replication_delete") + _jobs("replication_rename")
        assert len(rows) == 6
        assert {row.status for row in rows} == {"failed"}
        assert all(row.error.startswith("could not queue the job: ") for row in rows)
    # The failures are where replication failures are shown: the dashboard.
    dashboard = client.get("/").text
    assert "Deletes and renames that did not reach a server" in dashboard
    assert "delete lab2 on b" in dashboard and "rename lab to lab2 on c" in dashboard


def test_a_rename_failing_on_a_peer_marks_its_copy_failed(app, client, db, run_jobs):
    app.config.update(REPLICATION_RETRIES=0)
    b, c = _peers()
    image = _image("old-name", mode="selective", on=(b,))
    _rename(client, image.id, "new-name")
    run_jobs()
    [job] = _jobs("replication_rename")
    assert job.status == "failed"
    assert "renaming old-name to new-name on b failed" in job.error
    status = _db.session.scalar(_db.select(ReplicationStatus).filter_by(server_id=b.id))
    assert status.state == "failed" and "unreachable" in status.error
    tab = client.get(f"/images/{image.id}/replication").text
    assert "renaming old-name to new-name on b failed" in tab
    assert "rename old-name to new-name on b" in client.get("/").text
