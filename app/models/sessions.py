"""Signed-in browser sessions and sign-in throttling counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow


class WebSession(db.Model):
    """A browser's sign-in, kept on the server; the cookie holds its id, the row its SHA-256.

    It ends at logout, at revocation, after an idle time and after an absolute lifetime,
    whichever comes first (app.sessions).
    """

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")

    user: Mapped[User] = relationship()  # noqa: F821


class LoginThrottle(db.Model):
    """Sign-in attempts counted under one key: an (account, address) pair or an address.

    The key is a SHA-256, so a password typed into the username field is not kept. Counters
    change only through single UPDATE statements (app.login), never read-modify-write.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(default=0)
    lockouts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
