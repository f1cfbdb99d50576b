"""Partition GUIDs, disk ids and NTFS boot sector fields on real disk images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client import bootcfg
from client.mount import mounted
from client.run import ClientError
from tests.client_steps.conftest import MIB, sh
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.root]

GUID_1 = "0F8A2C1D-3B4E-4F5A-8B6C-7D8E9FA0B1C2"
GUID_2 = "1A2B3C4D-5E6F-4A7B-9C8D-0E1F2A3B4C5D"
DISK_GUID = "ABCDEF01-2345-4678-9ABC-DEF012345678"


def table(path: Path) -> dict:
    """Return the partition table as sfdisk --json sees it."""
    return json.loads(sh("sfdisk", "--json", str(path)))["partitiontable"]


def gpt_disk(path: Path) -> Path:
    """Make a 32 MiB GPT disk image with two partitions."""
    with open(path, "wb") as handle:
        handle.truncate(32 * MIB)
    sh("sgdisk", "-n1:2048:+8M", "-t1:ef00", "-n2:0:+8M", "-t2:8300", str(path))
    return path


def test_restore_partition_and_disk_guids(tmp_path):
    disk = gpt_disk(tmp_path / "gpt.img")
    bootcfg.restore_partition_guids(
        str(disk), "gpt", [{"number": 1, "uuid": GUID_1}, {"number": 2, "uuid": GUID_2.lower()}],
        disk_id=DISK_GUID)
    after = table(disk)
    assert after["id"] == DISK_GUID
    assert [p["uuid"] for p in after["partitions"]] == [GUID_1, GUID_2]


def test_randomize_guids_changes_every_guid(tmp_path):
    disk = gpt_disk(tmp_path / "gpt.img")
    before = table(disk)
    bootcfg.randomize_guids(str(disk))
    after = table(disk)
    assert after["id"] != before["id"]
    old = {p["uuid"] for p in before["partitions"]}
    new = {p["uuid"] for p in after["partitions"]}
    assert len(new) == 2 and not old & new
    assert [(p["start"], p["size"]) for p in after["partitions"]] == [
        (p["start"], p["size"]) for p in before["partitions"]]


def test_restore_guids_refuses_garbage_and_sets_mbr_signature(tmp_path):
    disk = gpt_disk(tmp_path / "gpt.img")
    with pytest.raises(ClientError, match="not a GUID"):
        bootcfg.restore_partition_guids(str(disk), "gpt", [{"number": 1, "uuid": "1; rm -rf"}])
    mbr = tmp_path / "mbr.img"
    with open(mbr, "wb") as handle:
        handle.truncate(16 * MIB)
    sh("sfdisk", "-q", str(mbr), input=b"label: dos\nstart=2048,type=7\n")
    bootcfg.restore_partition_guids(str(mbr), "mbr", [{"number": 1}], disk_id="0x5eed1234")
    assert table(mbr)["id"] == "0x5eed1234"


def test_fix_ntfs_boot_sector_writes_both_copies(mkfs, loop, tmp_path):
    dev = loop(tmp_path / "ntfs.img", size=64 * MIB)
    sh("mkfs.ntfs", "-f", "-Q", "-q", "-p", "63", "-H", "16", "-S", "32", dev)
    before = bootcfg.ntfs_boot_fields(dev)
    assert (before["hidden_sectors"], before["heads"], before["sectors_per_track"]) == (63, 16, 32)
    backup_offset = before["total_sectors"] * before["sector_bytes"]

    bootcfg.fix_ntfs_boot_sector(dev, 1_050_624, heads=255, sectors_per_track=63)

    for offset in (0, backup_offset):
        fields = bootcfg.ntfs_boot_fields(dev, offset)
        assert fields["hidden_sectors"] == 1_050_624
        assert (fields["heads"], fields["sectors_per_track"]) == (255, 63)
        assert fields["total_sectors"] == before["total_sectors"]
    sh("ntfsfix", "-n", dev)
    with mounted(dev, "ntfs") as root:
        (root / "still-works.txt").write_text("yes")

    bootcfg.fix_ntfs_boot_sector(dev, 2048)  # geometry left as it is
    fields = bootcfg.ntfs_boot_fields(dev)
    assert (fields["hidden_sectors"], fields["heads"]) == (2048, 255)

    ext = mkfs("ext4", 16)
    with pytest.raises(ClientError, match="NTFS boot sector"):
        bootcfg.fix_ntfs_boot_sector(ext, 2048)
    with pytest.raises(ClientError, match="does not fit"):
        bootcfg.fix_ntfs_boot_sector(dev, 1 << 32)


def test_update_nvram_skips_without_efi_firmware(tmp_path):
    entries = [{"label": "debian", "loader": "\\EFI\\debian\\grubx64.efi"}]
    assert bootcfg.update_nvram("/dev/sda", 1, entries,
                                firmware_dir=tmp_path / "no-efi-here") == []
    assert bootcfg.update_nvram("/dev/sda", 1, [], firmware_dir=tmp_path) == []


def test_update_nvram_leaves_image_files_alone(tmp_path):
    image = tmp_path / "vm.img"
    image.write_bytes(bytes(4096))
    entries = [{"label": "debian", "loader": "\\EFI\\debian\\grubx64.efi"}]
    assert bootcfg.update_nvram(str(image), 1, entries, firmware_dir=tmp_path) == []
