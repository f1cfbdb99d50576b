"""Checking a username and password: the same work for unknown users, throttled guesses."""

from __future__ import annotations

import secrets
from functools import cache

from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models.users import User


class LoginRefused(Exception):
    """A sign-in that did not succeed; `status` is 401 (wrong) or 429 (throttled)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@cache
def _dummy_hash() -> str:
    """A hash of a random password, made like real ones, to check unknown users against."""
    return generate_password_hash(secrets.token_urlsafe(16))


def check_credentials(username: str, password: str) -> User | None:
    """Return the user when the password matches; unknown users cost a hash check too."""
    user = db.session.scalar(db.select(User).filter_by(username=username)) if username else None
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    return user if user.check_password(password) else None


def authenticate(username: str, password: str, address: str) -> User:
    """Return the user for a correct username and password (raises LoginRefused)."""
    user = check_credentials(username[:64], password[:256])
    if user is None:
        raise LoginRefused("wrong username or password")
    return user
