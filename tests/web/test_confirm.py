"""Every destructive POST asks on a confirm page without JavaScript, and acts once confirmed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.extensions import db as _db
from app.models import (
    ApiToken,
    Category,
    Computer,
    ComputerGroup,
    ComServer,
    FileCopyModule,
    Image,
    ImageProfile,
    MulticastSession,
    ProfileScript,
    ScriptModule,
    Task,
    User,
    WebSession,
)
from app.tasks.service import create_task
from tests.conftest import create_user, sign_in
from tests.tasks.conftest import add_computer, add_image, lab_computer


@dataclass
class Case:
    """One destructive POST: where, what it sends, how the page names it, whether it is undone."""

    url: str
    data: dict
    question: str
    still_there: Callable[[], bool]


def _signed_in(client) -> bool:
    return client.get("/images/").status_code == 200


def _row(model, row_id: int) -> Callable[[], bool]:
    return lambda: _db.session.get(model, row_id) is not None


def _computer(app, client) -> Case:
    computer = add_computer("pc-7", "aa:bb:cc:dd:ee:07")
    _db.session.commit()
    return Case(f"/computers/{computer.id}/delete", {}, "Delete computer pc-7?",
                _row(Computer, computer.id))


def _group(app, client) -> Case:
    group = ComputerGroup(name="room-b")
    _db.session.add(group)
    _db.session.commit()
    return Case(f"/computers/groups/{group.id}/delete", {}, "Delete group room-b?",
                _row(ComputerGroup, group.id))


def _script_module(app, client) -> Case:
    module = ScriptModule(name="set-hostname", contents="hostname lab\n")
    _db.session.add(module)
    _db.session.commit()
    return Case(f"/modules/scripts/{module.id}/delete", {},
                "Delete script module set-hostname?", _row(ScriptModule, module.id))


def _module_file(app, client) -> Case:
    module = FileCopyModule(name="drivers")
    _db.session.add(module)
    _db.session.commit()
    stored = Path(app.config["STORAGE_PATH"]) / "modules" / str(module.id) / "pack.zip"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"zip")
    return Case(f"/modules/filecopies/{module.id}/files/delete", {"path": "pack.zip"},
                "Remove pack.zip?", stored.exists)


def _profile(app, client) -> Case:
    image = add_image("lab")
    _db.session.commit()
    clone = client.post(f"/images/{image.id}/profiles/{image.profiles[0].id}/clone")
    profile_id = int(clone.headers["Location"].split("/")[-2])
    name = _db.session.get(ImageProfile, profile_id).name
    return Case(f"/images/{image.id}/profiles/{profile_id}/delete", {},
                f"Delete profile {name}?", _row(ImageProfile, profile_id))


def _category(app, client) -> Case:
    category = Category(name="Lab")
    _db.session.add(category)
    _db.session.commit()
    return Case(f"/categories/{category.id}/delete", {}, "Delete category Lab?",
                _row(Category, category.id))


def _server(app, client) -> Case:
    server = ComServer(display_name="castor-b", url="http://10.0.0.2:5000/")
    _db.session.add(server)
    _db.session.commit()
    return Case(f"/servers/{server.id}/delete", {}, "Remove server castor-b?",
                _row(ComServer, server.id))


def _user(app, client) -> Case:
    bob_id = create_user(app, "bob", "bob password", admin=False)
    return Case(f"/admin/users/{bob_id}/delete", {}, "Delete user bob?", _row(User, bob_id))


def _one_session(app, client) -> Case:
    bob_id = create_user(app, "bob", "bob password", admin=False)
    bob = app.test_client()
    sign_in(app, bob, bob_id)
    session_id = _db.session.scalar(_db.select(WebSession.id).filter_by(user_id=bob_id))
    return Case(f"/admin/users/{bob_id}/sessions", {"session_id": str(session_id)},
                "Sign this session of bob out?", lambda: _signed_in(bob))


def _every_session(app, client) -> Case:
    bob_id = create_user(app, "bob", "bob password", admin=False)
    bob = app.test_client()
    sign_in(app, bob, bob_id)
    return Case(f"/admin/users/{bob_id}/sessions", {}, "Sign bob out everywhere?",
                lambda: _signed_in(bob))


def _token(app, client) -> Case:
    assert client.post("/admin/tokens", data={"name": "ci"}).status_code == 201
    token_id = _db.session.scalar(_db.select(ApiToken.id).filter_by(name="ci"))
    return Case(f"/admin/tokens/{token_id}/delete", {}, "Revoke token ci?",
                _row(ApiToken, token_id))


def _multicast(app, client) -> Case:
    if "multicast.cancel" not in app.view_functions:
        pytest.skip("multicast is not part of this build")
    session = MulticastSession(name="room-b-monday", state="waiting")
    _db.session.add(session)
    _db.session.commit()
    return Case(f"/multicast/{session.id}/cancel", {}, "Cancel session room-b-monday?",
                lambda: _db.session.get(MulticastSession, session.id).state == "waiting")


def _image(app, client) -> Case:
    image = add_image("doomed")
    _db.session.commit()
    return Case(f"/images/{image.id}/delete", {}, "Delete image doomed?", _row(Image, image.id))


def _images(app, client) -> Case:
    ids = [add_image(name).id for name in ("alpha", "beta")]
    gold = add_image("gold", protected=True).id  # counted out of the question, and kept
    _db.session.commit()
    return Case("/images/delete", {"image_ids": [str(i) for i in [*ids, gold]], "next": "/images/"},
                "Delete 2 images?", lambda: all(_db.session.get(Image, i) for i in ids))


def _task(app, client, *, stopping: bool = False) -> tuple[int, str]:
    _image_id, _profile_id, computer_id = lab_computer(app)
    task, _ticket = create_task("deploy", _db.session.get(Computer, computer_id))
    if stopping:  # its client was told to stop already: the next cancel drops the task
        task.state, task.cancel_requested = "imaging", True
    _db.session.commit()
    return task.id, f"/tasks/{task.id}/cancel"


def _active(task_id: int) -> Callable[[], bool]:
    return lambda: _db.session.get(Task, task_id).is_active


def _cancel_task(app, client) -> Case:
    task_id, url = _task(app, client)
    return Case(url, {}, f"Cancel task {task_id} on pc-1?", _active(task_id))


def _drop_task(app, client) -> Case:
    task_id, url = _task(app, client, stopping=True)
    return Case(url, {}, f"Drop task {task_id} on pc-1?", _active(task_id))


def _no_task() -> bool:
    return _db.session.scalar(_db.select(_db.func.count()).select_from(Task)) == 0


def _deploy(app, client) -> Case:
    _image_id, _profile_id, computer_id = lab_computer(app)
    return Case(f"/computers/{computer_id}/deploy", {}, "Deploy lab to pc-1?", _no_task)


def _upload(app, client) -> Case:
    _image_id, _profile_id, computer_id = lab_computer(app)
    return Case(f"/computers/{computer_id}/upload", {}, "Upload from pc-1 into image lab?",
                _no_task)


def _profile_module(app, client) -> Case:
    image = add_image("lab")
    module = ScriptModule(name="set-hostname", contents="hostname lab\n")
    _db.session.add(module)
    _db.session.commit()
    profile = image.profiles[0]
    url = f"/images/{image.id}/profiles/{profile.id}/scripts"
    assert client.post(url, data={"action": "add", "module_id": module.id,
                                  "run_when": "before_imaging"}).status_code == 303
    row_id = _db.session.scalar(_db.select(ProfileScript.id))
    return Case(url, {"action": "remove", "assignment_id": str(row_id)},
                f"Remove set-hostname from profile {profile.name}?", _row(ProfileScript, row_id))


CASES = [_computer, _group, _script_module, _module_file, _profile, _category, _server, _user,
         _one_session, _every_session, _token, _multicast, _image, _images, _cancel_task,
         _drop_task, _deploy, _upload, _profile_module]


@pytest.mark.parametrize("make", CASES, ids=[make.__name__.strip("_") for make in CASES])
def test_a_destructive_post_asks_first_then_acts_once_confirmed(app, client, make):
    with app.app_context():
        case = make(app, client)
    page = client.post(case.url, data=case.data)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and f"<h1>{case.question}</h1>" in text
    assert 'name="confirmed" value="1"' in text and f'action="{case.url}"' in text
    with app.app_context():
        assert case.still_there(), "nothing may change before the confirmation"
    # The confirm page re-posts the same fields with confirmed=1.
    done = client.post(case.url, data={**case.data, "confirmed": "1"})
    assert done.status_code == 303
    with app.app_context():
        assert not case.still_there()


def test_the_confirm_page_replays_the_form_and_its_csrf_token(tmp_path):
    from tests.conftest import make_app

    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    sign_in(app, client, create_user(app))
    with app.app_context():
        computer_id = add_computer("pc-7", "aa:bb:cc:dd:ee:07").id
        _db.session.commit()
    page = client.get(f"/computers/{computer_id}").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    confirm = client.post(f"/computers/{computer_id}/delete", data={"csrf_token": token})
    text = confirm.get_data(as_text=True)
    assert f'<input type="hidden" name="csrf_token" value="{token}">' in text
    assert f'href="/computers/{computer_id}">Cancel</a>' in text
    done = client.post(f"/computers/{computer_id}/delete",
                       data={"csrf_token": token, "confirmed": "1"})
    assert done.status_code == 303
    with app.app_context():
        assert _db.session.get(Computer, computer_id) is None

