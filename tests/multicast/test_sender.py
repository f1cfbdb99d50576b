"""The sending loop: whom a stream waits for, when the supervisor starts it, what it reads."""

from __future__ import annotations

import subprocess
import threading
import time

from app.models import Image, MulticastSession
from app.multicast.sender import (
    SenderOutput,
    receivers_to_wait_for,
    sender_argv,
    start_decision,
    supervise,
)
from app.multicast.sessions import create_session, fail_member, join_session
from tests.multicast.helpers import stored_image

# udp-sender 20120424's own lines (captured in a network namespace), \r-separated progress.
SENDER_OUTPUT = (
    "Udp-sender 20120424\nUsing mcast address 234.231.0.1\n"
    "New connection from 10.231.0.2  (#0) 00000009\n"
    "New connection from 10.231.0.3  (#1) 00000009\n"
    "Ready. Press any key to start sending data.\n"
    "New connection from 10.231.0.4  (#2) 00000009\n"
    "Disconnecting #1 (10.231.0.3)\n"
)


def test_first_stream_waits_for_every_expected_machine_not_failed():
    """Machines not joined yet still count for stream 0; failed and finished ones never."""
    assert receivers_to_wait_for(True, 4, []) == 4
    assert receivers_to_wait_for(True, 4, ["joined", "failed", "receiving"]) == 3
    assert receivers_to_wait_for(True, 2, ["failed", "failed"]) == 0
    assert receivers_to_wait_for(True, 3, ["done", "failed", "joined"]) == 1


def test_later_streams_wait_only_for_clients_still_deploying():
    assert receivers_to_wait_for(False, 4, ["receiving", "failed", "joined"]) == 2
    assert receivers_to_wait_for(False, 4, ["done", "failed"]) == 0


def test_start_decision():
    """Start once everyone still to come is connected, skip when nobody is left."""
    assert start_decision(0, 0, 3) == "skip"
    assert start_decision(2, 1, 3) is None  # one of the two is not there yet
    assert start_decision(2, 2, 3) == "start"  # the third failed: do not wait for it
    assert start_decision(3, 3, 3) is None  # udp-sender starts by itself


def test_sender_output_counts_connected_receivers():
    proc = subprocess.Popen(["printf", "%s", SENDER_OUTPUT + "Starting transfer: 00000009\r"
                             "bytes=  4 194 304  re-xmits=0000914 ( 31.7%)\r"],
                            stdout=subprocess.PIPE)
    output = SenderOutput(proc)
    proc.wait()
    output.join()
    assert output.receivers == {0, 2}
    assert output.started.is_set()
    assert (output.sent_bytes, output.retransmits) == (4194304, 914)


def test_sender_takes_its_start_from_the_supervisor(db, app):
    """udp-sender reads its start key from the supervisor: no --nokbd, not even a profile's."""
    image = db.session.get(Image, stored_image(app))
    image.profiles[0].multicast_sender_args = "--nokbd --max-bitrate 60m"
    session = create_session("room", image, expected_clients=2)
    argv = sender_argv(session, session.streams[0], 2, 30)
    assert "--nokbd" not in argv and argv[-2:] == ["--max-bitrate", "60m"]


def test_a_session_whose_clients_all_failed_stops_waiting(db, app):
    """Two expected clients both refused while stream 0 waits: the sender is stopped at once
    (not after its 30 s wait), no stream is sent and the session ends failed."""
    app.config["MULTICAST_INTERFACE"] = "lo"
    image = db.session.get(Image, stored_image(app))
    session = create_session("refused-room", image, expected_clients=2, max_wait_seconds=30)
    db.session.commit()
    session_id = session.id

    def run() -> None:
        with app.app_context():
            supervise(session_id)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    for _ in range(100):
        db.session.expire_all()
        if db.session.get(MulticastSession, session_id).sender_pid:
            break
        time.sleep(0.1)
    session = db.session.get(MulticastSession, session_id)
    for client_id in ("a", "b"):
        fail_member(join_session(session, client_id), "refused at join, nothing was written: "
                                                      "destination disk 0 is too small")
    db.session.commit()
    thread.join(timeout=20)
    assert not thread.is_alive() and time.monotonic() - started < 20
    db.session.expire_all()
    ended = db.session.get(MulticastSession, session_id)
    assert ended.state == "failed" and ended.error.startswith("every client failed (2)")
    assert [s["state"] for s in ended.streams] == ["skipped", "skipped"]
    assert "client a: failed: refused at join" in ended.log
    assert "stream 0 was not sent: every client failed or finished before it" in ended.log
