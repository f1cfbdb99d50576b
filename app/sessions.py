"""Server-side sign-in sessions for the web UI.

The browser's cookie (Flask's signed session, which also carries the CSRF token and flashed
messages) holds a random session id; the database keeps only its SHA-256 in `web_session`,
with the user, when it was made and last used. A session ends, whichever comes first:

- at logout, or when an admin revokes it (Admin page), or when its user changes their
  password (every other session of that user ends);
- after SESSION_IDLE_MINUTES without a request;
- SESSION_LIFETIME_HOURS after sign-in, however busy.

The cookie is HttpOnly and SameSite=Lax, and Secure when SECURE_COOKIES=1 or the request
came over HTTPS (directly, or through a proxy trusted with TRUSTED_PROXIES).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import Flask, current_app, g, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface

from app.extensions import db
from app.models.base import utcnow
from app.models.sessions import WebSession
from app.models.users import User

SID = "sid"
TOUCH_SECONDS = 60  # last_seen_at is written at most once a minute per session


def hash_sid(sid: str) -> str:
    """The SHA-256 hex digest under which a session id is stored."""
    return hashlib.sha256(sid.encode()).hexdigest()


def _idle() -> timedelta:
    return timedelta(minutes=float(current_app.config["SESSION_IDLE_MINUTES"]))


def _lifetime() -> timedelta:
    return timedelta(hours=float(current_app.config["SESSION_LIFETIME_HOURS"]))


def _live(row: WebSession, now: datetime) -> bool:
    return row.expires_at > now and now - row.last_seen_at <= _idle()


def start(user: User) -> WebSession:
    """Sign the user in on this browser: a new session id, never the one it came with."""
    prune()
    session.clear()
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    row = WebSession(sid_hash=hash_sid(sid), user_id=user.id, created_at=now,
                     last_seen_at=now, expires_at=now + _lifetime(),
                     address=(request.remote_addr or "")[:64],
                     user_agent=request.headers.get("User-Agent", "")[:200])
    db.session.add(row)
    db.session.commit()
    session[SID] = sid
    session.permanent = True
    g.web_session = row
    return row


def load() -> User | None:
    """Return the user of this request's live session (and keep it alive), or None."""
    g.web_session = None
    sid = session.get(SID)
    if not isinstance(sid, str):
        if session.get("user_id") is not None:
            session.clear()  # a cookie from before server-side sessions: sign in again
        return None
    row = db.session.scalar(db.select(WebSession).filter_by(sid_hash=hash_sid(sid)))
    now = utcnow()
    if row is None or not _live(row, now):
        if row is not None:
            db.session.delete(row)
            db.session.commit()
        session.clear()
        return None
    if (now - row.last_seen_at).total_seconds() > TOUCH_SECONDS:
        row.last_seen_at = now
        db.session.commit()
    g.web_session = row
    return row.user


def end() -> None:
    """Sign this browser out: its session row goes, the cookie is emptied."""
    sid = session.get(SID)
    if isinstance(sid, str):
        db.session.execute(db.delete(WebSession).filter_by(sid_hash=hash_sid(sid)))
        db.session.commit()
    session.clear()


def revoke(user_id: int, session_id: int | None = None, keep: int | None = None) -> int:
    """End one session of a user (or all of them but `keep`); return how many ended."""
    query = db.delete(WebSession).where(WebSession.user_id == user_id)
    if session_id is not None:
        query = query.where(WebSession.id == session_id)
    if keep is not None:
        query = query.where(WebSession.id != keep)
    count = db.session.execute(query).rowcount
    return count


def live_sessions(user_id: int | None = None) -> list[WebSession]:
    """The sessions that still work, newest first (of one user, or of everyone)."""
    now = utcnow()
    query = db.select(WebSession).where(WebSession.expires_at > now,
                                        WebSession.last_seen_at >= now - _idle())
    if user_id is not None:
        query = query.where(WebSession.user_id == user_id)
    return list(db.session.scalars(query.order_by(WebSession.last_seen_at.desc())))


def prune() -> int:
    """Remove sessions that can no longer be used."""
    now = utcnow()
    count = db.session.execute(db.delete(WebSession).where(
        (WebSession.expires_at <= now) | (WebSession.last_seen_at < now - _idle()))).rowcount
    return count


def current() -> WebSession | None:
    """The session of this request, if it came with one."""
    return g.get("web_session")


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        return has_request_context() and request.is_secure


def init_app(app: Flask) -> None:
    """Use the cookie interface above; the cookie lives no longer than its session."""
    app.session_interface = CookieSessions()
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(
        hours=float(app.config["SESSION_LIFETIME_HOURS"]))
