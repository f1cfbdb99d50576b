"""What the server's boot files tell the environment: the completed action, and no injection.

The environment reads `castor_*` words from /proc/cmdline with the client's own parser, so
these tests read the generated iPXE, pxelinux and GRUB lines with that same parser.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.extensions import db as _db
from app.models import Computer, Image, Task, default_profile_for
from app.tasks import bootfiles
from client import bootinit
from client.identity import parse_cmdline


def _add(app, action: str = "power_off", args: str = "console=ttyS0") -> tuple[int, str]:
    """Add an image whose profile ends with `action`, and a computer; return (image id, mac)."""
    with app.app_context():
        image = Image(name="lab", environment="linux", image_type="block")
        profile = default_profile_for("block", "linux")
        profile.task_completed_action, profile.kernel_args = action, args
        image.profiles.append(profile)
        computer = Computer(name="pc-7", mac="52:54:00:12:34:07")
        _db.session.add_all([image, computer])
        _db.session.commit()
        return image.id, computer.id


def _task(client, headers, computer_id: int, image_id: int, kind: str = "deploy"):
    return client.post("/api/v1/tasks", json={"kind": kind, "computer_id": computer_id,
                                              "image_id": image_id}, headers=headers)


def _kernel_line(script: str) -> str:
    return next(line for line in script.splitlines() if line.startswith("kernel "))


@pytest.mark.parametrize("action", ["power_off", "exit_to_shell", "reboot"])
def test_every_boot_file_carries_the_completed_action_the_environment_reads(
        app, anon_client, api_headers, action):
    image_id, computer_id = _add(app, action)
    answer = _task(app.test_client(), api_headers, computer_id, image_id)
    assert answer.status_code == 201, answer.get_json()
    ipxe = _kernel_line(anon_client.get("/boot/ipxe?mac=52:54:00:12:34:07").get_data(True))
    pxelinux = bootfiles.pxelinux_path(app.config["TFTP_PATH"], "52:54:00:12:34:07")
    grub = bootfiles.grub_path(app.config["TFTP_PATH"], "52:54:00:12:34:07")
    append = next(line for line in pxelinux.read_text().splitlines() if "APPEND" in line)
    linux = next(line for line in grub.read_text().splitlines() if "linux /" in line)
    for line in (ipxe, append, linux):
        settings = parse_cmdline(line)
        assert settings["mode"] == "task" and settings["ticket"].startswith("cbt_")
        assert settings["action"] == action
        # What the init runs when the client never gets to run the profile's action.
        assert bootinit.fallback_action(settings) == action


def test_the_check_in_answer_names_the_same_action(app, anon_client, api_headers):
    image_id, computer_id = _add(app, "power_off")
    _task(app.test_client(), api_headers, computer_id, image_id)
    line = _kernel_line(anon_client.get("/boot/ipxe?mac=52:54:00:12:34:07").get_data(True))
    ticket = parse_cmdline(line)["ticket"]
    answer = anon_client.post("/api/v1/client/checkin",
                              json={"ticket": ticket, "mac": "52:54:00:12:34:07"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["task"]["profile"]["task_completed_action"] == "power_off"


def test_a_task_cancelled_before_check_in_cannot_be_joined(app, anon_client, api_headers):
    image_id, computer_id = _add(app, "power_off")
    client = app.test_client()
    task_id = _task(client, api_headers, computer_id, image_id).get_json()["task"]["id"]
    line = _kernel_line(anon_client.get("/boot/ipxe?mac=52:54:00:12:34:07").get_data(True))
    assert client.post(f"/api/v1/tasks/{task_id}/cancel", headers=api_headers).status_code in (
        200, 202)
    # The machine booted already: its ticket no longer buys a token, so nothing is imaged, and
    # the init runs the action the command line carries.
    answer = anon_client.post("/api/v1/client/checkin", json={
        "ticket": parse_cmdline(line)["ticket"], "mac": "52:54:00:12:34:07"})
    assert answer.status_code == 401
    assert "boot ticket" in answer.get_json()["error"]
    assert bootinit.fallback_action(parse_cmdline(line)) == "power_off"
    # And the next boot gets the menu, not the task.
    script = anon_client.get("/boot/ipxe?mac=52:54:00:12:34:07").get_data(True)
    assert "castor_mode=task" not in script and "menu Castor" in script
    with app.app_context():
        assert _db.session.get(Task, task_id).state == "cancelled"


INJECTIONS = ["quiet; reboot", "quiet && reboot", "quiet || reboot", "quiet # x",
              "x ${net0/mac}", "x $(reboot)", "x }", "x\nKERNEL evil", 'x "y"', "x `y`"]


@pytest.mark.parametrize("args", INJECTIONS)
def test_kernel_argument_injection_is_refused_in_every_renderer(args):
    with pytest.raises(ValueError):
        bootfiles.task_kernel_args(args, "http://s", "cbt_x", action="reboot")
    assert bootfiles.task_kernel_args("quiet console=ttyS0,115200n8 ip=dhcp", "http://s",
                                      "cbt_x") == (
        "quiet console=ttyS0,115200n8 ip=dhcp castor_server=http://s castor_mode=task "
        "castor_ticket=cbt_x")


def test_profile_api_refuses_quiet_semicolon_reboot(app, api_headers):
    image_id, _computer_id = _add(app)
    client = app.test_client()
    with app.app_context():
        profile_id = _db.session.get(Image, image_id).profiles[0].id
    answer = client.patch(f"/api/v1/images/{image_id}/profiles/{profile_id}",
                          json={"kernel_args": "quiet; reboot"}, headers=api_headers)
    assert answer.status_code in (400, 422), answer.get_json()
    with app.app_context():
        assert _db.session.get(Image, image_id).profiles[0].kernel_args == "console=ttyS0"


def test_a_stored_injection_never_reaches_a_boot_file(app, anon_client, api_headers):
    image_id, computer_id = _add(app, args="console=ttyS0")
    client = app.test_client()
    # A value stored around the profile form's rule (an old row, a direct database edit).
    with app.app_context():
        _db.session.get(Image, image_id).profiles[0].kernel_args = "quiet; reboot"
        _db.session.commit()
    answer = _task(client, api_headers, computer_id, image_id)
    assert answer.status_code == 422  # schema-valid, refused by the boot-argument rule
    assert "kernel arguments" in answer.get_json()["error"]
    assert not list(Path(app.config["TFTP_PATH"]).rglob("*01-*"))
    # A task created before the value changed: its script says why and boots the local disk.
    with app.app_context():
        _db.session.get(Image, image_id).profiles[0].kernel_args = "console=ttyS0"
        _db.session.commit()
    assert _task(client, api_headers, computer_id, image_id).status_code == 201
    with app.app_context():
        _db.session.get(Image, image_id).profiles[0].kernel_args = "quiet; reboot"
        _db.session.commit()
    script = anon_client.get("/boot/ipxe?mac=52:54:00:12:34:07").get_data(True)
    assert "\nkernel " not in script and "reboot" not in script and ";" not in script
    assert "cannot boot" in script and script.rstrip().endswith("exit")
