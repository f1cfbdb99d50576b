"""Retry of a failed delete or rename from the dashboard: what it queues, when it refuses."""

from __future__ import annotations

import re

import pytest
from rq.job import Job as RQJob

from app.extensions import db as _db
from app.jobs import redis_connection
from app.models import ComServer, Job
from tests.conftest import create_user, sign_in
from tests.replication.test_propagation import _delete, _image, _jobs, _peers, _rename


@pytest.fixture
def failing(app, client, db, run_jobs):
    """Peers that do not answer, jobs that fail at once: b and c as their rows."""
    app.config.update(REPLICATION_RETRIES=0)
    return _peers()


def _failed(kind: str) -> list[Job]:
    return [row for row in _jobs(kind) if row.status == "failed"]


def _retry(client, job: Job):
    return client.post(f"/replication/jobs/{job.id}/retry")


def _dashboard(client) -> str:
    """The dashboard as it is now (the test shares the app's session: forget what it read)."""
    _db.session.expire_all()
    return client.get("/").text


def _args(job_id: str) -> tuple:
    return RQJob.fetch(job_id, connection=redis_connection()).args


def test_retry_of_a_failed_delete_queues_it_again_for_that_server(client, failing,
                                                                  run_jobs):
    b, _c = failing
    _delete(client, _image("gone", mode="none", on=(b,)).id)
    run_jobs()
    [failed] = _failed("replication_delete")
    page = _dashboard(client)
    assert f'action="/replication/jobs/{failed.id}/retry"' in page

    answer = _retry(client, failed)
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    rows = _jobs("replication_delete")
    [again] = [row for row in rows if row.id != failed.id]
    assert again.status == "queued" and again.message == "delete gone on b"
    assert _args(again.id) == (again.id, "gone", b.id)
    page = _dashboard(client)
    assert "Queued again: delete gone on b." in page
    assert failed.id not in page  # the newest attempt speaks for the change

    # Sent twice? The older failure is refused; the new one fails and shows in its place.
    refused = _retry(client, failed)
    assert refused.status_code == 409 and "was already sent again" in refused.text
    run_jobs()
    page = _dashboard(client)
    assert again.id in page and "deleting gone on b failed" in page


def test_retry_of_a_failed_rename_sends_the_same_names(client, failing, run_jobs):
    b, c = failing
    image = _image("before", mode="selective", on=(b,))
    _rename(client, image.id, "after")
    run_jobs()
    [failed] = _failed("replication_rename")
    assert _retry(client, failed).status_code == 303
    [again] = [row for row in _jobs("replication_rename") if row.id != failed.id]
    assert _args(again.id) == (again.id, "before", "after", b.id)
    assert again.object_id == b.id and again.message == "rename before to after on b"


def test_retry_is_refused_when_the_image_was_made_again_here(client, failing, run_jobs):
    b, _c = failing
    _delete(client, _image("phoenix", mode="none", on=(b,)).id)
    run_jobs()
    [failed] = _failed("replication_delete")
    _image("phoenix", mode="none")  # a new image under the old name
    answer = _retry(client, failed)
    assert answer.status_code == 409
    assert "An image named phoenix exists here again" in answer.text
    assert "could remove the copy of the new image" in answer.text
    assert len(_jobs("replication_delete")) == 1


def test_retry_of_a_rename_is_refused_when_either_name_moved_on(client, failing, run_jobs):
    b, _c = failing
    image = _image("first", mode="selective", on=(b,))
    _rename(client, image.id, "second")
    run_jobs()
    [failed] = _failed("replication_rename")
    _rename(client, image.id, "third")  # renamed again since: that rename has its own job
    answer = _retry(client, failed)
    assert answer.status_code == 409
    assert "The image second this rename was for is no longer here" in answer.text

    _rename(client, image.id, "second")
    _image("first", mode="none")  # the old name is taken again
    answer = _retry(client, failed)
    assert answer.status_code == 409 and "An image named first exists here again" in answer.text


def test_retry_is_refused_for_a_removed_server_or_a_job_that_did_not_fail(app, client,
                                                                         failing, run_jobs):
    b, c = failing
    _delete(client, _image("both", mode="none", on=(b, c)).id)
    run_jobs()
    on_b, on_c = _failed("replication_delete")
    assert (on_b.object_id, on_c.object_id) == (b.id, c.id)
    client.post(f"/servers/{c.id}/delete", data={"confirmed": "1"})
    assert _db.session.get(ComServer, c.id) is None
    answer = _retry(client, on_c)
    assert answer.status_code == 409 and "that server was removed" in answer.text

    on_b.status = "finished"
    _db.session.commit()
    answer = _retry(client, on_b)
    assert answer.status_code == 409 and "is finished: only a failed one" in answer.text
    on_b.status, on_b.arguments = "failed", ""  # a row from before arguments were kept
    _db.session.commit()
    answer = _retry(client, on_b)
    assert answer.status_code == 409 and "repeat the change on b by hand" in answer.text
    assert client.post("/replication/jobs/nothing/retry").status_code == 404
    assert len(_jobs("replication_delete")) == 2


def test_retry_needs_an_admin_and_a_csrf_token(app, failing, run_jobs):
    b, _c = failing
    admin = app.test_client()
    sign_in(app, admin, create_user(app, "root"))
    _delete(admin, _image("guarded", mode="none", on=(b,)).id)
    run_jobs()
    [failed] = _failed("replication_delete")
    operator = app.test_client()
    sign_in(app, operator, create_user(app, "op", admin=False))
    assert "Retry</button>" not in _dashboard(operator)
    assert _retry(operator, failed).status_code == 403

    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert _retry(admin, failed).status_code == 400
        assert len(_jobs("replication_delete")) == 1
        page = _dashboard(admin)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        answer = admin.post(f"/replication/jobs/{failed.id}/retry", data={"csrf_token": token})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert answer.status_code == 303 and len(_jobs("replication_delete")) == 2


def test_retry_with_redis_down_leaves_a_failed_row_that_says_so(app, client, failing,
                                                                run_jobs):
    b, _c = failing
    _delete(client, _image("stuck", mode="none", on=(b,)).id)
    run_jobs()
    [failed] = _failed("replication_delete")
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    page = client.post(f"/replication/jobs/{failed.id}/retry", follow_redirects=True).text
    assert "Could not queue the job to delete stuck on b again: could not queue the job" in page
    [newest] = [row for row in _jobs("replication_delete") if row.id != failed.id]
    assert newest.status == "failed" and newest.id in page and failed.id not in page
