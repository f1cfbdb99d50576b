"""Shrink and expand real ext4, NTFS, xfs and btrfs filesystems on loop devices."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from client import resize
from client.mount import mounted
from tests.client_steps.conftest import MIB, sh
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.root]


def fill(root: Path, count: int = 12, size: int = MIB) -> dict[str, str]:
    """Write files of random bytes into a mounted filesystem and return their SHA-256s."""
    sums = {}
    (root / "data" / "nested").mkdir(parents=True)
    for index in range(count):
        name = f"data/{'nested/' if index % 3 else ''}file{index}.bin"
        payload = os.urandom(size + index * 4099)
        (root / name).write_bytes(payload)
        sums[name] = hashlib.sha256(payload).hexdigest()
    return sums


def checksums(dev: str, fs_type: str, names: list[str]) -> dict[str, str]:
    """Read the files back from the filesystem and return their SHA-256s."""
    with mounted(dev, fs_type, readonly=True) as root:
        return {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in names}


def assert_clean(dev: str, fs_type: str, fills_device: bool = True) -> None:
    """Fail unless the filesystem checker finds the filesystem consistent."""
    if fs_type == "ext4":
        sh("e2fsck", "-f", "-n", dev)
    elif fs_type == "ntfs":
        # ntfsfix looks for the backup boot sector at the end of the device, which is only
        # where it belongs while the volume fills the device.
        if fills_device:
            sh("ntfsfix", "-n", dev)
        assert "You might resize at" in sh("ntfsresize", "-i", "-f", dev)
    elif fs_type == "xfs":
        sh("xfs_repair", "-n", dev)


@pytest.mark.parametrize("fs_type", ["ext4", "ntfs"])
def test_shrink_to_minimum_plus_slack_then_expand_back(mkfs, fs_type):
    dev = mkfs(fs_type, 160)
    with mounted(dev, fs_type) as root:
        sums = fill(root)
    before = resize.filesystem_info(dev, fs_type)
    assert before["used_bytes"] >= 12 * MIB
    minimum = resize.minimum_bytes(dev, fs_type)
    assert before["used_bytes"] <= minimum + 4 * MIB < before["volume_bytes"]

    new_size = resize.shrink(dev, fs_type, slack_bytes=8 * MIB)

    assert new_size is not None
    assert minimum + 8 * MIB <= new_size <= minimum + 8 * MIB + 2 * before["block_size"] + 512
    assert resize.filesystem_info(dev, fs_type)["volume_bytes"] == new_size
    assert_clean(dev, fs_type, fills_device=False)
    captured = subprocess.run([f"partclone.{fs_type}", "-c", "-s", dev, "-o", "-"],
                              capture_output=True, check=False)
    assert captured.returncode == 0, captured.stderr[-500:]  # the capture can read it
    assert len(captured.stdout) >= 12 * MIB
    assert checksums(dev, fs_type, list(sums)) == sums

    resize.expand(dev, fs_type)

    grown = resize.filesystem_info(dev, fs_type)["volume_bytes"]
    assert resize.device_bytes(dev) - grown < before["block_size"] + 512
    assert_clean(dev, fs_type)
    assert checksums(dev, fs_type, list(sums)) == sums


def test_shrink_is_skipped_when_slack_leaves_nothing_to_gain(mkfs):
    dev = mkfs("ext4", 64)
    assert resize.shrink(dev, "ext4", slack_bytes=64 * MIB) is None
    assert resize.filesystem_info(dev, "ext4")["volume_bytes"] == 64 * MIB
    assert resize.shrink(dev, "vfat") is None
    assert resize.minimum_bytes(dev, "xfs") is None


def test_shrunk_for_capture_expands_back_even_when_the_body_fails(mkfs):
    dev = mkfs("ext4", 128)
    with mounted(dev, "ext4") as root:
        sums = fill(root, count=4)
    seen = []
    with pytest.raises(RuntimeError, match="capture broke"):
        with resize.shrunk_for_capture(dev, "ext4", True, threshold_bytes=0,
                                       slack_bytes=4 * MIB) as size:
            seen.append(size)
            seen.append(resize.filesystem_info(dev, "ext4")["volume_bytes"])
            raise RuntimeError("capture broke")
    assert seen[0] is not None and seen[0] == seen[1] < 64 * MIB
    assert resize.filesystem_info(dev, "ext4")["volume_bytes"] == 128 * MIB
    assert_clean(dev, "ext4")
    assert checksums(dev, "ext4", list(sums)) == sums


def test_shrunk_for_capture_restores_a_filesystem_smaller_than_its_partition(mkfs):
    dev = mkfs("ext4", 128, fs_mib=100)
    with resize.shrunk_for_capture(dev, "ext4", True, threshold_bytes=0,
                                   slack_bytes=4 * MIB) as size:
        assert size is not None and size < 100 * MIB
    # Growing back must give the source its own size, not the whole partition.
    assert resize.filesystem_info(dev, "ext4")["volume_bytes"] == 100 * MIB


def test_shrunk_for_capture_honours_switch_and_threshold(mkfs):
    dev = mkfs("ext4", 64)
    with resize.shrunk_for_capture(dev, "ext4", False, threshold_bytes=0) as size:
        assert size is None
    with resize.shrunk_for_capture(dev, "ext4", True) as size:  # 64 MiB is under 5 GiB
        assert size is None
    assert resize.filesystem_info(dev, "ext4")["volume_bytes"] == 64 * MIB


@pytest.mark.parametrize(("fs_type", "size_mib", "fs_mib"),
                         [("ext4", 128, 64), ("ntfs", 128, 48), ("xfs", 400, 300)])
def test_expand_fills_a_grown_device(mkfs, fs_type, size_mib, fs_mib):
    dev = mkfs(fs_type, size_mib, fs_mib=fs_mib)
    with mounted(dev, fs_type) as root:
        sums = fill(root, count=3)
    before = resize.filesystem_info(dev, fs_type)
    assert before["volume_bytes"] <= fs_mib * MIB

    resize.expand(dev, fs_type)

    after = resize.filesystem_info(dev, fs_type)
    assert size_mib * MIB - after["volume_bytes"] < after["block_size"] + 512
    assert after["used_bytes"] >= 3 * MIB
    assert_clean(dev, fs_type)
    assert checksums(dev, fs_type, list(sums)) == sums


def test_expand_btrfs_on_a_mount(loop, tmp_path):
    dev = loop(tmp_path / "btrfs.img", size=400 * MIB)
    sh("mkfs.btrfs", "-q", "-f", "-b", str(200 * MIB), dev)
    assert resize.filesystem_info(dev, "btrfs")["volume_bytes"] == 200 * MIB
    resize.expand(dev, "btrfs")
    assert resize.filesystem_info(dev, "btrfs")["volume_bytes"] == 400 * MIB


def test_filesystem_info_of_fat_and_unknown(mkfs):
    dev = mkfs("vfat", 64)
    empty = resize.filesystem_info(dev, "vfat")
    sh("mcopy", "-i", dev, "/etc/services", "::/services")
    used = resize.filesystem_info(dev, "vfat")
    assert empty["volume_bytes"] == used["volume_bytes"] == 64 * MIB
    assert used["used_bytes"] - empty["used_bytes"] >= os.path.getsize("/etc/services")
    assert resize.filesystem_info(dev, "swap") == {
        "volume_bytes": 64 * MIB, "used_bytes": 64 * MIB, "block_size": 512}
    resize.expand(dev, "vfat")  # cannot grow: a no-op, not an error


def test_a_failing_ntfsresize_means_capture_unshrunk(loop, tmp_path, caplog):
    dev = loop(tmp_path / "ntfs.img", size=64 * MIB)
    sh("mkfs.ntfs", "-f", "-Q", "-q", dev)
    # A volume that claims to be bigger than its partition: ntfsresize refuses to touch it.
    with open(dev, "r+b") as handle:
        boot = bytearray(handle.read(512))
        total = int.from_bytes(boot[0x28:0x30], "little") + 4096
        boot[0x28:0x30] = total.to_bytes(8, "little")
        handle.seek(0)
        handle.write(boot)
    caplog.set_level("WARNING", logger="castor.client")
    assert resize.shrink(dev, "ntfs", slack_bytes=MIB) is None
    assert "not shrinking NTFS" in caplog.text
    with resize.shrunk_for_capture(dev, "ntfs", True, threshold_bytes=0) as size:
        assert size is None
    with open(dev, "rb") as handle:
        assert int.from_bytes(handle.read(512)[0x28:0x30], "little") == total
