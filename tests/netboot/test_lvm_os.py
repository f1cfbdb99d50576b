"""Debian installed on LVM, imaged for real: an upload web task captures each logical volume
(the big root LV shrunk, filesystem first, then the LV), the source still boots with its
LVs whole again, and deploy web tasks put the image on a smaller and a larger disk, where
it boots to userspace with the LVs at their planned sizes.

The two deploys run at once (two VMs, one per core), and so do the three boots."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app.deploys import image_planner_input
from app.extensions import db as _db
from app.models import Computer, Image, Task
from tests.netboot.test_tasks import TIMINGS, add_image_and_computer, create_task, netboot
from tests.vm.lvmdisk import LVM_DISK, lvm_source_disk
from tests.vm.osdisks import copy_sparse
from tests.vm.qemu import boot_vm

MIB = 1 << 20
SOURCE_MAC = "52:54:00:be:01:01"
TARGET_MACS = {"smaller": "52:54:00:be:01:02", "larger": "52:54:00:be:01:03"}


def add_computer(app, name: str, mac: str) -> int:
    """Add a computer to image; return its id."""
    with app.app_context():
        computer = Computer(name=name, mac=mac)
        _db.session.add(computer)
        _db.session.commit()
        return computer.id


def planned_volumes(app, image_id: int, size_bytes: int) -> dict[str, int]:
    """The LV sizes the server plans for a destination disk of that size (by LV name)."""
    with app.app_context():
        image = _db.session.get(Image, image_id)
        [plan] = image_planner_input(image, image.profiles[0], app.config["STORAGE_PATH"]).plan(
            [{"size_bytes": size_bytes, "logical_sector_size": 512,
              "physical_sector_size": 512, "name": "vda"}])
    [group] = plan["volume_groups"]
    return {v["name"]: v["size_bytes"] for v in group["logical_volumes"]}


def lvs_field(vg: str, sizes: dict[str, int]) -> str:
    """The booted guest's `lvs=` marker field for these LV sizes."""
    return ",".join(sorted(f"{vg}/{name}:{size}" for name, size in sizes.items()))


def check_boot(run, vg: str, sizes: dict[str, int]) -> None:
    """The disk booted to userspace from its root LV, with these LVs, clean and grown."""
    assert run.marker, f"{run.failure}\n{run.console[-3000:]}"
    fields = run.fields
    assert fields["root"] == f"/dev/mapper/{vg}-root", run.marker
    assert fields["fstype"] == "ext4" and fields["fsck"] == "clean", run.marker
    assert fields["swaps"] == "1", run.marker
    assert fields["lvs"] == lvs_field(vg, sizes), run.marker
    assert int(fields["rootdev_bytes"]) == sizes["root"], run.marker
    # Each filesystem fills its LV (ext4 keeps a few % for its journal and inode tables).
    assert int(fields["rootfs_bytes"]) > 0.90 * sizes["root"], run.marker
    assert int(fields["datafs_bytes"]) > 0.90 * sizes["data"], run.marker


def test_debian_on_lvm_uploads_and_deploys_to_smaller_and_larger_disks(app, api, lab, tmp_path):
    disk = LVM_DISK
    vg = disk.vg
    source = copy_sparse(lvm_source_disk(), tmp_path / "source.img")
    image_id, source_id = add_image_and_computer(app, "debian-lvm", SOURCE_MAC)
    task_id = create_task(api, "upload", source_id, image_id)
    started = time.monotonic()
    run = netboot(lab, [source], SOURCE_MAC, tmp_path / "upload.log", timeout=2400)
    TIMINGS["lvm_upload"] = time.monotonic() - started
    source_sizes = {v.name: v.size_mib * MIB for v in disk.volumes}
    with app.app_context():
        task = _db.session.get(Task, task_id)
        image = _db.session.get(Image, image_id)
        assert task.state == "done", (task.error, run.console[-3000:])
        schema_disk = image.schema["disks"][0]
        [group] = schema_disk["volume_groups"]
        manifest = json.loads((Path(app.config["STORAGE_PATH"]) / "images" / image.name
                               / "manifest.json").read_text())
    assert schema_disk["partitions"][1]["lvm_vg"] == vg and group["pv_partition"] == 2
    volumes = {v["name"]: v for v in group["logical_volumes"]}
    assert {n: v["size_bytes"] for n, v in volumes.items()} == source_sizes
    assert {n: v["filesystem"]["type"] for n, v in volumes.items()} == {
        "root": "ext4", "data": "ext4", "swap": "swap"}
    # The root LV is over the 5 GiB shrink threshold: its filesystem and then the LV were
    # shrunk for the capture; the 1 GiB data LV is under it and stays whole.
    root = volumes["root"]
    assert root["filesystem"]["shrunk"] and root["filesystem"]["volume_bytes"] < 2 << 30
    assert root["captured_extents"] * group["extent_bytes"] >= root["filesystem"][
        "volume_bytes"]
    assert root["captured_extents"] < root["extents"]
    assert not volumes["data"]["filesystem"]["shrunk"]
    assert "logical volume castor/root reduced to" in task.log
    stored = {f["lv"]: f for f in manifest["files"] if f.get("lv")}
    assert sorted(stored) == [f"{vg}-data", f"{vg}-root"]  # swap is recreated at deploy
    assert all(f["kind"] == "partclone" for f in stored.values())
    assert not [f for f in manifest["files"] if f.get("partition") == 2 and not f.get("lv")]

    plans = {name: planned_volumes(app, image_id, getattr(disk, f"{name}_mib") * MIB)
             for name in TARGET_MACS}
    assert plans["smaller"]["root"] < source_sizes["root"] < plans["larger"]["root"]
    assert plans["smaller"]["swap"] == plans["larger"]["swap"] == source_sizes["swap"]
    targets: dict[str, Path] = {}
    tasks: dict[str, int] = {}
    taps: dict[str, str] = {}
    for name, mac in TARGET_MACS.items():
        targets[name] = tmp_path / f"{name}.img"
        with open(targets[name], "wb") as f:
            f.truncate(getattr(disk, f"{name}_mib") * MIB)
        computer_id = add_computer(app, f"vm-lvm-{name}", mac)
        tasks[name] = create_task(api, "deploy", computer_id, image_id)
        taps[name] = lab.tap()

    def deploy(name: str):
        return netboot(lab, [targets[name]], TARGET_MACS[name], tmp_path / f"{name}.log",
                       timeout=1800, tap=taps[name])

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(TARGET_MACS, pool.map(deploy, TARGET_MACS), strict=True))
    TIMINGS["lvm_deploys_at_once"] = time.monotonic() - started
    with app.app_context():
        for name, task_id in tasks.items():
            task = _db.session.get(Task, task_id)
            assert task.state == "done", (name, task.error, runs[name].console[-3000:])
            assert f"volume group {vg} created on /dev/vda2" in task.log, task.log[-3000:]

    def boot(disk_image: Path):
        return boot_vm([disk_image], "bios", console=disk_image.with_suffix(".boot.log"),
                       marker="CASTOR-BOOT", timeout=900, memory_mib=1024)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        source_boot, *boots = pool.map(boot, [source, *targets.values()])
    TIMINGS["lvm_three_boots_at_once"] = time.monotonic() - started
    # The source is whole again: each LV and filesystem at its size from before the upload.
    check_boot(source_boot, vg, source_sizes)
    for name, run in zip(targets, boots, strict=True):
        check_boot(run, vg, plans[name])
    print(f"netboot timings: {TIMINGS}")
