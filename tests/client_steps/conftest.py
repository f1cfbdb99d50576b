"""Fixtures for the client steps: real filesystems in image files behind loop devices."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tools"
MIB = 1 << 20


def sh(*argv: str, input: bytes | None = None) -> str:
    """Run a set-up command for a test and return its stdout; fail loudly."""
    proc = subprocess.run(argv, input=input, capture_output=True, check=False)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}: {proc.stderr.decode()}"
    return proc.stdout.decode()


def fixture_text(name: str) -> str:
    """Return a captured tool output kept in tests/fixtures/tools."""
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.fixture
def loop(tmp_path) -> Callable[..., str]:
    """Attach loop devices on image files (whole file or a slice); detach them all at the end."""
    attached: list[str] = []

    def attach(image: Path, size: int | None = None, offset: int = 0,
               sizelimit: int | None = None) -> str:
        """Attach image (grown to size first when given) and return the loop device."""
        if size is not None:
            with open(image, "ab") as handle:
                handle.truncate(size)
        argv = ["losetup", "-f", "--show"]
        if offset:
            argv += ["-o", str(offset)]
        if sizelimit:
            argv += ["--sizelimit", str(sizelimit)]
        dev = sh(*argv, str(image)).strip()
        attached.append(dev)
        return dev

    yield attach
    for dev in reversed(attached):
        subprocess.run(["losetup", "-d", dev], capture_output=True, check=False)


@pytest.fixture
def mkfs(loop, tmp_path) -> Callable[..., str]:
    """Make a filesystem of a type on a fresh loop device of size_mib; return the device."""
    counter = iter(range(1000))

    def make(fs_type: str, size_mib: int, fs_mib: int | None = None) -> str:
        """Make the filesystem, fs_mib big when given (else filling the device)."""
        dev = loop(tmp_path / f"{fs_type}-{next(counter)}.img", size=size_mib * MIB)
        if fs_type == "ext4":
            extra = [f"{fs_mib}M"] if fs_mib else []
            sh("mkfs.ext4", "-q", "-F", dev, *extra)
        elif fs_type == "ntfs":
            extra = [str(fs_mib * MIB // 512)] if fs_mib else []
            sh("mkfs.ntfs", "-f", "-Q", "-q", dev, *extra)
        elif fs_type == "xfs":
            extra = ["-d", f"size={fs_mib}m"] if fs_mib else []
            sh("mkfs.xfs", "-q", "-f", *extra, dev)
        elif fs_type == "vfat":
            sh("mkfs.vfat", dev)
        elif fs_type == "btrfs":
            sh("mkfs.btrfs", "-q", "-f", dev)
        else:
            raise AssertionError(fs_type)
        return dev

    return make
