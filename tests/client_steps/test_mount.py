"""Mounting partitions for the client steps, and always unmounting them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from client.mount import is_mounted, mount_argv, mounted
from client.run import ClientError
from tests.client_steps.conftest import sh
from tests.conftest import needs_root


def test_mount_argv_per_filesystem(tmp_path):
    assert mount_argv("/dev/loop1", "ntfs", tmp_path, True) == [
        "ntfs-3g", "-o", "ro", "/dev/loop1", str(tmp_path)]
    assert mount_argv("/dev/loop1", "xfs", tmp_path, True) == [
        "mount", "-t", "xfs", "-o", "ro,nouuid", "/dev/loop1", str(tmp_path)]
    assert mount_argv("/dev/loop1", "ext4", tmp_path, False) == [
        "mount", "-t", "ext4", "-o", "rw", "/dev/loop1", str(tmp_path)]
    with pytest.raises(ClientError, match="cannot mount vfat.*mtools"):
        mount_argv("/dev/loop1", "vfat", tmp_path, False)
    with pytest.raises(ClientError, match="swap is not supported"):
        mount_argv("/dev/loop1", "swap", tmp_path, False)


@needs_root
@pytest.mark.root
@pytest.mark.parametrize("fs_type", ["ext4", "ntfs", "xfs"])
def test_mounted_writes_then_cleans_up(mkfs, fs_type):
    dev = mkfs(fs_type, 300 if fs_type == "xfs" else 32)
    with mounted(dev, fs_type) as root:
        assert is_mounted(root)
        (root / "hello.txt").write_text("hello")
    assert not is_mounted(root) and not root.exists()
    with mounted(dev, fs_type, readonly=True) as again:
        assert (again / "hello.txt").read_text() == "hello"
        with pytest.raises(OSError):
            (again / "other.txt").write_text("read-only")
    assert not again.exists()


@needs_root
@pytest.mark.root
def test_mounted_unmounts_when_the_body_raises_and_while_busy(mkfs):
    dev = mkfs("ext4", 32)
    with pytest.raises(RuntimeError):
        with mounted(dev, "ext4") as root:
            raise RuntimeError("step failed")
    assert not root.exists()
    # A file still open inside keeps the mount busy: the lazy unmount must still detach it.
    with mounted(dev, "ext4") as busy:
        handle = open(busy / "open.txt", "w")
    try:
        assert not is_mounted(busy)
    finally:
        handle.close()
    os.sync()


@needs_root
@pytest.mark.root
def test_failed_mount_leaves_no_directory(tmp_path, loop):
    image = tmp_path / "blank.img"
    dev = loop(image, size=8 << 20)
    before = set(Path(tempfile.gettempdir()).glob("castor-mnt-*"))
    with pytest.raises(ClientError):
        with mounted(dev, "ext4"):
            pass
    assert set(Path(tempfile.gettempdir()).glob("castor-mnt-*")) == before


@needs_root
@pytest.mark.root
def test_two_xfs_copies_with_one_uuid_mount_together(loop, tmp_path):
    source = loop(tmp_path / "xfs.img", size=300 << 20)
    sh("mkfs.xfs", "-q", "-f", source)
    sh("cp", "--sparse=always", str(tmp_path / "xfs.img"), str(tmp_path / "copy.img"))
    copy = loop(tmp_path / "copy.img")
    with mounted(source, "xfs") as first, mounted(copy, "xfs", readonly=True) as second:
        (first / "a.txt").write_text("a")
        assert not (second / "a.txt").exists()
