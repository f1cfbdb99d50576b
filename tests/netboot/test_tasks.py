"""Web tasks end to end: VMs network-boot through proxy DHCP and iPXE into the imaging
environment, check in, image their disk with automatic disk selection, and power off."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from app.extensions import db as _db
from app.models import Computer, Image, Task, default_profile_for
from tests.client.disks import make_disk, read_sums
from tests.vm.qemu import boot_vm

MIB = 1 << 20
TIMINGS: dict[str, float] = {}
SOURCE_SUMS: dict[str, str] = {}  # files of the uploaded disk, for the later deploys


def network_args(tap: str, mac: str) -> list[str]:
    """qemu arguments of a NIC on the lab's bridge that boots first."""
    return ["-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={mac},bootindex=1"]


def netboot(lab, disks: list[Path], mac: str, console: Path, firmware: str = "bios",
            timeout: float = 600, kernel: tuple[Path, Path, str] | None = None,
            vars_file: Path | None = None, extra_args: tuple[str, ...] = (),
            tap: str | None = None):
    """Boot a VM from the network (or straight into a kernel) until it powers off.

    `vars_file` keeps a UEFI machine's NVRAM across runs; `extra_args` add qemu options
    (a DMI product name, for instance); `tap` is a lab tap made beforehand (VMs booted
    from several threads at once), else a new one.
    """
    extra = network_args(tap or lab.tap(), mac) + list(extra_args)
    if kernel:
        extra += ["-kernel", str(kernel[0]), "-initrd", str(kernel[1]), "-append", kernel[2]]
    run = boot_vm(disks, firmware, console=console, marker="CASTOR-NEVER-PRINTED",
                  timeout=timeout, memory_mib=1536, extra_args=extra, vars_file=vars_file,
                  fail_on=("Booting from Hard Disk", "Kernel panic", "No bootable device"))
    assert run.failure and run.failure.startswith("the VM exited"), (
        f"{run.failure}\n{run.console[-4000:]}")
    return run


def checkin_seconds(console: str) -> float:
    """Return the kernel uptime at which the environment started the client (from the log)."""
    found = re.search(r"castor \[\s*([\d.]+) s\]: starting task mode", console)
    assert found, console[-3000:]
    return float(found.group(1))


def add_image_and_computer(app, name: str, mac: str,
                           action: str = "power_off") -> tuple[int, int]:
    """Add an image whose profile ends with `action`, and a computer; return their ids."""
    with app.app_context():
        image = Image(name=name, environment="linux", image_type="block")
        profile = default_profile_for("block", "linux")
        profile.kernel_args = "console=ttyS0"
        profile.task_completed_action = action
        image.profiles.append(profile)
        computer = Computer(name=f"vm-{name}", mac=mac)
        _db.session.add_all([image, computer])
        _db.session.commit()
        return image.id, computer.id


def create_task(api, kind: str, computer_id: int, image_id: int) -> int:
    """Create a web task through the API; return its id."""
    client, headers = api
    answer = client.post("/api/v1/tasks", json={"kind": kind, "computer_id": computer_id,
                                                "image_id": image_id}, headers=headers)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["task"]["id"]


@pytest.mark.boot_full
def test_upload_then_deploy_web_tasks_bios(app, api, lab, tmp_path):
    source = tmp_path / "source.img"
    sums = make_disk(source, 96, "gpt", [(64, "ext4")], seed=12, big_bytes=4 * MIB)
    image_id, computer_id = add_image_and_computer(app, "netboot", "52:54:00:be:00:01")
    SOURCE_SUMS.update(sums[1])

    task_id = create_task(api, "upload", computer_id, image_id)
    started = time.monotonic()
    run = netboot(lab, [source], "52:54:00:be:00:01", tmp_path / "upload.log")
    TIMINGS["upload_bios"] = time.monotonic() - started
    TIMINGS["checkin_bios"] = checkin_seconds(run.console)
    assert "Disks chosen: /dev/vda" in run.console
    with app.app_context():
        task = _db.session.get(Task, task_id)
        image = _db.session.get(Image, image_id)
        assert task.state == "done", (task.error, run.console[-3000:])
        assert "disks chosen automatically: /dev/vda" in task.log
        assert image.protected and image.schema is not None

    target = tmp_path / "target.img"
    with open(target, "wb") as f:
        f.truncate(128 * MIB)
    task_id = create_task(api, "deploy", computer_id, image_id)
    started = time.monotonic()
    run = netboot(lab, [target], "52:54:00:be:00:01", tmp_path / "deploy.log")
    TIMINGS["deploy_bios"] = time.monotonic() - started
    with app.app_context():
        task = _db.session.get(Task, task_id)
        assert task.state == "done", (task.error, run.console[-3000:])
        assert "deploy" in task.log
    assert read_sums(target, 1, "ext4") == sums[1]
    print(f"netboot timings: {TIMINGS}")


@pytest.mark.boot_full
def test_two_candidate_disks_refused_before_anything_is_written(app, api, lab, tmp_path):
    with app.app_context():
        image_id = _db.session.scalar(_db.select(Image.id).filter_by(name="netboot"))
        computer_id = _db.session.scalar(_db.select(Computer.id).filter_by(name="vm-netboot"))
    assert image_id, "runs after the upload test, which stores the image"
    disks = [tmp_path / "a.img", tmp_path / "b.img"]
    for disk in disks:
        with open(disk, "wb") as f:
            f.truncate(128 * MIB)
    task_id = create_task(api, "deploy", computer_id, image_id)
    run = netboot(lab, disks, "52:54:00:be:00:01", tmp_path / "two-disks.log")
    assert "refusing to guess" in run.console
    with app.app_context():
        task = _db.session.get(Task, task_id)
        assert task.state == "failed", task.state
        assert "refusing to guess" in task.error + task.log
    for disk in disks:  # nothing written: the table area is still blank
        assert disk.read_bytes()[:1 << 20] == bytes(1 << 20)


@pytest.mark.boot_full
def test_deploy_web_task_uefi(app, api, lab, tmp_path):
    with app.app_context():
        image_id = _db.session.scalar(_db.select(Image.id).filter_by(name="netboot"))
        computer = Computer(name="vm-uefi", mac="52:54:00:be:00:03")
        _db.session.add(computer)
        _db.session.commit()
        computer_id = computer.id
    assert image_id, "runs after the upload test, which stores the image"
    target = tmp_path / "target.img"
    with open(target, "wb") as f:
        f.truncate(128 * MIB)
    task_id = create_task(api, "deploy", computer_id, image_id)
    started = time.monotonic()
    run = netboot(lab, [target], "52:54:00:be:00:03", tmp_path / "uefi.log", firmware="uefi")
    TIMINGS["deploy_uefi"] = time.monotonic() - started
    TIMINGS["checkin_uefi"] = checkin_seconds(run.console)
    with app.app_context():
        task = _db.session.get(Task, task_id)
        assert task.state == "done", (task.error, run.console[-3000:])
    assert read_sums(target, 1, "ext4") == SOURCE_SUMS
    print(f"netboot timings: {TIMINGS}")
