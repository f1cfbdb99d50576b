"""The whole chain with a real OS: an upload web task captures a VM's real Debian (which
still boots afterwards), a web deploy task network-boots a blank VM, deploys that image,
reboots (the completed action), boots from the network again, the menu falls through to the
local disk and the deployed Debian boots to its serial marker."""

from __future__ import annotations

import time

import pytest

from app.extensions import db as _db
from app.models import Image, Task
from tests.netboot.test_tasks import (
    TIMINGS,
    add_image_and_computer,
    create_task,
    netboot,
    network_args,
)
from tests.vm.layouts import LAYOUTS
from tests.vm.osdisks import copy_sparse, source_disk
from tests.vm.qemu import boot_vm

GIB = 1 << 30
MAC = "52:54:00:be:00:02"


@pytest.mark.boot_full
def test_upload_real_debian_then_deploy_web_task_then_local_disk_boots_bios(
        app, api, lab, tmp_path):
    layout = LAYOUTS["bios-grub"]
    source = copy_sparse(source_disk(layout), tmp_path / "source.img")
    image_id, computer_id = add_image_and_computer(app, "debian-bios", MAC, action="reboot")
    # The upload is a web task too: the machine holding the real Debian network-boots,
    # its disk is shrunk, captured and grown back; afterwards it must still boot.
    task_id = create_task(api, "upload", computer_id, image_id)
    started = time.monotonic()
    run = netboot(lab, [source], MAC, tmp_path / "upload.log", timeout=2400)
    TIMINGS["upload_os_bios"] = time.monotonic() - started
    with app.app_context():
        task = _db.session.get(Task, task_id)
        image = _db.session.get(Image, image_id)
        assert task.state == "done", (task.error, run.console[-3000:])
        assert image.protected and image.schema is not None
        parts = image.schema["disks"][0]["partitions"]
        assert [p["filesystem"]["type"] if p["filesystem"] else None for p in parts] == [
            "ext4", "swap"], parts
    started = time.monotonic()
    source_boot = boot_vm([source], "bios", console=tmp_path / "source-boot.log",
                          marker="CASTOR-BOOT", timeout=600, memory_mib=1536)
    TIMINGS["source_boots_after_upload_bios"] = time.monotonic() - started
    assert source_boot.marker, f"{source_boot.failure}\n{source_boot.console[-3000:]}"
    assert source_boot.fields["fsck"] == "clean", source_boot.marker

    target = tmp_path / "target.img"
    with open(target, "wb") as f:
        f.truncate(layout.size_mib * (1 << 20))
    task_id = create_task(api, "deploy", computer_id, image_id)
    started = time.monotonic()
    run = netboot(lab, [target], MAC, tmp_path / "deploy.log", timeout=1500)
    TIMINGS["deploy_os_bios"] = time.monotonic() - started
    with app.app_context():
        task = _db.session.get(Task, task_id)
        assert task.state == "done", (task.error, run.console[-3000:])
        assert _db.session.get(Image, image_id).protected

    # The reboot: no task any more, so the menu times out to the local disk, which boots.
    started = time.monotonic()
    again = boot_vm([target], "bios", console=tmp_path / "local.log", marker="CASTOR-BOOT",
                    timeout=600, memory_mib=1536, extra_args=network_args(lab.tap(), MAC))
    TIMINGS["local_boot_bios"] = time.monotonic() - started
    assert again.marker, f"{again.failure}\n{again.console[-3000:]}"
    assert "Boot from the local disk" in again.console
    assert "Booting from Hard Disk" in again.console
    print(f"netboot timings: {TIMINGS}")
