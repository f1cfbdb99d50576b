"""Com server pages, replication settings and the image Replication tab."""

from __future__ import annotations

from app.extensions import db as _db
from app.models import ComServer, Image, Job, ReplicationStatus, Setting
from app.models.base import utcnow
from app.replication import identity
from tests.conftest import create_user, sign_in
from tests.replication.conftest import free_port

SERVER = {"display_name": "castor-b", "url": "http://10.0.0.2:5000/",
          "shared_secret": "a-long-enough-shared-secret", "role_imaging": "y",
          "max_imaging_clients": "5", "max_bandwidth_kbps": "8000",
          "multicast_interface": "eth1", "multicast_port_start": "9000",
          "multicast_port_end": "9100", "replicate_storage": "y", "storage_path": "/srv"}


def _add(client, **changes) -> object:
    return client.post("/servers/new", data={**SERVER, **changes})


def test_create_edit_and_delete_a_server(client, db):
    assert "castor-b" not in client.get("/servers").text
    response = _add(client)
    assert response.status_code == 303
    server = db.session.scalar(db.select(ComServer))
    assert (server.url, server.max_bandwidth_kbps, server.role_pxe) == \
        ("http://10.0.0.2:5000", 8000, False)
    assert "castor-b" in client.get("/servers").text

    # A blank secret on edit keeps the current one.
    response = client.post(f"/servers/{server.id}", data={**SERVER, "shared_secret": "",
                                                          "max_bandwidth_kbps": "0"})
    assert response.status_code == 303
    db.session.expire_all()
    assert server.shared_secret == SERVER["shared_secret"] and server.max_bandwidth_kbps == 0

    response = client.post(f"/servers/{server.id}/delete", data={"confirmed": "1"})
    assert response.status_code == 303
    assert db.session.scalar(db.select(ComServer)) is None


def test_server_form_refuses_bad_input(client, db):
    assert _add(client, url="ftp://x").status_code == 422
    assert _add(client, shared_secret="short").status_code == 422
    assert _add(client, shared_secret="").status_code == 422
    assert _add(client, multicast_port_end="8000").status_code == 422
    assert _add(client).status_code == 303
    response = _add(client)
    assert response.status_code == 422 and "already has this name" in response.text
    assert db.session.scalar(db.select(_db.func.count(ComServer.id))) == 1


def test_non_admin_cannot_change_servers(app, db):
    user_id = create_user(app, "viewer", admin=False)
    client = app.test_client()
    sign_in(app, client, user_id)
    assert client.get("/servers").status_code == 200
    assert client.post("/servers/new", data=SERVER).status_code == 403


def test_test_connection_reports_an_unreachable_server(client, db):
    _add(client, url=f"http://127.0.0.1:{free_port()}")
    server = db.session.scalar(db.select(ComServer))
    response = client.post(f"/servers/{server.id}/test", follow_redirects=True)
    assert "unreachable" in response.text


def test_settings_are_saved(client, db):
    _add(client)
    server = db.session.scalar(db.select(ComServer))
    response = client.post("/servers/settings", data={
        "default_mode": "selective", "default_servers": [str(server.id)],
        "schedule_minutes": "0"})
    assert response.status_code == 303
    assert identity.default_mode() == "selective"
    assert identity.default_server_ids() == [server.id]
    assert identity.after_upload() is False
    assert Setting.get(identity.SCHEDULE_SETTING) == "0"
    assert client.post("/servers/settings", data={"default_mode": "bogus",
                                                 "schedule_minutes": "0"}).status_code == 422


def test_image_tab_sets_mode_and_replicate_now_queues_and_polls(client, db):
    _add(client)
    _add(client, display_name="castor-c", url="http://10.0.0.3:5000")
    b, c = db.session.scalars(db.select(ComServer).order_by(ComServer.display_name)).all()
    image = Image(name="lab", last_upload_at=utcnow())
    db.session.add(image)
    db.session.commit()
    page = client.get(f"/images/{image.id}/replication")
    assert page.status_code == 200 and "Replicate Now" in page.text

    response = client.post(f"/images/{image.id}/replication",
                           data={"mode": "selective", "servers": [str(c.id)]})
    assert response.status_code == 303
    db.session.expire_all()
    assert image.replication_mode == "selective"
    assert [s.display_name for s in image.replication_servers] == ["castor-c"]

    partial = client.get(f"/images/{image.id}/replication", headers={"HX-Request": "true"})
    assert partial.status_code == 286  # nothing in progress: stop polling

    response = client.post(f"/images/{image.id}/replication/run")
    assert response.status_code == 303
    jobs = db.session.scalars(db.select(Job).filter_by(kind="replication")).all()
    assert len(jobs) == 1 and jobs[0].status == "queued"
    status = db.session.scalar(db.select(ReplicationStatus))
    assert (status.server_id, status.state) == (c.id, "pending")

    partial = client.get(f"/images/{image.id}/replication", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert 'hx-trigger="every 1s"' in partial.text and "Pending" in partial.text
    assert "<html" not in partial.text
    full = client.get(f"/images/{image.id}/replication")
    assert "<html" in full.text and 'hx-trigger="every 1s"' in full.text

    status.state, status.percent, status.rate_bps = "in_progress", 42, 2 * 1024 * 1024
    db.session.commit()
    assert "42%" in client.get(f"/images/{image.id}/replication",
                               headers={"HX-Request": "true"}).text
    status.state, status.error = "failed", "http://10.0.0.3:5000 unreachable: refused"
    jobs[0].status = "failed"
    db.session.commit()
    partial = client.get(f"/images/{image.id}/replication", headers={"HX-Request": "true"})
    assert partial.status_code == 286
    assert "Failed" in partial.text and "unreachable: refused" in partial.text
