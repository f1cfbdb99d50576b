"""Read back a booted disk from the host: partition sizes, filesystem sizes, fsck."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.client.disks import loop, partitions, sh


def partition(image: Path, number: int) -> dict:
    """One partition of a disk image (start and size in sectors)."""
    return next(p for p in partitions(image) if p["number"] == number)


def filesystem_bytes(image: Path, number: int, fs: str) -> int:
    """The size of the filesystem in one partition, read from its superblock."""
    part = partition(image, number)
    with loop(image, part["start"] * 512, part["size"] * 512) as dev:
        if fs.startswith("ext"):
            out = sh("dumpe2fs", "-h", dev)
            fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
            return int(fields["Block count"]) * int(fields["Block size"])
        if fs == "xfs":
            out = sh("xfs_db", "-r", "-c", "sb 0", "-c", "p dblocks blocksize", dev)
            fields = dict(line.split(" = ", 1) for line in out.splitlines() if " = " in line)
            return int(fields["dblocks"]) * int(fields["blocksize"])
        raise ValueError(fs)


def fsck_problems(image: Path, number: int, fs: str) -> str:
    """What a read-only check of one filesystem complains about ('' when clean)."""
    part = partition(image, number)
    with loop(image, part["start"] * 512, part["size"] * 512) as dev:
        if fs.startswith("ext"):
            argv = ["e2fsck", "-f", "-n", dev]
        elif fs == "xfs":
            argv = ["xfs_repair", "-n", dev]
        else:
            raise ValueError(fs)
        proc = subprocess.run(argv, capture_output=True, text=True)
        return "" if proc.returncode == 0 else f"{argv[0]} exit {proc.returncode}: " + (
            proc.stdout + proc.stderr)[-1500:]


def ldlinux_block(image: Path, number: int) -> int:
    """The first block of ldlinux.sys in an ext partition."""
    from tests.vm.loaders import ldlinux_block as block_on_device

    part = partition(image, number)
    with loop(image, part["start"] * 512, part["size"] * 512) as dev:
        return block_on_device(dev)
