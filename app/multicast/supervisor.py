"""The session supervisor: one process per session that runs its udp-senders in turn.

The web server launches it as a child in its own process group (`launch`). A session can last
hours; running it as an RQ job would hold the worker (and every replication or schema job
behind it) for that long, so the server owns one small process per session instead. The
supervisor records its own PID, the running sender's PID and the owning server's PID in the
database and in `instance/multicast/session-<id>.pid`; `cleanup_orphans` (worker start, CLI run)
kills what a dead owner left behind.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from flask import Flask, current_app

from app.extensions import db
from app.models import MulticastSession
from app.multicast.sessions import create_session, finish_session

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG_KEYS = ("SQLALCHEMY_DATABASE_URI", "STORAGE_PATH", "MULTICAST_PORT_START",
               "MULTICAST_PORT_END", "MULTICAST_INTERFACE", "MULTICAST_COMMAND_PREFIX",
               "MULTICAST_STREAM_WAIT", "MULTICAST_CLIENT_GRACE", "MULTICAST_RECEIVE_TIMEOUT")


class Stopped(Exception):
    """The supervisor was told to stop (SIGTERM)."""


def pid_dir(instance_path: str | None = None) -> Path:
    """Return the folder holding the session pidfiles."""
    folder = Path(instance_path or current_app.instance_path) / "multicast"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pidfile(session_id: int, instance_path: str | None = None) -> Path:
    """Return the pidfile of a session."""
    return pid_dir(instance_path) / f"session-{session_id}.pid"


def write_pidfile(session_id: int, **pids: int | None) -> None:
    """Merge PIDs into a session's pidfile (written atomically)."""
    path = pidfile(session_id)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(pids)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def launch(session: MulticastSession) -> int:
    """Start the supervisor process of a committed session and return its PID."""
    config = {k: current_app.config[k] for k in CONFIG_KEYS if k in current_app.config}
    folder = pid_dir()
    config_file = folder / f"session-{session.id}.json"
    config_file.write_text(json.dumps(config))
    env = dict(os.environ, CASTOR_INSTANCE_PATH=current_app.instance_path)
    with open(folder / f"session-{session.id}.log", "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.multicast.supervisor", str(session.id), str(config_file)],
            cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT, start_new_session=True)
    # Reap it when it ends so a long-running server collects no zombies.
    threading.Thread(target=proc.wait, daemon=True).start()
    write_pidfile(session.id, supervisor=proc.pid, server=os.getpid())
    session.supervisor_pid = proc.pid
    return proc.pid


def start_session(**kwargs) -> MulticastSession:
    """Create a session (see `create_session`), commit it and launch its supervisor."""
    session = create_session(**kwargs)
    db.session.commit()
    try:
        launch(session)
    except OSError as exc:
        finish_session(session, "failed", f"could not start the supervisor: {exc}")
    db.session.commit()
    return session


def is_alive(pid: int | None, marker: str | None = None) -> bool:
    """Tell whether a process runs (and, given a marker, that its command line has it)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if marker is None:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie has finished; it only waits for its parent.
    return marker in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_group(pid: int | None, marker: str, sig: int = signal.SIGKILL) -> bool:
    """Signal the process group led by pid if it is still ours; tell whether it was."""
    if not is_alive(pid, marker):
        return False
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    return True


def stop_processes(session_id: int, supervisor_pid: int | None, sender_pid: int | None) -> None:
    """Kill a session's sender tree and its supervisor."""
    kill_group(sender_pid, "udp-sender")
    kill_group(supervisor_pid, "app.multicast.supervisor", signal.SIGTERM)
    path = pidfile(session_id)
    if path.exists():
        data = json.loads(path.read_text())
        kill_group(data.get("sender"), "udp-sender")


def cancel_session(session: MulticastSession) -> None:
    """Cancel a live session: record it, then kill its whole process tree."""
    if not session.live:
        return
    supervisor_pid, sender_pid = session.supervisor_pid, session.sender_pid
    finish_session(session, "cancelled", "cancelled by a user")
    db.session.commit()
    stop_processes(session.id, supervisor_pid, sender_pid)


def cleanup_orphans(app: Flask) -> int:
    """Kill senders and supervisors whose owning server is gone; return sessions cleaned."""
    cleaned = 0
    with app.app_context():
        for path in sorted(pid_dir(app.instance_path).glob("session-*.pid")):
            data = json.loads(path.read_text() or "{}")
            session_id = int(path.stem.split("-", 1)[1])
            owner_alive = is_alive(data.get("server"))
            supervisor_alive = is_alive(data.get("supervisor"), "app.multicast.supervisor")
            if owner_alive and supervisor_alive:
                continue
            kill_group(data.get("sender"), "udp-sender")
            kill_group(data.get("supervisor"), "app.multicast.supervisor")
            session = db.session.get(MulticastSession, session_id)
            if session is not None and session.live:
                finish_session(session, "failed",
                               "interrupted: the server stopped while this session ran")
                db.session.commit()
            path.unlink(missing_ok=True)
            cleaned += 1
        # Live sessions without any pidfile have no supervisor at all.
        for session in db.session.scalars(db.select(MulticastSession).where(
                MulticastSession.state.in_(("waiting", "sending")))):
            if not pidfile(session.id, app.instance_path).exists():
                finish_session(session, "failed", "interrupted: no supervisor is running")
                cleaned += 1
        db.session.commit()
    return cleaned


def minimal_app(config: dict) -> Flask:
    """Return an app with only the database bound: the first sender starts seconds sooner."""
    from app.config import load_config

    instance = os.environ.get("CASTOR_INSTANCE_PATH", str(ROOT / "instance"))
    app = Flask("castor.multicast", instance_path=str(Path(instance).resolve()))
    app.config.update(load_config(Path(app.instance_path)))
    app.config.update(config)
    db.init_app(app)
    # Every mapped class, so the relationships between models resolve.
    importlib.import_module("app.models")
    return app


def main(argv: list[str]) -> int:
    """Entry point of the supervisor process: `python -m app.multicast.supervisor ID CONFIG`."""
    from app.multicast.sender import supervise

    session_id, config_file = int(argv[1]), argv[2]
    app = minimal_app(json.loads(Path(config_file).read_text()))

    def _stop(_signum, _frame):
        raise Stopped()

    signal.signal(signal.SIGTERM, _stop)
    with app.app_context():
        try:
            supervise(session_id)
        finally:
            db.session.remove()
            Path(config_file).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
