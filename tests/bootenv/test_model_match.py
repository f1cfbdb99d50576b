"""Model match at boot: iPXE sends the DMI product name, the menu deploys, check-in creates it."""

from __future__ import annotations

from app.bootenv import dnsmasq
from app.extensions import db as _db
from app.models import Computer, Image, Task, default_profile_for
from client import bootinit
from client.identity import parse_cmdline

MAC = "52:54:00:12:34:21"


def _matching_image(app, match: str = "Castor Lab PC", criteria: str = "starts_with") -> int:
    with app.app_context():
        image = Image(name="lab-pc", environment="linux", image_type="block")
        profile = default_profile_for("block", "linux")
        profile.name, profile.model_match, profile.model_match_criteria = (
            "lab", match, criteria)
        profile.task_completed_action, profile.kernel_args = "power_off", "console=ttyS0"
        image.profiles.append(profile)
        _db.session.add(image)
        _db.session.commit()
        return image.id


def _tasks(app) -> list[Task]:
    with app.app_context():
        return list(_db.session.scalars(_db.select(Task)))


def test_dnsmasq_sends_ipxe_with_the_product_name():
    assert dnsmasq.boot_url("http://s:5000/") == (
        "http://s:5000/boot/ipxe?mac=${net0/mac}&model=${product:uristring}")


def test_a_matching_model_gets_a_deploy_menu_and_nothing_is_created(app, anon_client):
    _matching_image(app)
    script = anon_client.get(f"/boot/ipxe?mac={MAC}&model=Castor%20Lab%20PC%202").get_data(True)
    assert "menu Castor: model match" in script
    assert "choose --default deploy" in script
    kernel = next(line for line in script.splitlines() if line.startswith("kernel "))
    settings = parse_cmdline(kernel)
    assert settings["mode"] == "modelmatch" and settings["action"] == "power_off"
    assert "ticket" not in settings and "console=ttyS0" in kernel
    assert bootinit.client_argv(settings) == [
        "castor-client", "--server", settings["server"], "task", "--model-match"]
    assert _tasks(app) == []
    # Another model (or none, as iPXE sends for a board without SMBIOS) gets the usual menu.
    for url in (f"/boot/ipxe?mac={MAC}&model=Other%20PC", f"/boot/ipxe?mac={MAC}&model="):
        assert "castor_mode=ondemand" in anon_client.get(url).get_data(True)


def test_anonymous_check_in_with_the_model_creates_the_deploy(app, anon_client):
    image_id = _matching_image(app)
    answer = anon_client.post("/api/v1/client/checkin", json={
        "mac": MAC, "model": "Castor Lab PC 2", "serial": "S1"})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["model_match"] is True and body["token"].startswith("ctk_")
    assert body["task"]["kind"] == "deploy" and body["task"]["image"]["id"] == image_id
    assert body["task"]["profile"]["task_completed_action"] == "power_off"
    [task] = _tasks(app)
    assert task.state == "checked_in" and task.kind == "deploy"
    # The token works for that task's client calls.
    options = anon_client.get(f"/api/v1/client/profiles/{task.profile_id}/options",
                              headers={"Authorization": f"Bearer {body['token']}"})
    assert options.status_code == 200


def test_anonymous_check_in_without_a_match_gets_nothing(app, anon_client):
    _matching_image(app)
    answer = anon_client.post("/api/v1/client/checkin", json={"mac": MAC, "model": "Other"})
    assert answer.status_code == 401
    assert "model match" in answer.get_json()["error"]
    with app.app_context():
        assert _db.session.scalar(_db.select(Computer).filter_by(mac=MAC)) is None
    assert _tasks(app) == []


def test_anonymous_check_in_never_joins_a_web_task(app, anon_client, api_headers):
    image_id = _matching_image(app)
    with app.app_context():
        computer = Computer(name="pc-21", mac=MAC)
        _db.session.add(computer)
        _db.session.commit()
        computer_id = computer.id
    created = app.test_client().post("/api/v1/tasks", headers=api_headers, json={
        "kind": "upload", "computer_id": computer_id, "image_id": image_id})
    assert created.status_code == 201, created.get_json()
    # Someone who copies this machine's MAC and a matching model gets neither task nor token.
    answer = anon_client.post("/api/v1/client/checkin", json={
        "mac": MAC, "model": "Castor Lab PC 2"})
    assert answer.status_code == 401 and "token" not in answer.get_json()
    assert [t.kind for t in _tasks(app)] == ["upload"]


def test_a_plus_in_the_model_is_kept_as_ipxe_sends_it(app, anon_client):
    # iPXE's uristring escapes the spaces of QEMU's product name but not its '+'.
    _matching_image(app, "Standard PC (i440FX + PIIX, 1996)", "equals")
    script = anon_client.get(f"/boot/ipxe?mac={MAC}"
                             "&model=Standard%20PC%20(i440FX%20+%20PIIX,%201996)").get_data(True)
    assert "castor_mode=modelmatch" in script
