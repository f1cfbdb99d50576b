"""PXE credentials: boot scripts carry one-time tickets; task tokens reach their task only."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from app.extensions import db as _db
from app.models import FileCopyModule, ProfileFileCopy, Task
from app.models.base import utcnow
from app.models.credentials import BootTicket, TaskToken
from app.storage import image_dir
from app.tasks import bootfiles
from app.tasks.service import create_task, finish_task
from tests.tasks.conftest import add_computer, add_image

MAC = "aa:bb:cc:dd:ee:01"


def _stored(app, name: str) -> None:
    """Give an image a folder with a manifest, a schema and one file, as an upload leaves it."""
    folder = image_dir(app.config["STORAGE_PATH"], name)
    (folder / "hd0").mkdir(parents=True)
    (folder / "hd0" / "part1.zst").write_bytes(b"secret data of " + name.encode())
    (folder / "schema.json").write_text(json.dumps({"image": name}))
    (folder / "manifest.json").write_text(json.dumps({"files": [], "image": name}))


@pytest.fixture
def lab(app):
    """Two stored images with a file-copy module each, and a deploy task of `gold` on pc-1."""
    with app.app_context():
        gold, other = add_image("gold"), add_image("other")
        modules = []
        for image in (gold, other):
            module = FileCopyModule(name=f"drivers-{image.name}")
            _db.session.add(module)
            _db.session.flush()
            _db.session.add(ProfileFileCopy(profile_id=image.profiles[0].id,
                                            module_id=module.id))
            modules.append(module.id)
        computer = add_computer("pc-1", MAC, gold)
        task, ticket = create_task("deploy", computer)
        _db.session.commit()
        ids = {"task": task.id, "ticket": ticket, "gold": gold.id, "other": other.id,
               "gold_profile": gold.profiles[0].id, "other_profile": other.profiles[0].id,
               "gold_module": modules[0], "other_module": modules[1]}
    _stored(app, "gold")
    _stored(app, "other")
    return ids


def _checkin(client, ticket: str, mac: str = MAC):
    return client.post("/api/v1/client/checkin", json={"ticket": ticket, "mac": mac})


def _ipxe_ticket(client, mac: str = MAC) -> str:
    script = client.get(f"/boot/ipxe?mac={mac}").get_data(as_text=True)
    assert "castor_mode=task" in script
    return script.split("castor_ticket=", 1)[1].split()[0]


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_the_boot_script_carries_no_usable_token(anon_client, lab):
    ticket = _ipxe_ticket(anon_client)
    # The ticket itself opens nothing: it is not a bearer credential.
    assert anon_client.get("/api/v1/client/images/gold/manifest",
                           headers=_bearer(ticket)).status_code == 401
    assert anon_client.get(f"/api/v1/tasks/{lab['task']}",
                           headers=_bearer(ticket)).status_code == 401


def test_a_ticket_is_spent_once_bound_to_its_mac_and_short_lived(app, anon_client, lab):
    ticket = _ipxe_ticket(anon_client)
    assert _checkin(anon_client, ticket, "aa:bb:cc:dd:ee:99").status_code == 401
    answer = _checkin(anon_client, ticket, "AA-BB-CC-DD-EE-01")
    assert answer.status_code == 200 and answer.json["token"].startswith("ctk_")
    assert answer.json["task"]["id"] == lab["task"]
    again = _checkin(anon_client, ticket)
    assert again.status_code == 401 and "already used" in again.json["error"]
    stale = _ipxe_ticket(anon_client)
    with app.app_context():
        _db.session.execute(_db.update(BootTicket).values(
            expires_at=utcnow() - timedelta(seconds=1)))
        _db.session.commit()
    assert _checkin(anon_client, stale).status_code == 401


def test_a_repeated_boot_never_revokes_the_running_client(anon_client, lab):
    token = _checkin(anon_client, _ipxe_ticket(anon_client)).json["token"]
    # The machine (or anyone on the LAN) asks for the boot script again, twice.
    second = _checkin(anon_client, _ipxe_ticket(anon_client)).json["token"]
    _ipxe_ticket(anon_client)
    for held in (token, second):
        answer = anon_client.post("/api/v1/client/progress", headers=_bearer(held),
                                  json={"percent": 5})
        assert answer.status_code == 200


def test_a_deploy_token_reads_only_its_own_image(anon_client, lab):
    own = _bearer(_checkin(anon_client, lab["ticket"]).json["token"])
    get = anon_client.get
    listed = get("/api/v1/client/images", headers=own).json["images"]
    assert [image["name"] for image in listed] == ["gold"]
    assert get("/api/v1/client/images/gold/manifest", headers=own).status_code == 200
    assert get("/api/v1/client/images/gold/files/hd0/part1.zst",
               headers=own).data == b"secret data of gold"
    assert get(f"/api/v1/client/profiles/{lab['gold_profile']}/options",
               headers=own).status_code == 200
    assert get(f"/api/v1/client/modules/{lab['gold_module']}/files",
               headers=own).status_code == 200
    for url in ("/api/v1/client/images/other/manifest", "/api/v1/client/images/other/schema",
                "/api/v1/client/images/other/files/hd0/part1.zst",
                f"/api/v1/client/images/{lab['other']}/profiles",
                f"/api/v1/client/profiles/{lab['other_profile']}/options",
                f"/api/v1/client/modules/{lab['other_module']}/files",
                f"/api/v1/client/modules/{lab['other_module']}/files/x.inf"):
        assert get(url, headers=own).status_code == 403, url
    # No writing: neither over its own image nor over another, unprotected one.
    for image in ("gold", "other"):
        answer = anon_client.post("/api/v1/client/uploads", headers=own, json={"image": image})
        assert answer.status_code == 403
    # And none of the operators' API.
    assert get("/api/v1/images", headers=own).status_code == 401
    assert get(f"/api/v1/images/{lab['gold']}/profiles", headers=own).status_code == 401


def test_an_upload_token_writes_only_its_own_upload(app, anon_client, api_headers):
    with app.app_context():
        image = add_image("fresh")
        add_image("victim")
        task, ticket = create_task("upload", add_computer("pc-2", "aa:bb:cc:dd:ee:02", image))
        _db.session.commit()
        task_id = task.id
    own = _bearer(_checkin(anon_client, ticket, "aa:bb:cc:dd:ee:02").json["token"])
    refused = anon_client.post("/api/v1/client/uploads", headers=own, json={"image": "victim"})
    assert refused.status_code == 403
    mine = anon_client.post("/api/v1/client/uploads", headers=own, json={})
    assert mine.status_code == 201 and mine.json["task_id"] == task_id
    # An operator's upload of another image is not the task's to touch.
    theirs = anon_client.post("/api/v1/client/uploads", headers=api_headers,
                              json={"image": "victim"}).json["upload_id"]
    assert anon_client.put(f"/api/v1/client/uploads/{theirs}/files/hd0/p1", headers=own,
                           data=b"x").status_code == 403
    assert anon_client.delete(f"/api/v1/client/uploads/{theirs}",
                              headers=own).status_code == 403
    assert anon_client.get("/api/v1/client/images/fresh/manifest",
                           headers=own).status_code == 403


def test_tokens_and_tickets_die_with_their_task(app, anon_client, lab):
    token = _checkin(anon_client, lab["ticket"]).json["token"]
    pending = _ipxe_ticket(anon_client)
    with app.app_context():
        finish_task(_db.session.get(Task, lab["task"]), "done")
        _db.session.commit()
        assert _db.session.scalar(_db.select(BootTicket)) is None
    assert anon_client.get("/api/v1/client/images/gold/manifest",
                           headers=_bearer(token)).status_code == 401
    assert _checkin(anon_client, pending).status_code == 401


def test_tftp_files_hold_only_a_ticket_refreshed_after_use(app, anon_client, lab):
    pxe = bootfiles.pxelinux_path(app.config["TFTP_PATH"], MAC)
    grub = bootfiles.grub_path(app.config["TFTP_PATH"], MAC)
    written = pxe.read_text()
    assert "castor_task=" not in written and f"castor_ticket={lab['ticket']}" in written
    assert f"castor_ticket={lab['ticket']}" in grub.read_text()
    assert _checkin(anon_client, lab["ticket"]).status_code == 200
    # The file now carries a fresh ticket (a reboot mid-task boots again); the old one is dead.
    fresh = pxe.read_text().split("castor_ticket=", 1)[1].split()[0]
    assert fresh != lab["ticket"] and fresh in grub.read_text()
    assert _checkin(anon_client, lab["ticket"]).status_code == 401
    assert _checkin(anon_client, fresh).status_code == 200


def test_the_database_keeps_no_clear_credential(app, anon_client, lab):
    token = _checkin(anon_client, _ipxe_ticket(anon_client)).json["token"]
    with app.app_context():
        assert "boot_token" not in Task.__table__.columns
        dump = "\n".join(_db.session.connection().connection.iterdump())
    assert token not in dump and lab["ticket"] not in dump
    with app.app_context():
        assert _db.session.scalar(_db.select(_db.func.count()).select_from(TaskToken)) == 1


def test_console_login_gives_a_short_lived_token(app, anon_client, admin_user):
    wrong = anon_client.post("/api/v1/client/login",
                             json={"username": "admin", "password": "nope"})
    assert wrong.status_code == 401 and "token" not in wrong.json
    answer = anon_client.post("/api/v1/client/login",
                              json={"username": "admin", "password": "correct horse"})
    assert answer.status_code == 200 and answer.json["expires_at"].endswith("Z")
    headers = _bearer(answer.json["token"])
    assert anon_client.get("/api/v1/client/images", headers=headers).status_code == 200
    from app.models import ApiToken

    with app.app_context():
        _db.session.execute(_db.update(ApiToken).values(expires_at=utcnow()))
        _db.session.commit()
    assert anon_client.get("/api/v1/client/images", headers=headers).status_code == 401


def test_cli_task_takes_a_ticket_instead_of_a_token(tmp_path):
    from client.main import _load_plugins, build_parser

    _load_plugins()
    args = build_parser().parse_args(["--server", "http://x", "task", "--ticket", "cbt_1",
                                      "--disk", str(Path(tmp_path))])
    assert args.ticket == "cbt_1"
