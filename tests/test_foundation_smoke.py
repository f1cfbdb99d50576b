"""The app starts, redirects anonymous visitors to sign-in, and serves the OpenAPI document."""


def test_anonymous_is_sent_to_login(anon_client):
    response = anon_client.get("/images/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_healthz_is_public(anon_client):
    assert anon_client.get("/healthz").json == {"status": "ok"}


def test_login_with_right_and_wrong_password(anon_client, admin_user):
    bad = anon_client.post("/login", data={"username": "admin", "password": "nope"})
    assert bad.status_code == 401
    good = anon_client.post("/login", data={"username": "admin", "password": "correct horse"})
    assert good.status_code == 303


def test_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
