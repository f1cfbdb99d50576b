"""Server-side sessions, cookie flags and the security headers on every response."""

from __future__ import annotations

import re
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from app.extensions import db as _db
from app.models import User, WebSession
from app.models.base import utcnow
from app.sessions import SID, hash_sid
from tests.conftest import create_user, make_app

ROOT = Path(__file__).resolve().parents[2]


def _sign_in(app, username="admin", password="correct horse", **environ):
    client = app.test_client()
    answer = client.post("/login", data={"username": username, "password": password},
                         environ_base=environ)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return client, answer


def _signed_in(client) -> bool:
    return client.get("/images/").status_code == 200


def _cookie(client) -> str:
    return client.get_cookie("session").value


def _replay(app, cookie: str):
    """A new browser presenting a copied session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief


def test_the_session_lives_on_the_server_and_stores_its_id_hashed(app, admin_user):
    client, _answer = _sign_in(app)
    with client.session_transaction() as session:
        sid = session[SID]
        assert "user_id" not in session
    with app.app_context():
        rows = _db.session.scalars(_db.select(WebSession)).all()
        assert [(r.user_id, r.sid_hash) for r in rows] == [(admin_user, hash_sid(sid))]
        assert sid not in {r.sid_hash for r in rows}
    assert _signed_in(client)


def test_logout_kills_the_session_for_a_copied_cookie_too(app, admin_user):
    client, _answer = _sign_in(app)
    stolen = _cookie(client)
    assert _signed_in(_replay(app, stolen))
    assert client.post("/logout").status_code == 303
    assert not _signed_in(client)
    assert not _signed_in(_replay(app, stolen))
    with app.app_context():
        assert _db.session.scalar(_db.select(WebSession)) is None


def test_signing_in_gets_a_new_session_id(app, admin_user):
    first, _answer = _sign_in(app)
    with first.session_transaction() as session:
        before = session[SID]
    first.post("/login", data={"username": "admin", "password": "correct horse"})
    with first.session_transaction() as session:
        assert session[SID] != before


@pytest.mark.parametrize("column", ["last_seen_at", "expires_at"])
def test_idle_and_absolute_expiry(app, admin_user, column):
    app.config.update(SESSION_IDLE_MINUTES=30, SESSION_LIFETIME_HOURS=8)
    client, _answer = _sign_in(app)
    with app.app_context():
        row = _db.session.scalar(_db.select(WebSession))
        # Idle for 31 minutes, or past its 8 hours.
        shift = timedelta(minutes=31) if column == "last_seen_at" else timedelta(hours=8, seconds=1)
        setattr(row, column, getattr(row, column) - shift)
        if column == "expires_at":
            row.last_seen_at = utcnow()
        _db.session.commit()
    assert client.get("/images/").status_code == 302
    with app.app_context():
        assert _db.session.scalar(_db.select(WebSession)) is None


def test_use_keeps_a_session_alive_until_its_lifetime(app, admin_user):
    app.config.update(SESSION_IDLE_MINUTES=30)
    client, _answer = _sign_in(app)
    with app.app_context():
        row = _db.session.scalar(_db.select(WebSession))
        row.last_seen_at -= timedelta(minutes=29)
        _db.session.commit()
    assert _signed_in(client)
    with app.app_context():
        row = _db.session.scalar(_db.select(WebSession))
        assert utcnow() - row.last_seen_at < timedelta(minutes=1)


def test_an_admin_lists_and_revokes_a_users_sessions(app, admin_user):
    create_user(app, "bob", "bob password", admin=False)
    admin, _answer = _sign_in(app)
    bob_laptop, _answer = _sign_in(app, "bob", "bob password", REMOTE_ADDR="10.1.2.3")
    bob_desk, _answer = _sign_in(app, "bob", "bob password", REMOTE_ADDR="10.1.2.4")
    page = admin.get("/admin/").get_data(as_text=True)
    assert "10.1.2.3" in page and "10.1.2.4" in page and "2 sessions" in page
    with app.app_context():
        bob = _db.session.scalar(_db.select(User).filter_by(username="bob"))
        laptop = _db.session.scalar(_db.select(WebSession).filter_by(address="10.1.2.3"))
        bob_id, laptop_id = bob.id, laptop.id
    answer = admin.post(f"/admin/users/{bob_id}/sessions", data={"session_id": laptop_id,
                                                                    "confirmed": "1"})
    assert answer.status_code == 303
    assert not _signed_in(bob_laptop) and _signed_in(bob_desk)
    # A session of someone else cannot be revoked through bob's address.
    assert admin.post(f"/admin/users/{admin_user}/sessions",
                      data={"session_id": "999"}).status_code == 404
    assert admin.post(f"/admin/users/{bob_id}/sessions", data={"confirmed": "1"}).status_code == 303
    assert not _signed_in(bob_desk) and _signed_in(admin)


def test_a_password_change_signs_out_every_other_session(app, admin_user):
    here, _answer = _sign_in(app)
    elsewhere, _answer = _sign_in(app)
    answer = here.post("/admin/password", data={"current": "correct horse",
                                                "password": "new password 1",
                                                "confirm": "new password 1"})
    assert answer.status_code == 303
    assert _signed_in(here) and not _signed_in(elsewhere)


def test_deleting_a_user_ends_their_sessions(app, admin_user):
    bob_id = create_user(app, "bob", "bob password", admin=False)
    admin, _answer = _sign_in(app)
    bob, _answer = _sign_in(app, "bob", "bob password")
    assert admin.post(f"/admin/users/{bob_id}/delete", data={"confirmed": "1"}).status_code == 303
    assert not _signed_in(bob)
    with app.app_context():
        assert _db.session.scalars(_db.select(WebSession.user_id)).all() == [admin_user]


def test_an_old_client_side_session_cookie_no_longer_signs_in(app, admin_user):
    client = app.test_client()
    with client.session_transaction() as session:
        session["user_id"] = admin_user  # what a cookie from before held
    assert client.get("/images/").status_code == 302


def _set_cookie(answer) -> str:
    return next(v for v in answer.headers.getlist("Set-Cookie") if v.startswith("session="))


def test_cookie_flags_over_http_and_https(app, admin_user):
    _client, plain = _sign_in(app)
    cookie = _set_cookie(plain)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    # Expires with the session's absolute lifetime, not Flask's 31 days.
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    left = expires.replace(tzinfo=None) - utcnow()
    assert timedelta(hours=11, minutes=58) < left <= timedelta(hours=12)
    https = app.test_client().post("/login", base_url="https://castor.example",
                                   data={"username": "admin", "password": "correct horse"})
    assert "Secure" in _set_cookie(https)
    assert https.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_forwarded_proto_counts_only_from_a_trusted_proxy(tmp_path):
    for proxies, secure in ((0, False), (1, True)):
        app = make_app(tmp_path / str(proxies), TRUSTED_PROXIES=proxies)
        create_user(app)
        answer = app.test_client().post(
            "/login", data={"username": "admin", "password": "correct horse"},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.7.7.7"})
        assert ("Secure" in _set_cookie(answer)) is secure
        with app.app_context():
            address = _db.session.scalar(_db.select(WebSession.address))
        assert (address == "10.7.7.7") is secure


def test_secure_cookies_setting_forces_secure(tmp_path):
    app = make_app(tmp_path, SESSION_COOKIE_SECURE=True)
    create_user(app)
    _client, answer = _sign_in(app)
    assert "Secure" in _set_cookie(answer)


HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _check_headers(answer) -> None:
    for name, value in HEADERS.items():
        assert answer.headers.get(name) == value, (answer.request.path, name)
    csp = answer.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_security_headers_on_every_kind_of_response(client, anon_client, api_headers):
    answers = [
        anon_client.get("/login"), anon_client.get("/images/"),  # a page, a redirect
        client.get("/images/"), client.get("/admin/"), client.get("/no-such-page"),
        client.get("/static/htmx.min.js"), anon_client.get("/healthz"),
        anon_client.get("/api/v1/images"), client.get("/api/v1/images", headers=api_headers),
        anon_client.get("/api/v1/nothing-here"), anon_client.get("/boot/ipxe"),
    ]
    for answer in answers:
        _check_headers(answer)


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"\bhx-on", re.I), "hx-on handler (needs eval)"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"<style", re.I), "<style> element"),
]


def test_templates_hold_nothing_the_policy_blocks():
    found = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        text = template.read_text()
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{template.relative_to(ROOT)}:{line}: {what}")
    assert found == []
