"""Multicast session workflow: create, allocate port pairs, join, finish.

Plain functions over models; views, the API and the supervisor all call them. Nothing here
starts or kills processes (that is `app.multicast.supervisor`).
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import (
    ComputerGroup,
    ComServer,
    Image,
    ImageProfile,
    MulticastClient,
    MulticastPort,
    MulticastSession,
    record_history,
)
from app.models.base import utcnow
from app.models.computers import Computer
from app.models.multicast import LIVE_STATES
from app.multicast.outcomes import session_summary
from app.storage import image_dir, read_manifest

STREAM_KINDS = ("partclone", "dd", "wim")
DEFAULTS = {
    "MULTICAST_PORT_START": 9000,
    "MULTICAST_PORT_END": 9998,
    "MULTICAST_INTERFACE": "eth0",
    "MULTICAST_COMMAND_PREFIX": [],
    "MULTICAST_STREAM_WAIT": 30,
    "MULTICAST_CLIENT_GRACE": 120,
    # Seconds of silence after which a receiver completes its stream over HTTP (0: derived
    # from MULTICAST_STREAM_WAIT, at least 60).
    "MULTICAST_RECEIVE_TIMEOUT": 0,
}


class SessionError(Exception):
    """A session request was refused; the message is shown to the user as is."""


class LateJoinError(SessionError):
    """A client asked to join a session that already sends (or is over)."""


def setting(key: str):
    """Return a multicast config value, falling back to the built-in default."""
    return current_app.config.get(key, DEFAULTS[key])


def receive_timeout() -> int:
    """Return the seconds of silence after which a receiver falls back to HTTP."""
    configured = int(setting("MULTICAST_RECEIVE_TIMEOUT") or 0)
    return configured or max(60, int(setting("MULTICAST_STREAM_WAIT")) * 4)


def local_com_server() -> ComServer | None:
    """Return the com server that is this machine, if one is registered."""
    return db.session.scalar(db.select(ComServer).filter_by(is_local=True))


def port_range(server: ComServer | None) -> tuple[str, int, int]:
    """Return (interface, first port, last port) of a com server or of the config."""
    if server is not None:
        return server.multicast_interface, server.multicast_port_start, server.multicast_port_end
    return (setting("MULTICAST_INTERFACE"), int(setting("MULTICAST_PORT_START")),
            int(setting("MULTICAST_PORT_END")))


def free_portbases(start: int, end: int, taken: set[int], count: int) -> list[int]:
    """Return `count` even port bases P with P and P+1 inside [start, end] and not taken."""
    first = start + (start % 2)
    found = [p for p in range(first, end, 2) if p + 1 <= end and p not in taken][:count]
    if len(found) < count:
        raise SessionError(
            f"no free multicast port pairs: {count} needed in {start}-{end}, "
            f"{len(found)} free; finish or cancel another session first")
    return found


def image_streams(image: Image) -> list[dict]:
    """Return one stream per stored partition file of the image, from its manifest."""
    folder = image_dir(current_app.config["STORAGE_PATH"], image.name)
    manifest = read_manifest(folder)
    if manifest is None:
        raise SessionError(f"image {image.name} has no complete upload (no manifest.json)")
    files = [f for f in manifest.get("files", []) if f.get("kind") in STREAM_KINDS]
    if not files:
        raise SessionError(f"image {image.name} holds no partition to send")
    if any(f.get("lv") for f in files):
        raise SessionError(f"image {image.name} holds logical volumes, which multicast does "
                           "not send yet: deploy it by unicast")
    files.sort(key=lambda f: (f.get("disk", 0), f.get("partition") or 0, f.get("lv") or ""))
    streams = []
    for index, entry in enumerate(files):
        streams.append({
            "index": index, "path": entry["path"], "disk": entry.get("disk", 0),
            "partition": entry.get("partition"), "lv": entry.get("lv"),
            "filesystem": entry.get("filesystem"), "kind": entry["kind"],
            "compression": entry.get("compression", "none"), "size_bytes": entry["size_bytes"],
            "sha256": entry["sha256"], "portbase": None, "state": "pending",
        })
    return streams


def allocate_ports(session: MulticastSession, server: ComServer | None, count: int) -> list[int]:
    """Reserve `count` port pairs for a session; the table's primary key refuses doubles."""
    _, start, end = port_range(server)
    for _attempt in range(5):
        taken = set(db.session.scalars(db.select(MulticastPort.portbase)))
        bases = free_portbases(start, end, taken, count)
        try:
            with db.session.begin_nested():
                for base in bases:
                    db.session.add(MulticastPort(portbase=base, session_id=session.id))
            return bases
        except IntegrityError:
            continue  # another session took one of them meanwhile: look again
    raise SessionError("could not reserve multicast ports (too many sessions starting at once)")


def release_ports(session: MulticastSession) -> None:
    """Free the port pairs of a session that is over (the caller commits)."""
    db.session.execute(db.delete(MulticastPort).where(MulticastPort.session_id == session.id))


def create_session(name: str, image: Image, profile: ImageProfile | None = None, *,
                   expected_clients: int | None = None, server: ComServer | None = None,
                   group: ComputerGroup | None = None, max_wait_seconds: int = 120,
                   partition_timeout_seconds: int = 3600, retries_until_drop: int = 30,
                   username: str = "system") -> MulticastSession:
    """Create a waiting session with one port pair per partition stream (the caller commits)."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise SessionError("a session needs a name of 1-64 characters")
    if db.session.scalar(db.select(MulticastSession).filter_by(name=name)):
        raise SessionError(f"a session named {name} already exists")
    if not image.enabled:
        raise SessionError(f"image {image.name} is disabled")
    if image.damaged:
        raise SessionError(f"image {image.name} is damaged on this server "
                           f"({image.damaged[:200]}): repair it or upload it again")
    if profile is None:
        profile = image.profiles[0] if image.profiles else None
    if profile is not None and profile.image_id != image.id:
        raise SessionError(f"profile {profile.name} belongs to another image")
    if expected_clients is None:
        expected_clients = len(group.members) if group is not None else 1
    if expected_clients < 1:
        raise SessionError("a session expects at least one client")
    if server is None:
        server = local_com_server()
    streams = image_streams(image)
    interface, _, _ = port_range(server)
    session = MulticastSession(
        name=name, image=image, profile=profile, com_server=server,
        group_id=group.id if group else None, expected_clients=expected_clients,
        interface=interface, max_wait_seconds=max_wait_seconds,
        partition_timeout_seconds=partition_timeout_seconds,
        retries_until_drop=retries_until_drop, created_by=username)
    db.session.add(session)
    db.session.flush()
    for stream, base in zip(streams, allocate_ports(session, server, len(streams)), strict=True):
        stream["portbase"] = base
    session.streams = streams
    return session


def find_computer(client_id: str, computer_name: str) -> Computer | None:
    """Return the known computer a joining client says it is, if any."""
    if client_id:
        found = db.session.scalar(db.select(Computer).filter_by(client_id=client_id))
        if found:
            return found
    if computer_name:
        return db.session.scalar(db.select(Computer).filter_by(name=computer_name))
    return None


def join_session(session: MulticastSession, client_id: str, address: str = "",
                 computer_name: str = "") -> MulticastClient:
    """Add a client to a waiting session, refusing late joiners (the caller commits)."""
    existing = next((c for c in session.clients if client_id and c.client_id == client_id), None)
    if existing is not None and session.live:
        # A machine that rebooted or restarted its client joins again: it restores the
        # streams already sent over HTTP and takes the next ones by multicast.
        if session.state == "sending":
            session.append_log(f"{existing.label}: joined again while stream "
                               f"{session.current_stream} was sending")
        existing.state, existing.error, existing.progress_json = "joined", "", "{}"
        existing.finished_at = None
        return existing
    if session.state != "waiting":
        raise LateJoinError(
            f"session {session.name} is {session.state}: joining now would only get the tail "
            "of the stream; wait for the next session")
    if session.joined >= session.expected_clients:
        raise LateJoinError(
            f"session {session.name} is full ({session.expected_clients} clients expected)")
    computer = find_computer(client_id, computer_name)
    if session.group_id is not None:
        group = db.session.get(ComputerGroup, session.group_id)
        if computer is None or group is None or computer not in group.members:
            raise SessionError("this computer is not a member of the session's group")
    member = MulticastClient(session=session, client_id=client_id, address=address,
                             computer=computer)
    db.session.add(member)
    return member


def fail_member(member: MulticastClient, error: str) -> None:
    """Record that a client failed or was refused, and why, on the session (caller commits).

    A failed client no longer counts among the receivers the sender waits for
    (`app.multicast.sender.receivers_to_wait_for`), so it never holds the others up.
    """
    member.state, member.error = "failed", (error or "failed")[:4000]
    member.finished_at = utcnow()
    member.session.append_log(f"{member.label}: failed: {member.error}")


def finish_session(session: MulticastSession, state: str, error: str = "") -> None:
    """Close a session: free its ports and record history on the image and each computer."""
    if not session.live and session.finished_at is not None:
        return
    session.state = state
    session.error = error or session.error
    session.finished_at = utcnow()
    session.sender_pid = None
    release_ports(session)
    for member in session.clients:
        if member.state in ("joined", "receiving") and state != "finished":
            member.state, member.error = "failed", member.error or f"session {state}"
    split = session_summary(session)
    summary = {
        "session": session.name, "state": state, "error": session.error,
        "expected_clients": session.expected_clients, "joined_clients": session.joined,
        "clients": [{"client_id": c.client_id, "state": c.state, "error": c.error}
                    for c in session.clients],
        "machines": split["machines"], "all_fell_back": split["all_fell_back"],
        "multicast_bytes": split["multicast_bytes"], "http_bytes": split["http_bytes"],
    }
    if split["warning"]:
        session.append_log(f"warning: {split['warning']}")
    if session.image_id is not None:
        record_history("image", session.image_id, "multicast", summary, session.created_by)
    for member in session.clients:
        if member.computer_id is not None:
            record_history("computer", member.computer_id, "multicast",
                           {"session": session.name, "image": summary_image(session),
                            "state": member.state, "error": member.error},
                           session.created_by)


def summary_image(session: MulticastSession) -> str | None:
    """Return the session's image name for history rows."""
    return session.image.name if session.image else None


def live_sessions() -> list[MulticastSession]:
    """Return the sessions that wait for clients or send."""
    return list(db.session.scalars(
        db.select(MulticastSession).where(MulticastSession.state.in_(LIVE_STATES))))


def stream_file(session: MulticastSession, stream: dict) -> Path:
    """Return the stored file a stream sends."""
    from app.storage import safe_join

    folder = image_dir(current_app.config["STORAGE_PATH"], session.image.name)
    return safe_join(folder, stream["path"])
