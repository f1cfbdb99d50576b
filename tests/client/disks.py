"""Build real disk-image files with filesystems and known files, and read them back."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

MIB = 1 << 20


def sh(*argv: str, input: str | None = None) -> str:
    """Run a tool, fail the test with its stderr when it fails."""
    proc = subprocess.run(argv, input=input, capture_output=True, text=True)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


@contextmanager
def loop(image: Path, offset: int = 0, size: int | None = None):
    """Attach a loop device over a window of a file; always detach."""
    argv = ["losetup", "-f", "--show", "-o", str(offset)]
    if size:
        argv += ["--sizelimit", str(size)]
    dev = sh(*argv, str(image)).strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)


@contextmanager
def mounted(dev: str, fs_type: str, readonly: bool = False):
    """Mount ext4 natively or NTFS through ntfs-3g; always unmount."""
    target = Path(tempfile.mkdtemp(prefix="castor-test-mnt-"))
    if fs_type == "ntfs":
        sh("ntfs-3g", *(["-o", "ro"] if readonly else []), dev, str(target))
    else:
        sh("mount", *(["-o", "ro"] if readonly else []), "-t", fs_type, dev, str(target))
    try:
        yield target
    finally:
        for _ in range(20):
            if subprocess.run(["umount", str(target)], capture_output=True).returncode == 0:
                break
        target.rmdir()


def partitions(image: Path) -> list[dict]:
    """The partitions of a disk-image file as sfdisk reports them."""
    import json

    table = json.loads(sh("sfdisk", "--json", str(image)))["partitiontable"]
    return [{"number": int(p["node"].rsplit("img", 1)[1]), "start": p["start"],
             "size": p["size"], "type": p["type"]} for p in table["partitions"]]


def fill_tree(root: Path, seed: int, count: int, big_bytes: int) -> None:
    """Write count small files in nested folders and one big random file."""
    rng = random.Random(seed)
    for i in range(count):
        folder = root / f"dir{i % 7}" / f"sub{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{i}.txt").write_bytes(rng.randbytes(rng.randint(0, 9000)))
    if big_bytes:
        (root / "big.bin").write_bytes(os.urandom(big_bytes))


def tree_sums(root: Path) -> dict[str, str]:
    """SHA-256 of every file under root, by relative path."""
    sums = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            rel = path.relative_to(root).as_posix()
            if rel.startswith(("lost+found", "System Volume Information", "$")):
                continue
            sums[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def vfat_sums(dev: str) -> dict[str, str]:
    """SHA-256 of every file of a FAT volume, read with mtools."""
    with tempfile.TemporaryDirectory() as tmp:
        sh("mcopy", "-s", "-n", "-i", dev, "::/*", tmp)
        return tree_sums(Path(tmp))


def make_disk(image: Path, size_mib: int, table: str, layout: list[tuple[int | None, str]],
              seed: int, big_bytes: int = 0) -> dict[int, dict[str, str]]:
    """Create a disk image with partitions (MiB, fs) and files; return checksums per part."""
    image.unlink(missing_ok=True)
    sh("truncate", "-s", f"{size_mib}M", str(image))
    codes = {"gpt": {"vfat": "U", "ext4": "L", "ntfs": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
                     "swap": "S", "xfs": "L"},
             "mbr": {"vfat": "ef", "ext4": "83", "ntfs": "7", "swap": "82", "xfs": "83"}}
    lines = [f"label: {'gpt' if table == 'gpt' else 'dos'}"]
    for size, fs in layout:
        lines.append(f",{f'{size}M' if size else ''},{codes[table][fs]}")
    sh("sfdisk", "-q", str(image), input="\n".join(lines) + "\n")
    sums: dict[int, dict[str, str]] = {}
    for part, (_size, fs) in zip(partitions(image), layout, strict=True):
        with loop(image, part["start"] * 512, part["size"] * 512) as dev:
            sums[part["number"]] = _format_and_fill(dev, fs, part, seed + part["number"],
                                                    big_bytes)
    return sums


def _format_and_fill(dev: str, fs: str, part: dict, seed: int, big_bytes: int) -> dict:
    if fs == "swap":
        sh("mkswap", "-L", "swp", dev)
        return {}
    if fs == "vfat":
        sh("mkfs.vfat", "-n", "ESP", dev)
        with tempfile.TemporaryDirectory() as tmp:
            fill_tree(Path(tmp) / "EFI", seed, 20, 0)
            sh("mcopy", "-s", "-i", dev, str(Path(tmp) / "EFI"), "::/")
            return tree_sums(Path(tmp))
    if fs == "ntfs":
        sh("mkfs.ntfs", "-f", "-Q", "-L", "win", "-p", str(part["start"]), "-H", "255",
           "-S", "63", dev)
    elif fs == "xfs":
        sh("mkfs.xfs", "-q", "-L", "data", dev)
    else:
        sh("mkfs.ext4", "-q", "-L", "root", dev)
    with mounted(dev, fs) as root:
        fill_tree(root, seed, 150, big_bytes if fs == "ext4" else big_bytes // 4)
        if fs == "ext4":
            (root / "etc").mkdir()
            (root / "etc" / "hostname").write_text("source\n")
            (root / "etc" / "os-release").write_text("ID=debian\n")
        return tree_sums(root)


def read_sums(image: Path, number: int, fs: str) -> dict[str, str]:
    """Checksums of every file in one partition of a disk image."""
    part = next(p for p in partitions(image) if p["number"] == number)
    with loop(image, part["start"] * 512, part["size"] * 512) as dev:
        if fs == "vfat":
            return vfat_sums(dev)
        with mounted(dev, fs, readonly=True) as root:
            return tree_sums(root)


def fs_size(image: Path, number: int, fs: str) -> int:
    """Filesystem size in bytes of one partition of a disk image."""
    part = next(p for p in partitions(image) if p["number"] == number)
    with loop(image, part["start"] * 512, part["size"] * 512) as dev:
        if fs == "ext4":
            out = sh("dumpe2fs", "-h", dev)
            fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
            return int(fields["Block count"]) * int(fields["Block size"])
        if fs == "ntfs":
            out = sh("ntfsresize", "-i", "-f", dev)
            return int(out.split("Current volume size:")[1].split("bytes")[0])
        raise ValueError(fs)


def fsck_clean(image: Path, number: int, fs: str) -> None:
    """Assert the filesystem of a partition checks clean."""
    part = next(p for p in partitions(image) if p["number"] == number)
    with loop(image, part["start"] * 512, part["size"] * 512) as dev:
        if fs == "ext4":
            sh("e2fsck", "-f", "-n", dev)
        elif fs == "ntfs":
            sh("ntfsfix", "-n", dev)
        elif fs == "vfat":
            sh("fsck.vfat", "-n", dev)


def detach_all(backing: str) -> None:
    """Detach every loop device over backing, and the loops stacked on those (killed clients)."""
    out = subprocess.run(["losetup", "-j", backing], capture_output=True, text=True).stdout
    for line in out.splitlines():
        dev = line.split(":", 1)[0]
        detach_all(dev)
        subprocess.run(["losetup", "-d", dev], capture_output=True)
