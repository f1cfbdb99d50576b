"""Admin pages: users, own password, API tokens shown once."""

from __future__ import annotations

import re

from app.extensions import db as _db
from app.models import ApiToken, User
from tests.conftest import create_user, sign_in


def test_admin_is_for_admins_only(app, anon_client):
    user_id = create_user(app, "plain", "password1", admin=False)
    client = app.test_client()
    sign_in(app, client, user_id)
    assert client.get("/admin/").status_code == 403
    assert client.post("/admin/tokens", data={"name": "x"}).status_code == 403
    assert "Admin</a>" not in client.get("/images/").get_data(as_text=True)
    # Any user may change their own password.
    assert client.get("/admin/password").status_code == 200


def test_create_and_delete_user(client, app, admin_user):
    response = client.post("/admin/users", data={"username": "bob", "password": "longpass1",
                                                 "confirm": "longpass1"})
    assert response.status_code == 303
    for bad, message in (({"username": "bob"}, "already exists"),
                         ({"username": "eve", "password": "short", "confirm": "short"},
                          "at least 8"),
                         ({"username": "eve", "confirm": "other"}, "differ")):
        data = {"password": "longpass1", "confirm": "longpass1", **bad}
        answer = client.post("/admin/users", data=data)
        assert answer.status_code == 400 and message in answer.get_data(as_text=True)
    with app.app_context():
        bob = _db.session.scalar(_db.select(User).filter_by(username="bob"))
        assert bob.check_password("longpass1") and not bob.is_admin
        bob_id = bob.id
    assert client.post(f"/admin/users/{bob_id}/delete", data={"confirmed": "1"}).status_code == 303
    self_delete = client.post(f"/admin/users/{admin_user}/delete", follow_redirects=True)
    assert "can&#39;t delete your own account" in self_delete.get_data(as_text=True)
    with app.app_context():
        assert [u.username for u in _db.session.scalars(_db.select(User))] == ["admin"]


def test_change_own_password(client, app, admin_user):
    wrong = client.post("/admin/password", data={"current": "nope", "password": "newpass99",
                                                 "confirm": "newpass99"})
    assert wrong.status_code == 400
    right = client.post("/admin/password", data={"current": "correct horse",
                                                 "password": "newpass99",
                                                 "confirm": "newpass99"})
    assert right.status_code == 303
    with app.app_context():
        assert _db.session.get(User, admin_user).check_password("newpass99")


def test_token_shown_once_works_and_revokes(client, app):
    response = client.post("/admin/tokens", data={"name": "ci"})
    assert response.status_code == 201
    token = re.search(r'<pre id="new-token">(cst_[^<]+)</pre>', response.get_data(as_text=True))
    token = token.group(1)
    headers = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/images", headers=headers).status_code == 200
    listing = client.get("/admin/").get_data(as_text=True)
    assert token not in listing and ">ci<" in listing
    with app.app_context():
        row = _db.session.scalar(_db.select(ApiToken).filter_by(name="ci"))
        assert row.token_hash != token and row.last_used_at is not None
        token_id = row.id
    deleted = client.post(f"/admin/tokens/{token_id}/delete", data={"confirmed": "1"})
    assert deleted.status_code == 303
    assert app.test_client().get("/api/v1/images", headers=headers).status_code == 401


def test_login_never_redirects_to_another_host(anon_client, admin_user):
    for target in ("//evil.example", "/\\evil.example", "https://evil.example"):
        response = anon_client.post("/login", query_string={"next": target},
                                    data={"username": "admin", "password": "correct horse"})
        assert response.status_code == 303
        assert response.headers["Location"] == "/images/", target
    response = anon_client.post("/login", query_string={"next": "/images/?q=x"},
                                data={"username": "admin", "password": "correct horse"})
    assert response.headers["Location"] == "/images/?q=x"
