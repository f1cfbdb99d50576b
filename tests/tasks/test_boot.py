"""The iPXE script, the default menu, boot files and the pxelinux/GRUB renderers."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.extensions import db as _db
from app.models import BootTicket, Task
from app.models.users import hash_token
from app.tasks import bootfiles
from app.tasks.service import create_task
from tests.tasks.conftest import add_computer, add_image


def _web_task(app, kernel="bzImage6", boot_image="castor-initrd.xz", args="quiet loglevel=3"):
    """Create a deploy task whose profile has PXE options; return (task id, token, mac)."""
    with app.app_context():
        image = add_image("lab")
        profile = image.profiles[0]
        profile.pxe_kernel, profile.pxe_boot_image, profile.kernel_args = (
            kernel, boot_image, args)
        computer = add_computer("pc-9", "aa:bb:cc:dd:ee:09", image)
        task, token = create_task("deploy", computer)
        _db.session.commit()
        return task.id, token, computer.mac


def _args_line(script: str) -> str:
    return next(line for line in script.splitlines() if line.startswith("kernel "))


def test_ipxe_task_script_without_login(app, anon_client):
    app.config["SERVER_URL"] = "http://castor.lan:8080"
    task_id, token, mac = _web_task(app)
    response = anon_client.get("/boot/ipxe?mac=AA-BB-CC-DD-EE-09")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    script = response.get_data(as_text=True)
    lines = script.splitlines()
    assert lines[0] == "#!ipxe"
    line = _args_line(script)
    ticket = line.rsplit("castor_ticket=", 1)[1].split()[0]
    assert line == (
        "kernel http://castor.lan:8080/boot/files/bzImage6 initrd=castor-initrd.xz "
        f"quiet loglevel=3 castor_server=http://castor.lan:8080 castor_mode=task "
        f"castor_ticket={ticket} castor_action=reboot")
    assert ticket.startswith("cbt_") and ticket != token
    assert "initrd http://castor.lan:8080/boot/files/castor-initrd.xz" in lines
    assert "boot || goto failed" in lines
    assert f"task {task_id}" in script and "menu" not in script


def test_each_ipxe_script_gets_a_new_ticket_bound_to_task_and_mac(app, anon_client):
    task_id, _ticket, mac = _web_task(app)
    first = _args_line(anon_client.get(f"/boot/ipxe?mac={mac}").get_data(as_text=True))
    second = _args_line(anon_client.get(f"/boot/ipxe?mac={mac}").get_data(as_text=True))
    t1, t2 = (line.rsplit("castor_ticket=", 1)[1].split()[0] for line in (first, second))
    assert t1 != t2
    with app.app_context():
        rows = _db.session.scalars(_db.select(BootTicket).filter_by(source="ipxe")).all()
        # Only the newest unused iPXE ticket is kept, hashed, with the task and the MAC.
        assert [(r.ticket_hash, r.task_id, r.mac) for r in rows] == [
            (hash_token(t2), task_id, mac)]


def test_default_menu_without_a_task(app, anon_client):
    app.config["SERVER_URL"] = "http://10.0.0.1"
    for url in ("/boot/ipxe", "/boot/ipxe?mac=aa:bb:cc:dd:ee:77", "/boot/ipxe?mac=junk"):
        script = anon_client.get(url).get_data(as_text=True)
        assert script.startswith("#!ipxe\nmenu Castor\n")
        assert "item local Boot from the local disk" in script
        assert "item ondemand On-demand imaging" in script
        assert "choose --default local --timeout 10000 target && goto ${target}" in script
        assert ("kernel http://10.0.0.1/boot/files/vmlinuz initrd=initrd.img "
                "castor_server=http://10.0.0.1 castor_mode=ondemand") in script
        assert "castor_ticket" not in script


def test_profile_without_pxe_options_uses_the_defaults(app, anon_client):
    _task_id, token, mac = _web_task(app, kernel="", boot_image="", args="")
    line = _args_line(anon_client.get(f"/boot/ipxe?mac={mac}").get_data(as_text=True))
    assert line.startswith(f"kernel {app.config['SERVER_URL']}/boot/files/vmlinuz "
                           f"initrd=initrd.img castor_server={app.config['SERVER_URL']} "
                           "castor_mode=task castor_ticket=cbt_")


def test_boot_files_are_served_publicly(app, anon_client):
    folder = Path(app.config["BOOT_FILES_PATH"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vmlinuz").write_bytes(b"\x7fkernel")
    assert anon_client.get("/boot/files/vmlinuz").data == b"\x7fkernel"
    assert anon_client.get("/boot/files/missing").status_code == 404
    assert anon_client.get("/boot/files/../castor.db").status_code == 404


def test_pxelinux_and_grub_content(app):
    _task_id, token, mac = _web_task(app)
    pxe = bootfiles.pxelinux_path(app.config["TFTP_PATH"], mac).read_text().splitlines()
    assert pxe[:3] == ["DEFAULT castor", "PROMPT 0", "TIMEOUT 0"]
    assert "  KERNEL bzImage6" in pxe and "  INITRD castor-initrd.xz" in pxe
    assert (f"  APPEND quiet loglevel=3 castor_server={app.config['SERVER_URL']} "
            f"castor_mode=task castor_ticket={token} castor_action=reboot") in pxe
    grub = bootfiles.grub_path(app.config["TFTP_PATH"], mac).read_text().splitlines()
    assert grub[0:2] == ["set default=0", "set timeout=0"]
    assert grub[2].startswith("menuentry 'deploy lab on pc-9 (task ")
    assert (f"  linux /bzImage6 quiet loglevel=3 castor_server={app.config['SERVER_URL']} "
            f"castor_mode=task castor_ticket={token} castor_action=reboot") in grub
    assert "  initrd /castor-initrd.xz" in grub


def test_line_breaks_cannot_be_injected():
    with pytest.raises(ValueError, match="line breaks"):
        bootfiles.render_pxelinux(kernel="k", boot_image="i", args="a\nKERNEL evil", title="t")


def test_an_expired_task_no_longer_boots_into_imaging(app, anon_client):
    from datetime import timedelta

    from app.models.base import utcnow

    task_id, _token, mac = _web_task(app)
    with app.app_context():
        _db.session.execute(_db.update(Task).values(updated_at=utcnow() - timedelta(hours=3)))
        _db.session.commit()
    script = anon_client.get(f"/boot/ipxe?mac={mac}").get_data(as_text=True)
    assert "menu Castor" in script and "castor_ticket" not in script
    with app.app_context():
        assert _db.session.get(Task, task_id).state == "failed"
    assert not bootfiles.pxelinux_path(app.config["TFTP_PATH"], mac).exists()
