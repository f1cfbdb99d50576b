"""Sign-in: atomic throttling per (account, address) and per address, equal work, next=."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from datetime import timedelta

import pytest

from app.extensions import db as _db
from app.login import throttle_key
from app.models import LoginThrottle
from app.models.base import utcnow
from tests.browser import serve
from tests.conftest import create_user

LIMIT = 5


def _post_login(base: str, username: str, password: str, source: str = "127.0.0.1") -> int:
    """POST the sign-in form over a real socket from a chosen loopback source address."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60,
                                      source_address=(source, 0))
    body = urllib.parse.urlencode({"username": username, "password": password})
    conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    status = conn.getresponse().status
    conn.close()
    return status


def _parallel_guesses(app, threads: int = 8, each: int = 3) -> list[int]:
    """Fire wrong passwords at admin from `threads` threads at once against a live server."""
    app.config.update(MAX_LOGIN_FAILURES=LIMIT, LOGIN_ADDRESS_LIMIT=1000)
    create_user(app, "admin", "correct horse")
    statuses: list[int] = []
    with serve(app) as base:
        start = threading.Barrier(threads)

        def guess(number: int) -> None:
            start.wait()
            for attempt in range(each):
                statuses.append(_post_login(base, "admin", f"wrong-{number}-{attempt}"))

        workers = [threading.Thread(target=guess, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        # The attacking address is locked out of admin, even with the right password...
        statuses.append(_post_login(base, "admin", "correct horse"))
        # ...but admin, from elsewhere, still signs in.
        statuses.append(_post_login(base, "admin", "correct horse", source="127.0.0.2"))
    return statuses


def _check_parallel(statuses: list[int]) -> None:
    guesses, after = statuses[:-2], statuses[-2:]
    checked = guesses.count(401)
    assert sorted(set(guesses)) <= [401, 429], guesses
    assert 1 <= checked <= LIMIT, f"{checked} wrong passwords checked, limit {LIMIT}"
    assert after == [429, 303]


def test_parallel_wrong_guesses_never_pass_the_limit_sqlite(app):
    _check_parallel(_parallel_guesses(app))


@pytest.mark.postgres
def test_parallel_wrong_guesses_never_pass_the_limit_postgres(pg_app):
    _check_parallel(_parallel_guesses(pg_app))


def _form(client, username: str, password: str, address: str = "10.9.9.1", **query):
    return client.post("/login", query_string=query,
                       data={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def _row(app, kind: str, *parts: str) -> LoginThrottle | None:
    with app.app_context():
        return _db.session.get(LoginThrottle, throttle_key(kind, *parts))


def test_a_lockout_is_per_account_and_address_and_backs_off(app, anon_client, admin_user):
    app.config.update(MAX_LOGIN_FAILURES=3, LOGIN_LOCKOUT_SECONDS=60)
    for _ in range(3):
        assert _form(anon_client, "admin", "nope").status_code == 401
    locked = _form(anon_client, "admin", "correct horse")
    assert locked.status_code == 429 and 0 < int(locked.headers["Retry-After"]) <= 60
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    # Nobody can lock admin out for everyone: another address signs in.
    assert _form(app.test_client(), "admin", "correct horse", "10.9.9.2").status_code == 303
    # The lock ends; the next one lasts twice as long.
    with app.app_context():
        row = _db.session.get(LoginThrottle, throttle_key("pair", "admin", "10.9.9.1"))
        row.locked_until = utcnow() - timedelta(seconds=1)
        _db.session.commit()
    for _ in range(3):
        assert _form(anon_client, "admin", "nope").status_code == 401
    again = _form(anon_client, "admin", "correct horse")
    assert again.status_code == 429 and 60 < int(again.headers["Retry-After"]) <= 120
    assert _row(app, "pair", "admin", "10.9.9.1").lockouts == 2


def test_a_success_clears_its_pair(app, anon_client, admin_user):
    app.config.update(MAX_LOGIN_FAILURES=3)
    for _ in range(2):
        assert _form(anon_client, "admin", "nope").status_code == 401
    assert _form(anon_client, "admin", "correct horse").status_code == 303
    assert _row(app, "pair", "admin", "10.9.9.1") is None
    for _ in range(2):
        assert _form(app.test_client(), "admin", "nope").status_code == 401
    assert _row(app, "pair", "admin", "10.9.9.1").attempts == 2


def test_one_address_cannot_walk_through_every_account(app, admin_user):
    app.config.update(MAX_LOGIN_FAILURES=5, LOGIN_ADDRESS_LIMIT=4)
    client = app.test_client()
    for name in ("a1", "a2", "a3", "a4"):
        assert _form(client, name, "guess").status_code == 401
    assert _form(client, "a5", "guess").status_code == 429
    assert _form(client, "admin", "correct horse").status_code == 429
    assert _form(client, "admin", "correct horse", "10.9.9.3").status_code == 303


def test_the_console_login_is_throttled_the_same_way(app, admin_user):
    app.config.update(MAX_LOGIN_FAILURES=2)
    client = app.test_client()

    def api(password: str):
        return client.post("/api/v1/client/login",
                           json={"username": "admin", "password": password},
                           environ_base={"REMOTE_ADDR": "10.9.9.4"})

    assert [api("x").status_code for _ in range(2)] == [401, 401]
    refused = api("correct horse")
    assert refused.status_code == 429 and "try again" in refused.get_json()["error"]


def test_unknown_users_cost_a_password_hash_too(app, anon_client, admin_user, monkeypatch):
    import app.login as login
    import app.models.users as users

    calls: list[str] = []
    for module in (login, users):
        real = module.check_password_hash

        def counting(hashed, password, real=real):
            calls.append(password)
            return real(hashed, password)

        monkeypatch.setattr(module, "check_password_hash", counting)
    assert _form(anon_client, "admin", "wrong-1").status_code == 401
    assert _form(anon_client, "nobody", "wrong-2").status_code == 401
    assert calls == ["wrong-1", "wrong-2"]
    # The stand-in hash is as costly as a real one: same method and work factor.
    with app.app_context():
        from app.models import User

        real_hash = _db.session.get(User, admin_user).password_hash
    assert login._dummy_hash().split("$")[0] == real_hash.split("$")[0]


@pytest.mark.parametrize("target", [
    "/\t/evil.com", "//evil.com", "/\\evil.com", "https://evil.com", "/\n/evil.com",
    " //evil.com", "http:/evil.com", "evil.com", "/%09/evil.com".replace("%09", "\x09"),
])
def test_next_only_goes_to_a_same_site_path(anon_client, admin_user, target):
    answer = _form(anon_client, "admin", "correct horse", next=target)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/images/", target


def test_next_from_the_raw_query_string(anon_client, admin_user):
    answer = anon_client.post("/login?next=%2F%09%2Fevil.com",
                              data={"username": "admin", "password": "correct horse"})
    assert answer.headers["Location"] == "/images/"
    answer = app_client_next(anon_client, "/computers/?q=a%20b")
    assert answer.headers["Location"] == "/computers/?q=a%20b"


def app_client_next(client, target: str):
    client.post("/logout")
    return client.post("/login", query_string={"next": target},
                       data={"username": "admin", "password": "correct horse"})
