"""Boot tickets and task tokens: the only credentials an imaging machine ever holds."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

TICKET_SOURCES = ("ipxe", "tftp", "api")


class BootTicket(db.Model):
    """A one-time, short-lived ticket a boot script carries; stored as its SHA-256 only."""

    __tablename__ = "boot_ticket"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    ticket_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The MAC the ticket was issued for ("" when the computer has none): check-in must match.
    mac: Mapped[str] = mapped_column(String(17), default="")
    source: Mapped[str] = mapped_column(String(8), default="ipxe")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)

    task: Mapped[Task] = relationship()  # noqa: F821


class TaskToken(db.Model):
    """A bearer token scoped to one task, stored as its SHA-256 only; it dies with the task."""

    __tablename__ = "task_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    task: Mapped[Task] = relationship()  # noqa: F821
