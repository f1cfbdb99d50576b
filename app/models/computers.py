"""Computers, computer groups and imaging tasks."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

TASK_KINDS = ("deploy", "upload", "multicast")
TASK_STATES = ("created", "checked_in", "queued", "imaging", "done", "failed", "cancelled")
ACTIVE_STATES = ("created", "checked_in", "queued", "imaging")

group_members = Table(
    "computer_group_member",
    db.metadata,
    Column("group_id", ForeignKey("computer_group.id", ondelete="CASCADE"), primary_key=True),
    Column("computer_id", ForeignKey("computer.id", ondelete="CASCADE"), primary_key=True),
)


class Computer(db.Model):
    """An endpoint that can be imaged."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    mac: Mapped[str] = mapped_column(String(17), default="", index=True)
    client_id: Mapped[str] = mapped_column(String(128), default="", index=True)
    model: Mapped[str] = mapped_column(String(128), default="")
    serial: Mapped[str] = mapped_column(String(128), default="")
    system_uuid: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    last_checkin_at: Mapped[datetime | None] = mapped_column(default=None)
    image_id: Mapped[int | None] = mapped_column(
        ForeignKey("image.id", ondelete="SET NULL"), default=None
    )
    profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("image_profile.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    image: Mapped[Image | None] = relationship()  # noqa: F821
    profile: Mapped[ImageProfile | None] = relationship()  # noqa: F821

    def to_dict(self) -> dict:
        """Return the computer as plain data for the API and history."""
        return {
            "id": self.id, "name": self.name, "mac": self.mac, "client_id": self.client_id,
            "model": self.model, "serial": self.serial, "system_uuid": self.system_uuid,
            "description": self.description, "image_id": self.image_id,
            "profile_id": self.profile_id,
            "last_checkin_at": _iso(self.last_checkin_at),
        }


class ComputerGroup(db.Model):
    """A named set of computers, used for multicast."""

    __tablename__ = "computer_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    members: Mapped[list[Computer]] = relationship(
        secondary=group_members, order_by="Computer.name"
    )

    def to_dict(self) -> dict:
        """Return the group and its member ids as plain data."""
        return {"id": self.id, "name": self.name, "description": self.description,
                "computer_ids": [c.id for c in self.members]}


class Task(db.Model):
    """An imaging task (web task or on demand); its credentials live in app.models.credentials."""

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="created")
    computer_id: Mapped[int | None] = mapped_column(
        ForeignKey("computer.id", ondelete="CASCADE"), default=None
    )
    image_id: Mapped[int | None] = mapped_column(
        ForeignKey("image.id", ondelete="CASCADE"), default=None
    )
    profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("image_profile.id", ondelete="CASCADE"), default=None
    )
    progress_json: Mapped[str] = mapped_column(Text, default="{}")
    log: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    on_demand: Mapped[bool] = mapped_column(default=False)
    queued_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    computer: Mapped[Computer | None] = relationship()
    image: Mapped[Image | None] = relationship()  # noqa: F821
    profile: Mapped[ImageProfile | None] = relationship()  # noqa: F821

    @property
    def is_active(self) -> bool:
        """Tell whether the task still waits for or runs on its client."""
        return self.state in ACTIVE_STATES

    @property
    def progress(self) -> dict:
        """Return the client's last progress report, or an empty dict."""
        try:
            data = json.loads(self.progress_json or "{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def to_dict(self) -> dict:
        """Return the task as plain data for the API (never the token)."""
        return {
            "id": self.id, "kind": self.kind, "state": self.state,
            "computer_id": self.computer_id, "image_id": self.image_id,
            "profile_id": self.profile_id, "on_demand": self.on_demand,
            "cancel_requested": self.cancel_requested, "progress": self.progress,
            "error": self.error, "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at), "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


def _iso(value: datetime | None) -> str | None:
    """Format a stored UTC time as ISO 8601 with a Z, or None."""
    return value.isoformat(timespec="seconds") + "Z" if value else None
