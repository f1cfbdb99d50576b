"""Automatic disk selection on lsblk output: candidates, Destination, identity, fail closed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client import autodisk
from client.autodisk import Candidate, DiskSelectionError, Want

DATA = Path(__file__).parent / "data"


def _lsblk(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def test_host_root_disk_is_never_a_candidate():
    # Captured on a server whose only disk holds the running system.
    assert autodisk.candidates(_lsblk("lsblk-host.json")) == []
    with pytest.raises(DiskSelectionError, match="no disk to deploy to"):
        autodisk.select_for_deploy([], [Want(index=0)])


def test_workstation_candidates_leave_out_usb_stick_dvd_and_zram():
    found = autodisk.candidates(_lsblk("lsblk-workstation.json"))
    assert [c.path for c in found] == ["/dev/nvme0n1", "/dev/sda"]
    assert found[1].serial == "S4XBNF0M812345" and found[1].table == "gpt"


def test_two_candidates_and_no_hint_is_refused():
    found = autodisk.candidates(_lsblk("lsblk-workstation.json"))
    with pytest.raises(DiskSelectionError, match="refusing to guess"):
        autodisk.select_for_deploy(found, [Want(index=0)])


def test_destination_wins_over_order_and_size():
    found = autodisk.candidates(_lsblk("lsblk-workstation.json"))
    assert autodisk.select_for_deploy(found, [Want(index=0, destination="/dev/sda")]) == [
        "/dev/sda"]
    assert autodisk.select_for_deploy(found, [Want(index=0, destination="nvme0n1")]) == [
        "/dev/nvme0n1"]


def test_missing_destination_fails_closed_instead_of_taking_another_disk():
    found = autodisk.candidates(_lsblk("lsblk-workstation.json"))
    with pytest.raises(DiskSelectionError, match="/dev/sdc, which is not one of the disks"):
        autodisk.select_for_deploy(found, [Want(index=0, destination="/dev/sdc")])


def test_serial_and_wwn_pick_the_same_drive():
    found = autodisk.candidates(_lsblk("lsblk-workstation.json"))
    assert autodisk.select_for_deploy(found, [Want(index=0, serial="PHAB1234567890")]) == [
        "/dev/nvme0n1"]
    assert autodisk.select_for_deploy(found, [Want(index=0, wwn="0x5002538e40a1b2c3")]) == [
        "/dev/sda"]


def test_minimum_size_leaves_one_disk_that_fits():
    found = autodisk.candidates(_lsblk("lsblk-workstation.json"))
    assert autodisk.select_for_deploy(found, [Want(index=0, min_bytes=300 * 10**9)]) == [
        "/dev/sda"]


def test_disk_smaller_than_the_minimum_is_refused():
    small = [Candidate(path="/dev/vda", size_bytes=8 * 10**9)]
    with pytest.raises(DiskSelectionError, match="smaller than the 20.0 GB"):
        autodisk.select_for_deploy(small, [Want(index=0, min_bytes=20 * 10**9)])
    with pytest.raises(DiskSelectionError, match="smaller than the 20.0 GB"):
        autodisk.select_for_deploy(small, [Want(index=0, destination="/dev/vda",
                                                min_bytes=20 * 10**9)])


def test_schema_disks_placed_in_order_with_one_destination():
    found = autodisk.candidates(_lsblk("lsblk-workstation.json"))
    wants = [Want(index=0), Want(index=1, destination="/dev/nvme0n1")]
    assert autodisk.select_for_deploy(found, wants) == ["/dev/sda", "/dev/nvme0n1"]


def test_boot_medium_hint_removes_a_disk():
    lsblk = _lsblk("lsblk-workstation.json")
    found = autodisk.candidates(lsblk, autodisk.boot_disks("quiet castor_bootdev=/dev/sda"))
    assert [c.path for c in found] == ["/dev/nvme0n1"]


def test_upload_takes_disks_with_a_partition_table():
    found = autodisk.candidates(_lsblk("lsblk-workstation.json"))
    assert autodisk.select_for_upload(found) == ["/dev/sda"]
    with pytest.raises(DiskSelectionError, match="no disk with a partition table"):
        autodisk.select_for_upload([c for c in found if not c.table])


def test_wants_from_a_modified_deploy_schema():
    schema = {"disks": [{"index": 0, "destination": "/dev/sdb"},
                        {"index": 1, "deploy": False}]}
    options = {"modify_image_schema": True, "deploy_schema": json.dumps(schema)}
    assert autodisk.wants_from_profile(options, None) == [Want(index=0, destination="/dev/sdb")]
    assert autodisk.wants_from_profile({"deploy_schema": json.dumps(schema)},
                                       {"size_on_client_bytes": 5}) == [Want(index=0, min_bytes=5)]


@pytest.mark.root
def test_real_lsblk_on_a_loop_disk(tmp_path):
    import subprocess

    image = tmp_path / "bootenv-autodisk.img"
    with open(image, "wb") as f:
        f.truncate(64 * 2**20)
    subprocess.run(["sgdisk", "-n", "1:2048:0", str(image)], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], check=True,
                          capture_output=True, text=True).stdout.strip()
    try:
        found = [c for c in autodisk.local_disks(loops=True) if c.path == loop]
        assert found and found[0].size_bytes == 64 * 2**20 and found[0].table == "gpt"
        assert autodisk.select_for_upload(found) == [loop]
        assert loop not in [c.path for c in autodisk.local_disks()]
        with pytest.raises(DiskSelectionError, match="smaller than"):
            autodisk.select_for_deploy(found, [Want(index=0, min_bytes=2**30)])
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
