"""Users and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models.base import utcnow

# Each role can do what the ones after it can (app.roles says which role a route needs).
ROLES = ("admin", "operator", "readonly")


class User(db.Model):
    """A person who signs in to the web UI, with one role."""

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="operator")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete")

    @property
    def is_admin(self) -> bool:
        """Tell whether the user has the admin role."""
        return self.role == "admin"

    @is_admin.setter
    def is_admin(self, value: bool) -> None:
        """Make the user an admin, or an operator when taking admin away."""
        if value:
            self.role = "admin"
        elif self.role in (None, "admin"):
            self.role = "operator"

    def set_password(self, password: str) -> None:
        """Store a salted hash of the password."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """Tell whether the password matches the stored hash."""
        return check_password_hash(self.password_hash, password)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which an API token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(db.Model):
    """A bearer token for /api/v1 carrying its user's role, stored hashed; shown once.

    Console logins (`POST /api/v1/client/login`) get one with an expiry; tokens made with
    `castor tokens create` have none until revoked.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(back_populates="tokens")

    @staticmethod
    def issue(user: User, name: str, minutes: int | None = None) -> tuple[ApiToken, str]:
        """Create a token row for the user (expiring after `minutes`) and its clear text."""
        clear = "cst_" + secrets.token_urlsafe(32)
        expires = utcnow() + timedelta(minutes=minutes) if minutes else None
        row = ApiToken(name=name, token_hash=hash_token(clear), user=user, expires_at=expires)
        return row, clear

    def expired(self, now: datetime) -> bool:
        """Tell whether the token has passed its expiry."""
        return self.expires_at is not None and self.expires_at <= now
