"""Upload checks on real disks: BitLocker, hibernation and partition table problems."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client import checks
from client.mount import mounted
from client.run import ClientError
from tests.client_steps.conftest import MIB, sh
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.root]


def gpt_disk(path: Path) -> Path:
    """Make a 64 MiB GPT disk image with a Linux and a Windows data partition."""
    with open(path, "wb") as handle:
        handle.truncate(64 * MIB)
    sh("sgdisk", "-n1:2048:+20M", "-t1:8300", "-n2:0:+20M", "-t2:0700", str(path))
    return path


def mbr_disk(path: Path) -> Path:
    """Make a 64 MiB MBR disk image with one Linux partition."""
    with open(path, "wb") as handle:
        handle.truncate(64 * MIB)
    sh("sfdisk", "-q", str(path), input=b"label: dos\nstart=2048,size=40960,type=83\n")
    return path


def table_json(path: Path) -> dict:
    """Return the partition table as sfdisk --json sees it."""
    return json.loads(sh("sfdisk", "--json", str(path)))["partitiontable"]


def test_bitlocker_signature_on_a_crafted_first_sector(loop, tmp_path, mkfs):
    image = tmp_path / "bitlocker.img"
    sector = bytearray(512)
    sector[0:3] = b"\xeb\x58\x90"
    sector[3:11] = b"-FVE-FS-"
    sector[510:512] = b"\x55\xaa"
    image.write_bytes(bytes(sector) + bytes(MIB - 512))
    locked = loop(image)
    plain = mkfs("ntfs", 16)
    assert checks.has_bitlocker(locked) is True
    assert checks.has_bitlocker(plain) is False

    partitions = [{"number": 3, "device": locked, "fs_type": "BitLocker"}]
    disk = mbr_disk(tmp_path / "disk.img")
    with pytest.raises(ClientError, match=r"BitLocker.*partition 3.*skip BitLocker check"):
        checks.run_upload_checks(str(disk), partitions, {})
    checks.run_upload_checks(str(disk), partitions, {"skip_bitlocker_check": True})


def test_hibernation_file_on_ntfs(mkfs, tmp_path):
    hibernated, clean = mkfs("ntfs", 16), mkfs("ntfs", 16)
    with mounted(hibernated, "ntfs") as root:
        (root / "hiberfil.sys").write_bytes(b"HIBR" + bytes(4092))
        (root / "Windows").mkdir()
    with mounted(clean, "ntfs") as root:
        (root / "pagefile.sys").write_bytes(bytes(4096))
    assert checks.has_hibernation_file(hibernated, "ntfs") is True
    assert checks.has_hibernation_file(clean, "ntfs") is False
    assert checks.has_hibernation_file(hibernated, "ext4") is False

    disk = str(gpt_disk(tmp_path / "disk.img"))
    partitions = [{"number": 1, "device": clean, "fs_type": "ntfs"},
                  {"number": 2, "device": hibernated, "fs_type": "ntfs"}]
    with pytest.raises(ClientError, match=r"hibernation.*partition 2.*skip hibernation check"):
        checks.run_upload_checks(disk, partitions, {})
    checks.run_upload_checks(disk, partitions, {"skip_hibernation_check": True})


def test_clean_tables_have_no_problems(tmp_path, loop):
    gpt = gpt_disk(tmp_path / "gpt.img")
    assert checks.table_problems(str(gpt)) == []
    assert checks.table_problems(loop(gpt)) == []  # the same disk as a block device
    assert checks.table_problems(str(mbr_disk(tmp_path / "mbr.img"))) == []
    checks.run_upload_checks(str(gpt), [], {})
    # A disk grown after partitioning (VM template) keeps its backup header where it was.
    with open(gpt, "ab") as handle:
        handle.truncate(96 * MIB)
    assert checks.table_problems(str(gpt)) == []


def test_hybrid_mbr_is_reported(tmp_path):
    disk = gpt_disk(tmp_path / "hybrid.img")
    sh("sgdisk", "-h", "1:2", str(disk))
    problems = checks.table_problems(str(disk))
    assert problems == ["the disk has both a GPT and a non-protective (hybrid) MBR"]
    with pytest.raises(ClientError, match="remove GPT structures"):
        checks.run_upload_checks(str(disk), [], {})


def test_damaged_primary_gpt_header_is_reported(tmp_path, loop):
    disk = gpt_disk(tmp_path / "damaged.img")
    with open(disk, "r+b") as handle:
        handle.seek(512)
        handle.write(b"\xde\xad" * 256)
    problems = checks.table_problems(str(disk))
    assert problems == ["the primary GPT header or its partition entries are damaged"]
    assert checks.table_problems(loop(disk)) == problems
    with pytest.raises(ClientError, match="primary GPT header"):
        checks.run_upload_checks(str(disk), [], {"remove_gpt_structures": True})


def test_damaged_backup_gpt_header_is_reported(tmp_path):
    disk = gpt_disk(tmp_path / "backup.img")
    with open(disk, "r+b") as handle:
        handle.seek(64 * MIB - 512)
        handle.write(bytes(512))
    assert checks.table_problems(str(disk)) == [
        "the backup GPT header or its partition entries are damaged or missing"]


def test_remove_gpt_structures_keeps_the_mbr_of_a_stale_gpt_disk(tmp_path):
    disk = gpt_disk(tmp_path / "stale.img")
    # An MBR written over a GPT disk without wiping it leaves the GPT headers behind.
    sh("sfdisk", "-q", "--wipe", "never", str(disk),
       input=b"label: dos\nstart=4096,size=30720,type=83\n")
    assert "hybrid" in checks.table_problems(str(disk))[0]

    checks.run_upload_checks(str(disk), [], {"remove_gpt_structures": True})

    assert checks.table_problems(str(disk)) == []
    table = table_json(disk)
    assert table["label"] == "dos"
    assert [(p["start"], p["size"], p["type"]) for p in table["partitions"]] == [
        (4096, 30720, "83")]
    with open(disk, "rb") as handle:
        handle.seek(512)
        assert handle.read(8) != b"EFI PART"


def test_remove_gpt_structures_on_a_hybrid_disk_drops_the_protective_entry(tmp_path):
    disk = gpt_disk(tmp_path / "hybrid.img")
    sh("sgdisk", "-h", "1:2", str(disk))
    checks.run_upload_checks(str(disk), [], {"remove_gpt_structures": True})
    table = table_json(disk)
    assert table["label"] == "dos"
    assert [(p["start"], p["size"]) for p in table["partitions"]] == [
        (2048, 40960), (43008, 40960)]
    assert all(p["type"] != "ee" for p in table["partitions"])
    assert checks.table_problems(str(disk)) == []


def test_remove_gpt_structures_clears_a_lone_backup_header(tmp_path):
    disk = gpt_disk(tmp_path / "lone.img")
    with open(disk, "r+b") as handle:
        handle.seek(512)
        handle.write(bytes(512 * 33))  # primary header and entries gone, backup still there
    sh("sfdisk", "-q", "--wipe", "never", str(disk),
       input=b"label: dos\nstart=2048,size=20480,type=7\n")
    assert "hybrid" in checks.table_problems(str(disk))[0]
    checks.run_upload_checks(str(disk), [], {"remove_gpt_structures": True})
    assert checks.table_problems(str(disk)) == []
    with open(disk, "rb") as handle:
        handle.seek(64 * MIB - 512)
        assert handle.read(8) != b"EFI PART"
    assert [(p["start"], p["type"]) for p in table_json(disk)["partitions"]] == [(2048, "7")]
