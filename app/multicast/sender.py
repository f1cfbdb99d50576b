"""The sending loop of a session: one udp-sender per partition stream, one after another.

A stream's udp-sender starts by itself once `--min-receivers` are connected, or `--max-wait`
seconds after the first. Clients that fail meanwhile (refused at join, refused by their
preflight) will never connect, so the supervisor holds udp-sender's keyboard (its stdin) and
starts the transfer itself as soon as every client still to come is connected. Restarting
the sender with a lower count is no way out: receivers already connected to it wait forever
for the old one.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time

from app.extensions import db
from app.models import MulticastSession
from app.models.base import utcnow
from app.multicast.sessions import finish_session, setting, stream_file
from app.multicast.supervisor import Stopped, kill_group, pidfile, write_pidfile

BYTES_RE = re.compile(r"bytes=\s*([\d ]+?)\s+re-xmits=\s*(\d+)")
CONNECT_RE = re.compile(r"New connection from \S+\s+\(#(\d+)\)")
DISCONNECT_RE = re.compile(r"Disconnecting #(\d+)\b")
# Client states of machines that will connect to no further stream.
GONE_STATES = ("failed", "done")


def receivers_to_wait_for(first_stream: bool, expected: int, states: list[str]) -> int:
    """Return how many receivers a stream can still get, from its clients' states.

    The first stream is for every expected machine, joined yet or not, that has not failed;
    a later one for the clients that joined and still deploy. Failed and finished clients
    never connect again.
    """
    gone = sum(1 for state in states if state in GONE_STATES)
    return max(0, (expected if first_stream else len(states)) - gone)


def start_decision(waiting_for: int, connected: int, min_receivers: int) -> str | None:
    """Tell what to do with a sender still waiting: "skip" it (nobody is left to receive it),
    "start" it now (every receiver still to come is connected), or None (let it wait)."""
    if waiting_for <= 0:
        return "skip"
    if min_receivers > connected >= waiting_for:
        return "start"  # udp-sender itself would wait for receivers that never come
    return None


def extra_sender_args(session: MulticastSession) -> list[str]:
    """Return the profile's extra udp-sender arguments, validated again before use."""
    text = session.profile.multicast_sender_args if session.profile else ""
    if not text:
        return []
    from app.profiles.multicast_args import validate_udpcast_args

    # --nokbd would take away the supervisor's start signal (see the module docstring).
    return [arg for arg in validate_udpcast_args(text, "sender") if arg != "--nokbd"]


def sender_argv(session: MulticastSession, stream: dict, min_receivers: int,
                max_wait: int) -> list[str]:
    """Return the udp-sender command line of one partition stream."""
    argv = [*setting("MULTICAST_COMMAND_PREFIX"), "udp-sender",
            "--file", str(stream_file(session, stream)),
            "--portbase", str(stream["portbase"]), "--interface", session.interface,
            "--min-receivers", str(min_receivers), "--max-wait", str(max_wait),
            "--retries-until-drop", str(session.retries_until_drop),
            # No --nokbd: a key on stdin starts the transfer (the supervisor's early start).
            # Without it udp-sender checks its start condition only every 2 s, per stream.
            "--rexmit-hello-interval", "200"]
    if stream["index"] > 0:
        # Later streams go to receivers that are already there: give up if none comes back.
        argv += ["--start-timeout", str(int(setting("MULTICAST_STREAM_WAIT")) * 4)]
    else:
        # Without it udp-sender waits for ever when no receiver ever connects.
        argv += ["--start-timeout", str(max(1, max_wait))]
    return argv + extra_sender_args(session)


class SenderOutput:
    """Reads a udp-sender's output in a thread: start of transfer, bytes sent, last lines."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.started = threading.Event()
        self.receivers: set[int] = set()  # udp-sender's numbers of the connected receivers
        self.sent_bytes = 0
        self.retransmits = 0
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        buf = b""
        while data := proc.stdout.read1(4096):
            buf += data
            *complete, buf = re.split(rb"[\r\n]", buf)
            for raw in complete:
                self._line(raw.decode(errors="replace").strip())
        self._line(buf.decode(errors="replace").strip())

    def _line(self, line: str) -> None:
        if not line:
            return
        if line.startswith("Starting transfer"):
            self.started.set()
        if match := CONNECT_RE.search(line):
            self.receivers.add(int(match.group(1)))
        elif match := DISCONNECT_RE.search(line):
            self.receivers.discard(int(match.group(1)))
        match = BYTES_RE.search(line)
        if match:
            self.sent_bytes = int(match.group(1).replace(" ", ""))
            self.retransmits = int(match.group(2))
            return
        self.lines = [*self.lines[-20:], line]

    def join(self) -> None:
        """Wait until the output is read to its end."""
        self._thread.join(timeout=5)


def _reload(session_id: int) -> MulticastSession:
    db.session.expire_all()
    return db.session.get(MulticastSession, session_id)


def _update_stream(session: MulticastSession, index: int, **values) -> None:
    streams = session.streams
    streams[index].update(values)
    session.streams = streams


def _mark_sending(session_id: int) -> None:
    # Conditional update: a cancel that landed meanwhile must win.
    db.session.execute(
        db.update(MulticastSession)
        .where(MulticastSession.id == session_id, MulticastSession.state == "waiting")
        .values(state="sending", started_at=utcnow()))
    db.session.commit()


def _waiting_for(session: MulticastSession, index: int) -> int:
    return receivers_to_wait_for(index == 0, session.expected_clients,
                                 [c.state for c in session.clients])


def send_stream(session_id: int, stream: dict) -> str | None:
    """Run the udp-sender of one stream to its end; return what went wrong, or None."""
    session = _reload(session_id)
    index = stream["index"]
    waiting_for = _waiting_for(session, index)
    if waiting_for == 0:
        return _stream_skipped(session_id, index)
    min_receivers = waiting_for
    max_wait = session.max_wait_seconds if index == 0 else int(setting("MULTICAST_STREAM_WAIT"))
    argv = sender_argv(session, stream, min_receivers, max_wait)
    # stdin is the start key. Should the supervisor die, the pipe's end reads as one: the
    # sender starts for those connected (they verify every chunk) until cleanup_orphans.
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    output = SenderOutput(proc)
    write_pidfile(session_id, sender=proc.pid)
    session.sender_pid, session.current_stream = proc.pid, index
    _update_stream(session, index, state="waiting")
    session.append_log(f"stream {index}: {' '.join(argv)}")
    db.session.commit()
    started_at: float | None = None
    pressed = False
    try:
        while proc.poll() is None:
            time.sleep(0.5)
            if started_at is None and output.started.is_set():
                started_at = time.monotonic()
                _mark_sending(session_id)
                session = _reload(session_id)
                _update_stream(session, index, state="sending", started_at=str(utcnow()))
            session = _reload(session_id)
            if not session.live:
                return None
            if started_at is None and not pressed:
                decision = start_decision(_waiting_for(session, index), len(output.receivers),
                                          min_receivers)
                if decision == "skip":
                    return _stream_skipped(session_id, index)
                if decision == "start":
                    pressed = _press_start(proc, session, index, len(output.receivers))
            if session.streams[index].get("sent_bytes") != output.sent_bytes:
                _update_stream(session, index, sent_bytes=output.sent_bytes)
                db.session.commit()
            timeout = session.partition_timeout_seconds
            if started_at is not None and time.monotonic() - started_at > timeout:
                return _stream_failed(session_id, index, "timed_out",
                                      f"stream {index} timed out after {timeout} s")
    finally:
        if proc.poll() is None:
            kill_group(proc.pid, "udp-sender")
            proc.wait()
        proc.stdin.close()
        output.join()
    session = _reload(session_id)
    if proc.returncode == 0 and not output.started.is_set():
        # udp-sender gave up at its start timeout: it exits 0 having sent nothing.
        return _stream_failed(session_id, index, "no_receivers",
                              f"no receiver connected to stream {index} within {max_wait} s")
    if proc.returncode != 0:
        tail = " / ".join(output.lines[-3:])
        return _stream_failed(session_id, index, "failed",
                              f"udp-sender of stream {index} exited {proc.returncode}: {tail}")
    _update_stream(session, index, state="done", finished_at=str(utcnow()),
                   sent_bytes=stream["size_bytes"], retransmits=output.retransmits)
    session.sender_pid = None
    db.session.commit()
    return None


def _press_start(proc: subprocess.Popen, session: MulticastSession, index: int,
                 connected: int) -> bool:
    """Start a waiting udp-sender now, as a key pressed on its keyboard does."""
    try:
        proc.stdin.write(b"\n")
        proc.stdin.flush()
    except OSError:
        return False  # it exited meanwhile: the loop sees why
    session.append_log(f"stream {index}: starting with the {connected} connected receiver(s): "
                       "no other client is to come (the others failed or finished)")
    db.session.commit()
    return True


def _stream_skipped(session_id: int, index: int) -> str:
    """Mark a stream no client is left to receive; no sender runs for it."""
    session = _reload(session_id)
    reason = f"stream {index} was not sent: every client failed or finished before it"
    _update_stream(session, index, state="skipped", finished_at=str(utcnow()), error=reason)
    session.sender_pid = None
    session.append_log(reason)
    db.session.commit()
    return reason


def _stream_failed(session_id: int, index: int, state: str, reason: str) -> str:
    """Mark a stream that did not reach every receiver; they complete it over HTTP."""
    session = _reload(session_id)
    _update_stream(session, index, state=state, finished_at=str(utcnow()), error=reason)
    session.sender_pid = None
    session.append_log(f"{reason}; its receivers complete it over HTTP")
    db.session.commit()
    return reason


def wait_for_clients(session_id: int) -> None:
    """Give clients time to finish restoring (by HTTP too) and report.

    The grace period starts again whenever a client reports new progress, so a machine still
    completing streams over HTTP is waited for (up to the per-partition timeout).
    """
    grace = int(setting("MULTICAST_CLIENT_GRACE"))
    started = time.monotonic()
    deadline = started + grace
    seen: dict[int, str] = {}
    while time.monotonic() < deadline:
        session = _reload(session_id)
        if not session.live or all(c.state in ("done", "failed") for c in session.clients):
            return
        now = {c.id: c.progress_json for c in session.clients}
        if seen and now != seen:
            deadline = min(time.monotonic() + grace,
                           started + max(grace, session.partition_timeout_seconds))
        seen = now
        time.sleep(1)


def _finish(session_id: int, state: str, error: str = "") -> None:
    session = _reload(session_id)
    if session.live:
        finish_session(session, state, error)
        db.session.commit()


def supervise(session_id: int) -> None:
    """Send every stream of a session in turn, then close the session and record history."""
    session = _reload(session_id)
    write_pidfile(session_id, supervisor=os.getpid())
    session.supervisor_pid = os.getpid()
    db.session.commit()
    errors = []
    try:
        for stream in session.streams:
            # A stream that fails (sender died, timed out) is completed by its receivers
            # over HTTP; the session goes on with the next one for everybody.
            error = send_stream(session_id, stream)
            if error:
                errors.append(error)
            session = _reload(session_id)
            if not session.live:
                return
            if error and stream["index"] == 0 and not session.clients:
                _finish(session_id, "failed", f"no client joined within "
                                              f"{session.max_wait_seconds} s: {error}")
                return
        wait_for_clients(session_id)
        session = _reload(session_id)
        if session.clients and all(c.state == "failed" for c in session.clients):
            # Nobody got the image (refused at join or by their preflight, or failed later).
            errors.insert(0, f"every client failed ({len(session.clients)}); see each "
                             "machine's error")
            _finish(session_id, "failed", "; ".join(errors))
            return
        _finish(session_id, "finished", "; ".join(errors))
    except Stopped:
        db.session.rollback()
        _finish(session_id, "cancelled", "the supervisor was stopped")
    except Exception as exc:
        db.session.rollback()
        _finish(session_id, "failed", f"supervisor error: {exc}")
        raise
    finally:
        pidfile(session_id).unlink(missing_ok=True)
