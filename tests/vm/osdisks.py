"""Build bootable Debian disk-image files from a layout, cached and kept sparse."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.client.disks import loop, mounted, partitions, sh
from tests.vm import loaders
from tests.vm.cache import CACHE, cached_image
from tests.vm.layouts import Layout, numbers
from tests.vm.root import (
    ROOT_VERSION,
    customize_root,
    extract_root,
    kernel_files,
    root_tarball,
)

BUILDER_VERSION = 2
MIB = 1 << 20
TYPE_CODES = {"mbr": {"root": "83", "data": "83", "swap": "82", "esp": "ef", "extended": "5"},
              "gpt": {"root": "L", "data": "L", "swap": "S", "esp": "U"}}


def source_disk(layout: Layout) -> Path:
    """The cached source disk of a layout, built first when it is missing."""
    folder = CACHE / f"osdisks-v{BUILDER_VERSION}-root{ROOT_VERSION}"
    return cached_image(folder / f"{cache_name(layout)}.img", f"osdisks-{layout.name}",
                        lambda partial: build_disk(layout, partial, root_tarball()))


def cache_name(layout: Layout) -> str:
    """The cached disk's name: the layout, and where ldlinux.sys sits when that is set."""
    if layout.ldlinux_at_mib is None:
        return layout.name
    return f"{layout.name}-ldlinux{layout.ldlinux_at_mib}M"


def copy_sparse(source: Path, target: Path) -> Path:
    """Copy a disk image keeping its holes."""
    target.unlink(missing_ok=True)
    subprocess.run(["cp", "--sparse=always", str(source), str(target)], check=True)
    return target


def sfdisk_script(layout: Layout) -> str:
    """The sfdisk input creating the layout's table."""
    codes = TYPE_CODES[layout.table]
    lines = [f"label: {'gpt' if layout.table == 'gpt' else 'dos'}"]
    for part in layout.parts:
        size = f"size={part.size_mib}MiB, " if part.size_mib else ""
        boot = ", bootable" if part.role == "root" and layout.table == "mbr" else ""
        lines.append(f"{size}type={codes[part.role]}{boot}")
    return "\n".join(lines) + "\n"


def build_disk(layout: Layout, image: Path, tarball: Path) -> None:
    """Create the disk file, its filesystems, the Debian root and the boot loader."""
    image.unlink(missing_ok=True)
    sh("truncate", "-s", f"{layout.size_mib}M", str(image))
    sh("sfdisk", "-q", str(image), input=sfdisk_script(layout))
    by_number = {p["number"]: p for p in partitions(image)}
    uuids: dict[str, str] = {}
    for part, number in zip(layout.parts, numbers(layout), strict=True):
        if part.role == "extended":
            continue
        window = by_number[number]
        with loop(image, window["start"] * 512, window["size"] * 512) as dev:
            uuids[part.role] = make_filesystem(dev, part.fs or "", part.role)
    root_window = by_number[layout.root_number]
    ldlinux_at = (layout.ldlinux_at_mib or root_window["size"] // 2048) * MIB
    with loop(image, root_window["start"] * 512, root_window["size"] * 512) as dev:
        with mounted(dev, layout.root.fs or "ext4") as root:
            extract_root(tarball, root)
            customize_root(root)
            kernel, initrd = kernel_files(root)
            write_fstab(root, layout, uuids)
            if "data" in uuids:
                (root / "srv/data").mkdir(parents=True, exist_ok=True)
            cmdline = f"root=UUID={uuids['root']} ro console=ttyS0,115200 fsck.mode=force"
            loaders.write_config(layout, root, kernel, initrd, cmdline)
            if layout.loader == "syslinux":
                loaders.install_syslinux_at(root, "/boot/syslinux", ldlinux_at)
        if layout.loader == "syslinux":
            loaders.check_ldlinux_high(dev, below_bytes=ldlinux_at)
    if layout.loader == "grub-bios":
        loaders.install_grub_bios(image, uuids["root"], layout.root.fs or "ext4")
    elif layout.loader == "syslinux":
        loaders.install_syslinux_mbr(image)
    elif layout.loader == "grub-efi":
        esp = by_number[numbers(layout)[[p.role for p in layout.parts].index("esp")]]
        with loop(image, esp["start"] * 512, esp["size"] * 512) as dev:
            loaders.install_grub_efi(dev, uuids["root"], layout.root.fs or "ext4")


def make_filesystem(dev: str, fs: str, role: str) -> str:
    """Format one partition and return its filesystem UUID."""
    if fs == "swap":
        sh("mkswap", "-L", "swap", dev)
    elif fs == "vfat":
        sh("mkfs.vfat", "-F", "32", "-n", "ESP", dev)
    elif fs == "xfs":
        sh("mkfs.xfs", "-q", "-f", "-L", role, dev)
    elif fs == "btrfs":
        sh("mkfs.btrfs", "-q", "-f", "-L", role, dev)
    else:
        sh("mkfs.ext4", "-q", "-F", "-L", role, dev)
    return sh("blkid", "-p", "-s", "UUID", "-o", "value", dev).strip()


def write_fstab(root: Path, layout: Layout, uuids: dict[str, str]) -> None:
    """An /etc/fstab by UUID, as the Debian installer writes one."""
    fs = layout.root.fs or "ext4"
    options = "errors=remount-ro" if fs.startswith("ext") else "defaults"
    lines = [f"UUID={uuids['root']} / {fs} {options} 0 1"]
    if "esp" in uuids:
        lines.append(f"UUID={uuids['esp']} /boot/efi vfat umask=0077 0 1")
        (root / "boot/efi").mkdir(parents=True, exist_ok=True)
    if "data" in uuids:
        lines.append(f"UUID={uuids['data']} /srv/data ext4 defaults 0 2")
    if "swap" in uuids:
        lines.append(f"UUID={uuids['swap']} none swap sw 0 0")
    (root / "etc/fstab").write_text("\n".join(lines) + "\n")


def remove_cached(layout: Layout) -> None:
    """Forget a cached source disk (a builder fix makes the next run rebuild it)."""
    folder = CACHE / f"osdisks-v{BUILDER_VERSION}-root{ROOT_VERSION}"
    (folder / f"{cache_name(layout)}.img").unlink(missing_ok=True)
    shutil.rmtree(folder / "tmp", ignore_errors=True)
