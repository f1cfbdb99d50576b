"""Checking a username and password: the same work for unknown users, throttled guesses.

Throttling counts attempts under two keys, each in one row of `login_throttle`:

- the (account, source address) pair: after MAX_LOGIN_FAILURES attempts without a success
  that address may not try that account for LOGIN_LOCKOUT_SECONDS, doubling with every
  further lockout up to LOGIN_LOCKOUT_MAX_SECONDS. The same account from another address is
  not affected: nobody can lock an account out for everyone.
- the source address alone: after LOGIN_ADDRESS_LIMIT failures on any accounts that
  address is locked out (same backoff), so one machine cannot walk through every account.

An attempt is counted *before* its password is checked, by one atomic UPDATE, so parallel
guesses cannot slip past the limit: at most MAX_LOGIN_FAILURES password checks happen per
pair and lockout, however many arrive at once. Counters are forgotten after
LOGIN_WINDOW_SECONDS without an attempt. A success clears its pair and gives back its
address attempt.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from flask import current_app
from sqlalchemy import and_, case, null, or_, update
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models.base import utcnow
from app.models.sessions import LoginThrottle
from app.models.users import User


class LoginRefused(Exception):
    """A sign-in that did not succeed; `status` is 401 (wrong) or 429 (throttled)."""

    def __init__(self, message: str, status: int = 401, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


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


def throttle_key(kind: str, *parts: str) -> str:
    """The row key of a counter: a SHA-256, so what was typed is not stored."""
    return hashlib.sha256("\0".join((kind, *parts)).encode()).hexdigest()


@dataclass
class Counter:
    """One throttling counter as the reserving UPDATE left it."""

    key: str
    limit: int
    attempts: int
    lockouts: int
    locked_until: datetime | None

    def refusal(self, now: datetime) -> int:
        """Seconds to wait when this attempt may not go on, else 0."""
        if self.locked_until is not None and self.locked_until > now:
            return max(1, math.ceil((self.locked_until - now).total_seconds()))
        if self.attempts > self.limit:
            # Others used up the allowance in parallel; their failure sets the lock.
            return int(current_app.config["LOGIN_LOCKOUT_SECONDS"])
        return 0


def _insert_missing(key: str, kind: str, now: datetime) -> None:
    """Create a counter row unless it exists (an upsert: safe against a parallel insert)."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(LoginThrottle).values(
        key=key, kind=kind, attempts=0, lockouts=0, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["key"]))


def _reserve(key: str, kind: str, limit: int, now: datetime) -> Counter:
    """Count one attempt under a key, atomically, and return the counter after it."""
    _insert_missing(key, kind, now)
    c = LoginThrottle.__table__.c
    window = timedelta(seconds=int(current_app.config["LOGIN_WINDOW_SECONDS"]))
    lock_over = and_(c.locked_until.is_not(None), c.locked_until <= now)
    quiet = c.updated_at < now - window
    row = db.session.execute(
        update(LoginThrottle.__table__).where(c.key == key).values(
            attempts=case((or_(quiet, lock_over), 1), else_=c.attempts + 1),
            locked_until=case((lock_over, null()), else_=c.locked_until),
            lockouts=case((c.updated_at < now - timedelta(days=1), 0), else_=c.lockouts),
            updated_at=now,
        ).returning(c.attempts, c.lockouts, c.locked_until)
    ).one()
    db.session.commit()
    return Counter(key, limit, row.attempts, row.lockouts, row.locked_until)


def _give_back(key: str) -> None:
    """Uncount one attempt (it was refused elsewhere, or it succeeded)."""
    c = LoginThrottle.__table__.c
    db.session.execute(update(LoginThrottle.__table__).where(
        c.key == key, c.attempts > 0).values(attempts=c.attempts - 1))
    db.session.commit()


def _fail(counter: Counter, now: datetime) -> None:
    """After a wrong password: lock the key when it has used up its attempts."""
    if counter.attempts < counter.limit:
        return
    base = int(current_app.config["LOGIN_LOCKOUT_SECONDS"])
    ceiling = int(current_app.config["LOGIN_LOCKOUT_MAX_SECONDS"])
    seconds = min(base * 2 ** min(counter.lockouts, 20), ceiling)
    c = LoginThrottle.__table__.c
    # Only the first failure past the limit locks; the others find the lock in place.
    db.session.execute(update(LoginThrottle.__table__).where(
        c.key == counter.key, or_(c.locked_until.is_(None), c.locked_until <= now),
    ).values(locked_until=now + timedelta(seconds=seconds), lockouts=c.lockouts + 1))
    db.session.commit()


def _throttled(seconds: int) -> LoginRefused:
    minutes = max(1, math.ceil(seconds / 60))
    return LoginRefused(f"too many failed sign-ins from this address: try again in "
                        f"{minutes} minute{'s' if minutes > 1 else ''}", 429, seconds)


def authenticate(username: str, password: str, address: str) -> User:
    """Return the user for a correct username and password (raises LoginRefused)."""
    username, password = username[:64], password[:256]
    config = current_app.config
    now = utcnow()
    pair = _reserve(throttle_key("pair", username, address), "pair",
                    int(config["MAX_LOGIN_FAILURES"]), now)
    wait = pair.refusal(now)
    if wait:
        raise _throttled(wait)
    source = _reserve(throttle_key("address", address), "address",
                      int(config["LOGIN_ADDRESS_LIMIT"]), now)
    wait = source.refusal(now)
    if wait:
        _give_back(pair.key)
        raise _throttled(wait)
    user = check_credentials(username, password)
    if user is None:
        db.session.rollback()
        _fail(pair, now)
        _fail(source, now)
        raise LoginRefused("wrong username or password")
    c = LoginThrottle.__table__.c
    db.session.execute(LoginThrottle.__table__.delete().where(c.key == pair.key))
    db.session.commit()
    _give_back(source.key)
    return user
