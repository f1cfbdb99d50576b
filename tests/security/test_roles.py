"""Every route × every role: each route has an access decision, and the gate applies it.

The expectations below are this test's own table, written from the threat model
(docs/security.md), not read from app.roles: a new route fails here until someone decides
who may use it, and a loosened decision fails here too.
"""

from __future__ import annotations

import pytest
from werkzeug.routing import IntegerConverter

from app.extensions import db as _db
from app.models import ApiToken, User
from tests.conftest import make_app, sign_in

ANYONE, PEER, CLIENT = "public", "peer", "client"
RO, OP, AD = "readonly", "operator", "admin"
RANK = {RO: 1, OP: 2, AD: 3}


def _rw(read: str, write: str) -> dict:
    return {"GET": read, "POST": write, "PUT": write, "PATCH": write, "DELETE": write}


EXPECTED: dict[str, str | dict] = {
    "auth.login": ANYONE, "auth.logout": ANYONE, "static": ANYONE, "health": ANYONE,
    "boot.ipxe": ANYONE, "boot.files": ANYONE, "api_openapi.openapi": ANYONE,
    "api_client.login": ANYONE, "api_client.checkin": ANYONE,
    "home": RO, "dashboard.index": RO, "dashboard.storage_card": RO,
    "dashboard.refresh_storage": OP,
    # users, tokens, passwords
    "admin.index": AD, "admin.create_user": AD, "admin.delete_user": AD, "admin.set_role": AD,
    "admin.create_token": AD, "admin.revoke_token": AD, "admin.revoke_sessions": AD,
    "admin.password": RO,
    # images
    "images.search": RO, "images.history": RO, "images.schema": RO, "images.schema_json": RO,
    "images.progress": RO, "images.new": _rw(RO, OP),
    "images.general": _rw(RO, OP), "images.categories": _rw(RO, OP),
    "images.delete": AD, "images.bulk_delete": AD,
    "api_images.search_images": RO, "api_images.get_image": RO, "api_images.get_schema": RO,
    "api_images.get_history": RO, "api_images.create_image": OP,
    "api_images.update_image": OP, "api_images.delete_image": AD,
    "categories.index": _rw(RO, OP), "categories.edit": _rw(RO, OP), "categories.delete": OP,
    "api_images.list_categories": RO, "api_images.get_category": RO,
    "api_images.create_category": OP, "api_images.update_category": OP,
    "api_images.delete_category": OP,
    # profiles
    "profiles.index": RO, "profiles.export_schema": RO, "profiles.minimum_size": RO,
    "profiles.new": _rw(RO, OP), "profiles.tab": _rw(RO, OP), "profiles.clone": OP,
    "profiles.delete": AD, "api_profiles.list_profiles": RO, "api_profiles.get_profile": RO,
    "api_profiles.list_assignments": RO, "api_plan.plan": RO,
    "api_profiles.create_profile": OP, "api_profiles.patch_profile": OP,
    "api_profiles.clone_profile": OP, "api_profiles.delete_profile": AD,
    "api_profiles.add_assignment": OP, "api_profiles.patch_assignment": OP,
    "api_profiles.delete_assignment": OP,
    # modules: code that runs as root on the endpoints
    "modules.index": RO, "modules.kind_index": RO, "modules.new": _rw(RO, AD),
    "modules.edit": _rw(RO, AD), "modules.delete": AD, "modules.upload": AD,
    "modules.delete_file": AD, "api_modules.list_modules": RO, "api_modules.get_module": RO,
    "api_modules.create_module": AD, "api_modules.patch_module": AD,
    "api_modules.delete_module": AD, "api_modules.upload_files": AD,
    "api_modules.delete_file": AD,
    # computers, tasks, multicast
    "computers.index": RO, "computers.groups": RO, "computers.new": _rw(RO, OP),
    "computers.edit": _rw(RO, OP), "computers.new_group": _rw(RO, OP),
    "computers.edit_group": _rw(RO, OP), "computers.delete": OP, "computers.delete_group": OP,
    "computers.start_task": OP,
    "api_computers.list_computers": RO, "api_computers.get_computer": RO,
    "api_computers.create_computer": OP, "api_computers.update_computer": OP,
    "api_computers.delete_computer": OP, "api_computers.list_groups": RO,
    "api_computers.get_group": RO, "api_computers.create_group": OP,
    "api_computers.update_group": OP, "api_computers.delete_group": OP,
    "api_tasks.list_tasks": RO, "api_tasks.create": OP, "api_tasks.cancel": OP,
    "tasks.index": RO, "tasks.show": RO, "tasks.cancel": OP,
    "multicast.index": RO, "multicast.new": _rw(RO, OP), "multicast.cancel": OP,
    "api_multicast.list_sessions": RO, "api_multicast.get": RO, "api_multicast.create": OP,
    "api_multicast.cancel": OP,
    # peers (com servers) and replication
    "servers.index": RO, "servers.new": AD, "servers.edit": AD, "servers.delete": AD,
    "servers.test_connection": AD, "servers.settings": AD,
    "replication.image_replication": _rw(RO, OP), "replication.replicate_now": OP,
    "replication.retry_propagation": AD,
    "api_replication_servers.list_servers": RO, "api_replication_servers.get_server": RO,
    "api_replication_servers.create_server": AD, "api_replication_servers.update_server": AD,
    "api_replication_servers.delete_server": AD, "api_replication_servers.image_status": RO,
    "api_replication_servers.replicate_image": OP,
    **{f"api_replication.{n}": PEER for n in (
        "commit", "delete", "get_file", "manifest", "ping", "put_file", "rename",
        "storage_space")},
    # the imaging client: a task token, or an operator's token
    **{f"api_client.{n}": CLIENT for n in (
        "create_upload", "delete_upload", "finish_upload", "images", "profile_options",
        "profiles", "upload_file", "upload_schema")},
    **{f"api_client_io.{n}": CLIENT for n in (
        "append_log", "cancel", "checkout", "create_deploy", "download", "manifest",
        "module_file", "module_files", "progress", "schema")},
    **{f"api_tasks.{n}": CLIENT for n in (
        "append_log", "cancel_poll", "get_task", "heartbeat", "start")},
    **{f"api_multicast.{n}": CLIENT for n in ("join", "progress", "report",
                                              "stream_outcome")},
}

ARGUMENTS = {"kind": "scripts", "tab": "general", "relative": "a/b",
             "filename": "missing.css", "name": "nothing-here", "path": "a/b",
             "upload_id": "0123abcd", "job_id": "0123abcd"}


def _expected(endpoint: str, method: str) -> str:
    rule = EXPECTED[endpoint]
    return rule if isinstance(rule, str) else rule[method]


@pytest.fixture(scope="module")
def walk_app(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("roles"), PROPAGATE_EXCEPTIONS=False)
    tokens = {}
    with app.app_context():
        for role in (RO, OP, AD):
            user = User(username=f"u-{role}", role=role)
            user.set_password("irrelevant pw")
            _db.session.add(user)
            _db.session.flush()
            row, clear = ApiToken.issue(user, "walk")
            _db.session.add(row)
            tokens[role] = (user.id, clear)
        _db.session.commit()
    yield app, tokens
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def _routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            values = {}
            for arg, converter in rule._converters.items():
                kind = type(converter).__name__
                values[arg] = (999_999 if isinstance(converter, IntegerConverter)
                               else ARGUMENTS.get(arg, "x"))
                if kind == "AnyConverter":
                    values[arg] = sorted(converter.items)[0]
            url = app.url_map.bind("localhost").build(rule.endpoint, values, method=method)
            yield rule.endpoint, method, url


def test_every_route_has_a_decision(walk_app):
    app, _tokens = walk_app
    missing = sorted({endpoint for endpoint, _m, _u in _routes(app)} - EXPECTED.keys())
    assert missing == [], f"routes without an access decision: {missing}"


def _call(app, tokens, who: str, method: str, url: str):
    client = app.test_client()
    headers = {}
    if who != "anon":
        user_id, token = tokens[who]
        if url.startswith("/api/"):
            headers["Authorization"] = f"Bearer {token}"
        else:
            sign_in(app, client, user_id)
    return client.open(url, method=method, headers=headers, data={})


def test_every_route_times_every_role(walk_app):
    app, tokens = walk_app
    wrong = []
    for endpoint, method, url in _routes(app):
        need = _expected(endpoint, method)
        for who in ("anon", RO, OP, AD):
            status = _call(app, tokens, who, method, url).status_code
            api = url.startswith("/api/")
            if need == ANYONE:
                ok = status != 403
            elif need == PEER:
                ok = status in (400, 401, 403) or (who == "anon" and status == 404)
            else:
                need_role = OP if need == CLIENT else need
                if who == "anon":
                    ok = status == 401 if api else status == 302
                elif RANK[who] < RANK[need_role]:
                    ok = status == 403
                else:
                    ok = status not in (401, 403)
            if not ok:
                wrong.append(f"{method} {url} ({endpoint}) as {who}: {status}, needs {need}")
    assert wrong == []


@pytest.fixture
def people(app):
    """An operator and a read-only user, each with an API token, and a protected image."""
    from app.models import Image, default_profile_for

    headers = {}
    with app.app_context():
        for role in (OP, RO):
            user = User(username=role, role=role)
            user.set_password("irrelevant pw")
            _db.session.add(user)
            _db.session.flush()
            row, clear = ApiToken.issue(user, role)
            _db.session.add(row)
            headers[role] = {"Authorization": f"Bearer {clear}"}
        image = Image(name="golden", environment="linux", image_type="block", protected=True)
        image.profiles.append(default_profile_for("block", "linux"))
        _db.session.add(image)
        _db.session.commit()
        headers["image"], headers["profile"] = image.id, image.profiles[0].id
    return headers


def test_an_operator_token_cannot_unprotect_delete_or_write_code(app, people, api_headers):
    image, op = people["image"], people[OP]
    unprotect = app.test_client().patch(f"/api/v1/images/{image}", headers=op,
                                        json={"protected": False})
    assert unprotect.status_code == 403 and "admin" in unprotect.json["error"]
    # What an operator may change still works.
    assert app.test_client().patch(f"/api/v1/images/{image}", headers=op, json={
        "description": "gold master"}).status_code == 200
    assert app.test_client().delete(f"/api/v1/images/{image}", headers=op).status_code == 403
    script = app.test_client().post("/api/v1/modules/scripts", headers=op,
                                    json={"name": "evil", "contents": "curl x | sh"})
    assert script.status_code == 403
    custom = app.test_client().patch(
        f"/api/v1/images/{image}/profiles/{people['profile']}", headers=op,
        json={"partition_method": "custom_script", "custom_partition_script": "rm -rf /"})
    assert custom.status_code == 403
    # An admin's token may do all of it.
    assert app.test_client().patch(f"/api/v1/images/{image}", headers=api_headers, json={
        "protected": False}).status_code == 200
    assert app.test_client().post("/api/v1/modules/scripts", headers=api_headers, json={
        "name": "ok", "contents": "echo hi"}).status_code == 201


def test_a_read_only_token_changes_nothing(app, people):
    image, ro = people["image"], people[RO]
    client = app.test_client()
    assert client.get(f"/api/v1/images/{image}", headers=ro).status_code == 200
    assert client.patch(f"/api/v1/images/{image}", headers=ro,
                        json={"description": "x"}).status_code == 403
    assert client.post("/api/v1/client/uploads", headers=ro,
                       json={"image": "golden"}).status_code == 403


def test_an_operator_cannot_unprotect_in_the_web_ui(app, people):
    client = app.test_client()
    with app.app_context():
        user_id = _db.session.scalar(_db.select(User.id).filter_by(username=OP))
    sign_in(app, client, user_id)
    answer = client.post(f"/images/{people['image']}", data={
        "name": "golden", "description": "", "enabled": "y", "on_demand": "y",
        "replication_mode": "global"})
    assert answer.status_code == 403
    with app.app_context():
        from app.models import Image

        assert _db.session.get(Image, people["image"]).protected
