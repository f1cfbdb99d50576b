"""Multicast sessions: one udp-sender per partition stream, many receiving clients."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

SESSION_STATES = ("waiting", "sending", "finished", "failed", "cancelled")
LIVE_STATES = ("waiting", "sending")
CLIENT_STATES = ("joined", "receiving", "done", "failed")


class MulticastSession(db.Model):
    """One multicast deploy of an image profile to a number of clients."""

    __tablename__ = "multicast_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    image_id: Mapped[int | None] = mapped_column(
        ForeignKey("image.id", ondelete="SET NULL"), default=None
    )
    profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("image_profile.id", ondelete="SET NULL"), default=None
    )
    com_server_id: Mapped[int | None] = mapped_column(
        ForeignKey("com_server.id", ondelete="SET NULL"), default=None
    )
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("computer_group.id", ondelete="SET NULL"), default=None
    )
    expected_clients: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(String(16), default="waiting", index=True)
    interface: Mapped[str] = mapped_column(String(32), default="")
    # First wait (seconds after the first receiver connects) and per-partition timeout.
    max_wait_seconds: Mapped[int] = mapped_column(default=120)
    partition_timeout_seconds: Mapped[int] = mapped_column(default=3600)
    retries_until_drop: Mapped[int] = mapped_column(default=30)
    # Per stream: index, path, disk, partition, filesystem, kind, compression, size_bytes,
    # sha256, portbase, state, started_at, finished_at.
    streams_json: Mapped[str] = mapped_column(Text, default="[]")
    current_stream: Mapped[int] = mapped_column(default=0)
    supervisor_pid: Mapped[int | None] = mapped_column(default=None)
    sender_pid: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str] = mapped_column(Text, default="")
    log: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    image: Mapped[Image | None] = relationship()  # noqa: F821
    profile: Mapped[ImageProfile | None] = relationship()  # noqa: F821
    com_server: Mapped[ComServer | None] = relationship()  # noqa: F821
    clients: Mapped[list[MulticastClient]] = relationship(
        back_populates="session", cascade="all, delete-orphan", order_by="MulticastClient.id"
    )

    @property
    def streams(self) -> list[dict]:
        """Return the partition streams as plain data."""
        return json.loads(self.streams_json or "[]")

    @streams.setter
    def streams(self, value: list[dict]) -> None:
        self.streams_json = json.dumps(value, sort_keys=True)

    @property
    def live(self) -> bool:
        """Tell whether the session still waits for clients or sends."""
        return self.state in LIVE_STATES

    @property
    def joined(self) -> int:
        """Return how many clients joined."""
        return len(self.clients)

    def append_log(self, line: str) -> None:
        """Add one line to the session's log (the caller commits)."""
        self.log = (self.log or "") + line.rstrip("\n") + "\n"

    def to_dict(self) -> dict:
        """Return the session as the API's JSON shape."""
        return {
            "id": self.id,
            "name": self.name,
            "image": self.image.name if self.image else None,
            "profile": self.profile.name if self.profile else None,
            "com_server": self.com_server.display_name if self.com_server else None,
            "expected_clients": self.expected_clients,
            "joined_clients": self.joined,
            "state": self.state,
            "interface": self.interface,
            "current_stream": self.current_stream,
            "streams": [
                {k: s.get(k) for k in ("index", "disk", "partition", "filesystem", "portbase",
                                       "size_bytes", "state")}
                for s in self.streams
            ],
            "clients": [c.to_dict() for c in self.clients],
            "error": self.error,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


class MulticastPort(db.Model):
    """A port pair held by a live session: the primary key makes double booking impossible."""

    __tablename__ = "multicast_port"

    portbase: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("multicast_session.id", ondelete="CASCADE"), index=True
    )


class MulticastClient(db.Model):
    """One receiver of a session."""

    __tablename__ = "multicast_client"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("multicast_session.id", ondelete="CASCADE"), index=True
    )
    computer_id: Mapped[int | None] = mapped_column(
        ForeignKey("computer.id", ondelete="SET NULL"), default=None
    )
    client_id: Mapped[str] = mapped_column(String(128), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(16), default="joined")
    # {"<stream index>": {"bytes": n, "total": n, "rate_bps": n}}
    progress_json: Mapped[str] = mapped_column(Text, default="{}")
    error: Mapped[str] = mapped_column(Text, default="")
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    session: Mapped[MulticastSession] = relationship(back_populates="clients")
    computer: Mapped[Computer | None] = relationship()  # noqa: F821

    @property
    def progress(self) -> dict:
        """Return the per-stream progress."""
        return json.loads(self.progress_json or "{}")

    @property
    def label(self) -> str:
        """Return the name the session log and page use for this machine."""
        if self.computer is not None:
            return self.computer.name
        return f"client {self.client_id or self.id}"

    def percent(self, total_bytes: int) -> int:
        """Return the share of all streams received, 0-100."""
        if self.state == "done":
            return 100
        done = sum(int(p.get("bytes", 0)) for p in self.progress.values())
        return min(100, int(done * 100 / total_bytes)) if total_bytes else 0

    def to_dict(self) -> dict:
        """Return the client as the API's JSON shape."""
        return {
            "id": self.id,
            "client_id": self.client_id,
            "computer": self.computer.name if self.computer else None,
            "address": self.address,
            "state": self.state,
            "progress": self.progress,
            "multicast_bytes": sum(int(p.get("multicast_bytes", 0))
                                   for p in self.progress.values()),
            "http_bytes": sum(int(p.get("http_bytes", 0)) for p in self.progress.values()),
            "error": self.error,
            "joined_at": _iso(self.joined_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None
