"""Background job rows: the UI's source of truth for work done by the RQ worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utcnow

JOB_STATES = ("queued", "running", "finished", "failed")


class Job(db.Model):
    """One background job; its id is the RQ job id."""

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[int | None] = mapped_column(default=None, index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    log: Mapped[str] = mapped_column(Text, default="")
    # The job function's arguments after the job id, as a JSON list, so it can run again.
    arguments: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def done(self) -> bool:
        """Tell whether the job reached a final state."""
        return self.status in ("finished", "failed")

    def append_log(self, line: str) -> None:
        """Add one line to the job's log (the caller commits)."""
        self.log = (self.log or "") + line.rstrip("\n") + "\n"
