"""On demand from the console: a VM without a task picks *On-demand imaging* in the boot menu,
and a person at the serial console signs in and uploads its disk as a new image through the
whiptail menu, then powers the machine off from that menu."""

from __future__ import annotations

import time

import pytest

from app.extensions import db as _db
from app.models import Image, Task
from tests.client.disks import make_disk
from tests.netboot.serial import DOWN, ENTER, SerialVm
from tests.netboot.test_tasks import TIMINGS, network_args

MIB = 1 << 20
MAC = "52:54:00:be:00:08"


@pytest.mark.boot_full  # `make test-boot`: keeps `make test` inside its time budget
def test_on_demand_upload_driven_over_the_serial_console(app, api, lab, tmp_path):
    disk = tmp_path / "disk.img"
    make_disk(disk, 96, "gpt", [(64, "ext4")], seed=8, big_bytes=4 * MIB)
    started = time.monotonic()
    vm = SerialVm([disk], "bios", tmp_path / "console.log",
                  extra_args=network_args(lab.tap(), MAC))
    try:
        vm.expect("On-demand imaging", timeout=300)  # iPXE's menu, default: the local disk
        vm.send(DOWN + ENTER)
        vm.expect("What now?", timeout=300)  # the environment's whiptail menu
        menu_at = time.monotonic()
        vm.send(DOWN + ENTER)  # the second item: upload
        vm.expect("User name", timeout=60)
        vm.send("admin" + ENTER, pause=0.1)
        vm.expect("Password of admin", timeout=60)
        vm.send("correct horse" + ENTER, pause=0.1)
        vm.expect("Image to upload", timeout=60)
        vm.send(ENTER)  # the only entry: new image
        vm.expect("Name of the new image", timeout=60)
        vm.send("ondemand-vm" + ENTER, pause=0.1)
        vm.expect("On-demand upload of ondemand-vm done.", timeout=600)
        vm.send(ENTER)
        vm.expect("What now?", timeout=60)
        vm.send(DOWN * 4 + ENTER)  # the last item: power off
        code = vm.wait_exit(120)
        assert code is not None, vm.text()[-3000:]
    finally:
        vm.kill()
    TIMINGS["ondemand_serial_bios"] = time.monotonic() - started
    TIMINGS["ondemand_menu_to_upload_done"] = time.monotonic() - menu_at
    assert "on-demand menu left: power_off" in vm.text()
    with app.app_context():
        image = _db.session.scalar(_db.select(Image).filter_by(name="ondemand-vm"))
        assert image is not None and image.protected and image.schema is not None
        assert image.schema["disks"][0]["partitions"][0]["filesystem"]["type"] == "ext4"
        tasks = _db.session.scalars(_db.select(Task).filter_by(image_id=image.id)).all()
        assert [(t.kind, t.on_demand, t.state) for t in tasks] == [("upload", True, "done")]
    print(f"netboot timings: {TIMINGS}")
