"""UEFI and NVRAM end to end, on a Debian disk whose loader has no removable-path copy.

One UEFI machine keeps its OVMF variable store across runs: a deploy web task writes the
Debian boot entry with efibootmgr; the next power-on boots from the network first, gets the
menu, falls through to the local disk, and the firmware starts the deployed Debian through
that entry (the ESP holds nothing at \\EFI\\BOOT\\BOOTX64.EFI). A second machine, unknown to
Castor, has the DMI product name a profile's model match wants and that profile has Don't
Update NVRAM on: it is deployed without any task, and its variable store gets no entry.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import pytest

from app.extensions import db as _db
from app.models import Computer, Image, ImageProfile, Task, default_profile_for
from tests.netboot.lab import ROOT
from tests.netboot.nvram_disk import LOADER, esp_files, nvram_only_disk, vars_hold
from tests.netboot.test_tasks import (
    TIMINGS,
    add_image_and_computer,
    create_task,
    netboot,
)
from tests.vm.qemu import OVMF_VARS, boot_vm

GIB = 1 << 30
MAC = "52:54:00:be:00:05"
MODEL_MAC = "52:54:00:be:00:06"
MODEL = "Castor Lab PC 9"


@pytest.fixture(scope="module")
def uefi_image(app, api, lab, tmp_path_factory):
    """The NVRAM-only Debian uploaded to Castor (natively: TCG would take long)."""
    tmp = tmp_path_factory.mktemp("uefi-source")
    source = nvram_only_disk(tmp / "source.img")
    image_id, computer_id = add_image_and_computer(app, "debian-uefi", MAC, action="reboot")
    token = api[1]["Authorization"].split()[1]
    upload = subprocess.run(
        ["ip", "netns", "exec", lab.ns, sys.executable, "-m", "client.main", "--server",
         lab.server_url, "--token", token, "upload", "--image", "debian-uefi", "--disk",
         str(source)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert upload.returncode == 0, upload.stderr[-3000:]
    with app.app_context():
        schema = _db.session.get(Image, image_id).schema
    esp = schema["disks"][0]["partitions"][0]
    # The upload recorded the ESP's boot entry: what the deploy writes into NVRAM.
    entry = esp["efi_boot"]
    assert entry["label"] == "debian" and entry["loader"].lower() == LOADER.lower(), esp
    return image_id, computer_id, entry["loader"]


@pytest.mark.boot_full
def test_uefi_deploy_writes_nvram_then_the_menu_falls_through_to_that_entry(
        app, api, lab, uefi_image, tmp_path):
    image_id, computer_id, loader = uefi_image
    vars_file = tmp_path / "machine.vars.fd"  # this machine's NVRAM, kept across power-ons
    shutil.copyfile(OVMF_VARS, vars_file)
    target = tmp_path / "target.img"
    with open(target, "wb") as f:
        f.truncate(8 * GIB)
    task_id = create_task(api, "deploy", computer_id, image_id)
    started = time.monotonic()
    run = netboot(lab, [target], MAC, tmp_path / "deploy.log", firmware="uefi",
                  timeout=1500, vars_file=vars_file)
    TIMINGS["deploy_nvram_uefi"] = time.monotonic() - started
    with app.app_context():
        task = _db.session.get(Task, task_id)
        assert task.state == "done", (task.error, run.console[-3000:])
        assert "NVRAM: efibootmgr -q --create --disk /dev/vda --part 1 --label debian" in task.log
        assert "NVRAM boot entries now:" in task.log and "debian" in task.log
        assert "the network entry this machine booted from stays first" in task.log
    assert vars_hold(vars_file, "debian") and vars_hold(vars_file, loader)
    assert not any("/BOOT" in path.upper() for path in esp_files(target)), esp_files(target)

    # Power on again, network first: no task, the menu's timeout exits to the firmware, which
    # has no removable-path loader to find and boots the NVRAM entry.
    started = time.monotonic()
    # No qemu bootindex this time: OVMF would rewrite BootOrder from it. The firmware follows
    # its own NVRAM, where the client kept the network entry first and its new entry next.
    nic = ["-netdev", f"tap,id=n0,ifname={lab.tap()},script=no,downscript=no",
           "-device", f"virtio-net-pci,netdev=n0,mac={MAC}"]
    again = boot_vm([target], "uefi", console=tmp_path / "local.log", marker="CASTOR-BOOT",
                    timeout=900, memory_mib=1536, vars_file=vars_file, extra_args=nic,
                    fail_on=('starting Boot0000 "UiApp"',))
    TIMINGS["menu_to_nvram_boot_uefi"] = time.monotonic() - started
    assert again.marker, f"{again.failure}\n{again.console[-4000:]}"
    assert again.fields["firmware"] == "uefi", again.marker
    assert "Boot from the local disk" in again.console
    # The firmware started the entry the deploy wrote (nothing else on the ESP could boot).
    assert 'starting Boot0007 "debian"' in again.console or '"debian" from HD(1,GPT' in (
        again.console), again.console[-4000:]
    print(f"netboot timings: {TIMINGS}")


@pytest.mark.boot_full
def test_model_match_deploys_without_a_task_and_dont_update_nvram_writes_no_entry(
        app, api, lab, uefi_image, tmp_path):
    image_id, _computer_id, loader = uefi_image
    with app.app_context():
        profile = default_profile_for("block", "linux")
        profile.name, profile.image_id = "lab-pcs", image_id
        profile.model_match, profile.model_match_criteria = MODEL, "equals"
        profile.dont_update_nvram, profile.task_completed_action = True, "power_off"
        profile.kernel_args = "console=ttyS0"
        _db.session.add(profile)
        _db.session.commit()
        profile_id = profile.id
        tasks_before = _db.session.scalar(_db.select(_db.func.count(Task.id)))
    vars_file = tmp_path / "machine.vars.fd"
    shutil.copyfile(OVMF_VARS, vars_file)
    target = tmp_path / "target.img"
    with open(target, "wb") as f:
        f.truncate(8 * GIB)
    started = time.monotonic()
    run = netboot(lab, [target], MODEL_MAC, tmp_path / "model.log", firmware="uefi",
                  timeout=1500, vars_file=vars_file,
                  extra_args=("-smbios", f"type=1,product={MODEL}"))
    TIMINGS["model_match_deploy_uefi"] = time.monotonic() - started
    assert "model match" in run.console
    with app.app_context():
        computer = _db.session.scalar(_db.select(Computer).filter_by(mac=MODEL_MAC))
        assert computer is not None and computer.model == MODEL
        tasks = _db.session.scalars(_db.select(Task).filter_by(computer_id=computer.id)).all()
        # The only task is the one the check-in created; nobody created a web task.
        assert [(t.kind, t.profile_id, t.state) for t in tasks] == [
            ("deploy", profile_id, "done")], (tasks[0].error if tasks else run.console[-3000:])
        assert _db.session.scalar(_db.select(_db.func.count(Task.id))) == tasks_before + 1
        log = tasks[0].log
        assert "not updating NVRAM: the profile's Don't Update NVRAM is on" in log
        assert "efibootmgr -q --create" not in log
        assert _db.session.get(ImageProfile, profile_id).dont_update_nvram
    assert not vars_hold(vars_file, loader) and not vars_hold(vars_file, "debian")
    print(f"netboot timings: {TIMINGS}")


def _cancel_once_imaging(app, api, task_id: int, settle: float, result: dict) -> None:
    """Cancel the task from the web API once its client has been imaging for `settle` s."""
    client, headers = api
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        with app.app_context():
            state = _db.session.get(Task, task_id).state
            _db.session.remove()
        if state == "imaging":
            time.sleep(settle)
            answer = client.post(f"/api/v1/tasks/{task_id}/cancel", headers=headers)
            result["status"], result["body"] = answer.status_code, answer.get_json()
            result["at"] = time.monotonic()
            return
        if state in ("done", "failed", "cancelled"):
            result["missed"] = state
            return
        time.sleep(1)


@pytest.mark.boot_full
def test_web_cancel_stops_the_client_sends_its_partial_log_and_runs_the_action(
        app, api, lab, uefi_image, tmp_path):
    image_id, _computer_id, loader = uefi_image
    with app.app_context():
        profile = default_profile_for("block", "linux")
        profile.name, profile.image_id = "cancellable", image_id
        profile.web_cancel, profile.task_completed_action = True, "power_off"
        profile.kernel_args = "console=ttyS0"
        computer = Computer(name="vm-cancel", mac="52:54:00:be:00:07")
        _db.session.add_all([profile, computer])
        _db.session.commit()
        profile_id, computer_id = profile.id, computer.id
    client, headers = api
    answer = client.post("/api/v1/tasks", headers=headers, json={
        "kind": "deploy", "computer_id": computer_id, "image_id": image_id,
        "profile_id": profile_id})
    assert answer.status_code == 201, answer.get_json()
    task_id = answer.get_json()["task"]["id"]
    target = tmp_path / "target.img"
    with open(target, "wb") as f:
        f.truncate(8 * GIB)
    result: dict = {}
    canceller = threading.Thread(target=_cancel_once_imaging,
                                 args=(app, api, task_id, 20.0, result), daemon=True)
    canceller.start()
    started = time.monotonic()
    run = netboot(lab, [target], "52:54:00:be:00:07", tmp_path / "cancel.log",
                  firmware="uefi", timeout=1500)
    ended = time.monotonic()
    TIMINGS["web_cancel_uefi"] = ended - started
    canceller.join(5)
    assert result.get("status") == 200, (result, run.console[-3000:])
    # Web cancel keeps the task open until its client stops and checks out.
    assert result["body"]["task"]["state"] not in ("done",), result
    with app.app_context():
        task = _db.session.get(Task, task_id)
        assert task.state == "cancelled", (task.state, task.error, run.console[-3000:])
        # The partial log reached the server: the start of the deploy, and why it stopped.
        assert "deploy started on /dev/vda" in task.log, task.log[-2000:]
        assert "cancel" in task.log.lower()
        assert "done" not in task.log.splitlines()[-1]
    # The client stopped mid-partition, then the completed action ran: the kernel powers off.
    assert "deploy failed: cancelled" in run.console, run.console[-3000:]
    assert "reboot: Power down" in run.console, run.console[-3000:]
    TIMINGS["web_cancel_stop_after_cancel"] = ended - result["at"]
    print(f"netboot timings: {TIMINGS}")
