"""Computers, computer groups and imaging tasks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

TASK_KINDS = ("deploy", "upload", "multicast")
TASK_STATES = ("created", "checked_in", "queued", "imaging", "done", "failed", "cancelled")

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
    image_id: Mapped[int | None] = mapped_column(
        ForeignKey("image.id", ondelete="SET NULL"), default=None
    )
    profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("image_profile.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ComputerGroup(db.Model):
    """A named set of computers, used for multicast."""

    __tablename__ = "computer_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    members: Mapped[list[Computer]] = relationship(secondary=group_members)


class Task(db.Model):
    """An imaging task (web task or on demand), with its one-time token."""

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
    token_hash: Mapped[str] = mapped_column(String(64), default="", index=True)
    progress_json: Mapped[str] = mapped_column(Text, default="{}")
    log: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    computer: Mapped[Computer | None] = relationship()
