"""Blocks a boot loader addresses: immutable files, GRUB boot.img in a partition, the floor."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from client import bootblocks, resize
from client.mount import mounted
from tests.client_steps.conftest import MIB, sh
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.root]
GRUB_BOOT_IMG = Path("/usr/lib/grub/i386-pc/boot.img")
START = 2048


def blocks(dev: str, path: str) -> list[int]:
    """Physical blocks of a file of an unmounted ext volume."""
    return bootblocks.parse_debugfs_blocks(sh("debugfs", "-R", f"blocks {path}", dev))


def test_parsers_of_debugfs_output():
    assert bootblocks.parse_debugfs_blocks("8961 8962 8963 \n") == [8961, 8962, 8963]
    assert bootblocks.parse_icheck("Block\tInode number\n9000\t32259\n") == 32259
    assert bootblocks.parse_icheck("Block\tInode number\n9000\t<block not found>\n") is None
    assert bootblocks.parse_ncheck("Inode\tPathname\n12\t/boot/grub/core.img\n") == (
        "/boot/grub/core.img")


def test_grub_boot_img_in_partition_pins_core_img(mkfs):
    dev = mkfs("ext4", 64)
    with mounted(dev, "ext4") as root:
        (root / "boot/grub/i386-pc").mkdir(parents=True)
        (root / "boot/grub/i386-pc/core.img").write_bytes(os.urandom(40000))
        (root / "data.bin").write_bytes(os.urandom(MIB))
    core = blocks(dev, "/boot/grub/i386-pc/core.img")
    block_size = resize.filesystem_info(dev, "ext4")["block_size"]
    sector = bytearray(GRUB_BOOT_IMG.read_bytes()[:512])
    struct.pack_into("<Q", sector, 0x5C, START + core[0] * block_size // 512)
    with open(dev, "r+b") as handle:
        handle.write(bytes(sector))
    assert bootblocks.grub_core_sector(bytes(sector)) == START + core[0] * block_size // 512
    pins = bootblocks.pinned_files(dev, "ext4", START, 512, block_size)
    assert [(p.path, p.first_block, p.last_block) for p in pins] == [
        ("/boot/grub/i386-pc/core.img", min(core), max(core))]
    assert "GRUB" in pins[0].reason


def test_no_pins_on_a_plain_volume(mkfs):
    dev = mkfs("ext4", 64)
    assert bootblocks.pinned_files(dev, "ext4") == []
    assert bootblocks.shrink_floor_bytes(dev, "ext4", 1024) == (0, [])


def test_shrink_stops_above_an_immutable_file_and_records_it(mkfs):
    dev = mkfs("ext4", 400)
    with mounted(dev, "ext4") as root:
        # Allocate the low part, place the pinned file above it, then free the low part.
        sh("fallocate", "-l", "300M", str(root / "filler"))
        (root / "ldlinux.sys").write_bytes(os.urandom(60000))
        subprocess.run(["chattr", "+i", str(root / "ldlinux.sys")], check=True)
        (root / "filler").unlink()
    before = blocks(dev, "/ldlinux.sys")
    record: dict = {}
    new_size = resize.shrink(dev, "ext4", slack_bytes=4 * MIB, record=record)
    assert new_size is not None and new_size > (max(before) + 1) * 1024
    assert new_size < 400 * MIB
    assert blocks(dev, "/ldlinux.sys") == before
    assert record["shrink_limited_by"][0]["path"] == "/ldlinux.sys"
    assert record["shrink_limited_by"][0]["reason"].startswith("SYSLINUX")
    sh("e2fsck", "-f", "-n", dev)
