"""Session domain: port pairs per stream, joins, late joiners, history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.models import (
    Computer,
    ComputerGroup,
    ComServer,
    History,
    Image,
    MulticastPort,
    MulticastSession,
)
from app.multicast.sessions import (
    LateJoinError,
    SessionError,
    create_session,
    finish_session,
    free_portbases,
    join_session,
)
from tests.multicast.helpers import stored_image


def test_free_portbases_are_even_pairs_inside_the_range():
    """Bases are even, P+1 stays in range, taken bases are skipped."""
    assert free_portbases(9001, 9010, {9002}, 3) == [9004, 9006, 9008]
    assert free_portbases(9000, 9003, set(), 2) == [9000, 9002]
    with pytest.raises(SessionError, match="no free multicast port pairs"):
        free_portbases(9000, 9002, set(), 2)


def test_each_stream_gets_its_own_pair_and_live_sessions_never_share(db, app):
    """Two live sessions get disjoint pairs; a finished session gives its pairs back."""
    app.config.update(MULTICAST_PORT_START=9000, MULTICAST_PORT_END=9009)
    image = db.session.get(Image, stored_image(app))
    first = create_session("a", image, expected_clients=2)
    second = create_session("b", image, expected_clients=2)
    db.session.commit()
    assert [s["portbase"] for s in first.streams] == [9000, 9002]
    assert [s["portbase"] for s in second.streams] == [9004, 9006]
    assert [s["partition"] for s in first.streams] == [1, 2]
    with pytest.raises(SessionError, match="no free multicast port pairs"):
        create_session("c", image)
    db.session.rollback()
    finish_session(db.session.get(MulticastSession, first.id), "finished")
    db.session.commit()
    third = create_session("c", image)
    assert [s["portbase"] for s in third.streams] == [9000, 9002]
    assert db.session.scalar(db.select(db.func.count(MulticastPort.portbase))) == 4


def test_local_com_server_range_and_interface_win_over_config(db, app):
    """The local com server's multicast settings are used when one is registered."""
    db.session.add(ComServer(display_name="here", url="http://x", is_local=True,
                             multicast_interface="br7", multicast_port_start=7001,
                             multicast_port_end=7100))
    image = db.session.get(Image, stored_image(app))
    session = create_session("s", image)
    assert session.interface == "br7"
    assert [s["portbase"] for s in session.streams] == [7002, 7004]


def test_create_refuses_images_without_upload_and_duplicate_names(db, app):
    """No manifest, a disabled image or a taken name are refused with a clear message."""
    empty = Image(name="empty")
    db.session.add(empty)
    with pytest.raises(SessionError, match="no complete upload"):
        create_session("x", empty)
    image = db.session.get(Image, stored_image(app))
    create_session("x", image)
    with pytest.raises(SessionError, match="already exists"):
        create_session("x", image)
    image.enabled = False
    with pytest.raises(SessionError, match="disabled"):
        create_session("y", image)


def test_join_refuses_late_joiners_and_full_sessions(db, app):
    """Joining works while waiting, a rejoin reuses the row, late or extra clients are refused."""
    image = db.session.get(Image, stored_image(app))
    session = create_session("s", image, expected_clients=2)
    first = join_session(session, "c1")
    db.session.flush()
    assert join_session(session, "c1") is first  # a rebooted client joins again
    join_session(session, "c2")
    with pytest.raises(LateJoinError, match="full"):
        join_session(session, "c3")
    session.state = "sending"
    with pytest.raises(LateJoinError, match="sending"):
        join_session(session, "c3")
    # A member that restarted mid-session comes back (it completes what it missed by HTTP).
    assert join_session(session, "c1") is first and first.state == "joined"
    assert "joined again while stream 0 was sending" in session.log
    session.state = "finished"
    with pytest.raises(LateJoinError, match="finished"):
        join_session(session, "c1")


def test_group_sessions_take_only_members(db, app):
    """A session for a group expects its members and refuses other computers."""
    image = db.session.get(Image, stored_image(app))
    members = [Computer(name=f"pc{i}", client_id=f"id{i}") for i in range(3)]
    outsider = Computer(name="other", client_id="x")
    group = ComputerGroup(name="lab", members=members)
    db.session.add_all([group, outsider])
    db.session.flush()
    session = create_session("s", image, group=group)
    assert session.expected_clients == 3
    assert join_session(session, "id1").computer is members[1]
    with pytest.raises(SessionError, match="not a member"):
        join_session(session, "x")


def test_finish_records_history_on_image_and_computers(db, app):
    """The image and every joined computer get a multicast history row."""
    image = db.session.get(Image, stored_image(app))
    db.session.add(Computer(name="pc1", client_id="id1"))
    session = create_session("s", image, expected_clients=2)
    join_session(session, "id1").state = "done"
    join_session(session, "anon")
    finish_session(session, "finished")
    db.session.commit()
    rows = db.session.scalars(db.select(History).filter_by(action="multicast")).all()
    assert {r.object_type for r in rows} == {"image", "computer"}
    image_row = next(r for r in rows if r.object_type == "image")
    assert image_row.data["state"] == "finished"
    assert {c["client_id"]: c["state"] for c in image_row.data["clients"]} == {
        "id1": "done", "anon": "joined"}
    assert not session.live and session.finished_at is not None


@pytest.mark.postgres
def test_port_pairs_on_postgresql(pg_app):
    """Allocation, a double booking refused by the primary key, and release on PostgreSQL."""
    from sqlalchemy.exc import IntegrityError

    from app.extensions import db

    with pg_app.app_context():
        image = db.session.get(Image, stored_image(pg_app))
        session = create_session("pg", image, expected_clients=1)
        db.session.commit()
        assert [s["portbase"] for s in session.streams] == [9000, 9002]
        db.session.add(MulticastPort(portbase=9000, session_id=session.id))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        finish_session(db.session.get(MulticastSession, session.id), "cancelled")
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count(MulticastPort.portbase))) == 0


def test_a_session_no_client_joins_fails_after_its_wait(db, app):
    """udp-sender alone waits for ever; the session ends failed once its wait is over."""
    import time

    from app.multicast.sender import supervise

    app.config["MULTICAST_INTERFACE"] = "lo"
    image = db.session.get(Image, stored_image(app))
    session = create_session("empty-room", image, max_wait_seconds=2)
    db.session.commit()
    started = time.monotonic()
    supervise(session.id)
    assert time.monotonic() - started < 20
    db.session.expire_all()
    ended = db.session.get(MulticastSession, session.id)
    assert ended.state == "failed"
    assert "no client joined within 2 s" in ended.error
    assert ended.streams[0]["state"] == "no_receivers"
    assert ended.streams[1]["state"] != "done"  # the other streams were never sent


def test_create_refuses_images_holding_logical_volumes(db, app):
    """LV files are not sent by multicast: the session is refused, naming unicast."""
    image = db.session.get(Image, stored_image(app))
    manifest_path = Path(app.config["STORAGE_PATH"]) / "images" / "lab" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][1]["lv"] = "castor-root"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(SessionError, match="logical volumes.*deploy it by unicast"):
        create_session("lv", image)
