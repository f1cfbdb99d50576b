"""Shrinking never moves what a boot loader addresses by block (issue 11, defect 2).

A disk booting with SYSLINUX (MBR, extlinux on an ext4 over 5 GiB) whose `ldlinux.sys` sits
high in the filesystem, as after a boot loader reinstall late in a machine's life.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.client.disks import loop, mounted, partitions, sh
from tests.client.helpers import castor, make_image
from tests.conftest import needs_root

pytestmark = [needs_root]
MIB = 1 << 20
GIB = 1 << 30
MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
LDLINUX = "/boot/extlinux/ldlinux.sys"


def ldlinux_blocks(image: Path) -> list[int]:
    """The physical blocks of ldlinux.sys in partition 1 (debugfs, unmounted)."""
    part = partitions(image)[0]
    with loop(image, part["start"] * 512, part["size"] * 512) as dev:
        out = sh("debugfs", "-R", f"blocks {LDLINUX}", dev)
    return [int(word) for word in out.split()]


def boot_sector(image: Path) -> bytes:
    """The first sector of partition 1 (extlinux's boot sector)."""
    start = partitions(image)[0]["start"] * 512
    with open(image, "rb") as handle:
        handle.seek(start)
        return handle.read(512)


def fsck(image: Path) -> None:
    """Assert partition 1 of a disk image checks clean."""
    part = partitions(image)[0]
    with loop(image, part["start"] * 512, part["size"] * 512) as dev:
        sh("e2fsck", "-f", "-n", dev)


def pointer_offset(sector: bytes, first_sector: int) -> int:
    """Where in the boot sector the (partition-relative) sector of ldlinux.sys is written."""
    hits = [i for i in range(0, 508) if struct.unpack_from("<I", sector, i)[0] == first_sector]
    assert hits, "the boot sector does not point at ldlinux.sys"
    return hits[0]


@pytest.fixture(scope="module")
def syslinux_disk(tmp_path_factory):
    """An MBR disk: one 6.4 GiB ext4 with extlinux installed after 5 GiB were allocated."""
    path = tmp_path_factory.mktemp("syslinux") / "syslinux-deploy-safety.img"
    sh("truncate", "-s", f"{6600}M", str(path))
    sh("sfdisk", "-q", str(path), input="label: dos\n,,83,*\n")
    sh("dd", f"if={MBR_BIN}", f"of={path}", "conv=notrunc", "bs=440", "count=1",
       "status=none")
    part = partitions(path)[0]
    with loop(path, part["start"] * 512, part["size"] * 512) as dev:
        sh("mkfs.ext4", "-q", "-F", "-L", "root", dev)
        with mounted(dev, "ext4") as root:
            # Fill the lower part, install the loader above it, free the lower part again.
            sh("fallocate", "-l", "5G", str(root / "filler"))
            (root / "boot" / "extlinux").mkdir(parents=True)
            (root / "boot" / "extlinux" / "extlinux.conf").write_text(
                "DEFAULT linux\nLABEL linux\n  KERNEL /vmlinuz\n")
            sh("extlinux", "--install", str(root / "boot" / "extlinux"))
            (root / "etc").mkdir()
            (root / "etc" / "hostname").write_text("source\n")
            (root / "filler").unlink()
    return path


def test_upload_keeps_ldlinux_blocks_and_records_why(server, syslinux_disk):
    before = ldlinux_blocks(syslinux_disk)
    assert min(before) * 4096 > 4 * GIB, "the test needs ldlinux.sys placed high"
    make_image(server["app"], "syslinux", "block")
    proc = castor(server, "upload", "--image", "syslinux", "--disk", str(syslinux_disk))
    # The source disk stays bootable: its loader's blocks did not move.
    assert ldlinux_blocks(syslinux_disk) == before, "the shrink moved ldlinux.sys"
    assert "ldlinux.sys" in proc.stderr, "the client log does not say why the shrink stopped"
    fsck(syslinux_disk)
    schema = json.loads((server["storage"] / "images" / "syslinux" / "schema.json")
                        .read_text())
    fs = schema["disks"][0]["partitions"][0]["filesystem"]
    limits = fs["shrink_limited_by"]
    assert [pin["path"] for pin in limits] == [LDLINUX]
    assert limits[0]["last_block"] == max(before)
    assert fs["volume_bytes"] > (max(before) + 1) * 4096


@pytest.mark.parametrize("size_mib", [6300, 6600, 7000])
def test_deployed_copy_boot_sector_points_at_ldlinux(server, syslinux_disk, tmp_path,
                                                      size_mib):
    if not (server["storage"] / "images" / "syslinux" / "manifest.json").exists():
        pytest.skip("needs the upload of the test above")
    source_blocks = ldlinux_blocks(syslinux_disk)
    source_sector = boot_sector(syslinux_disk)
    offset = pointer_offset(source_sector, source_blocks[0] * 8)
    target = tmp_path / "syslinux-target-deploy-safety.img"
    sh("truncate", "-s", f"{size_mib}M", str(target))
    castor(server, "deploy", "--image", "syslinux", "--disk", str(target))
    blocks = ldlinux_blocks(target)
    assert blocks == source_blocks
    sector = boot_sector(target)
    assert struct.unpack_from("<I", sector, offset)[0] == blocks[0] * 8
    with open(target, "rb") as handle:
        assert handle.read(440) == MBR_BIN.read_bytes()[:440]
    fsck(target)
