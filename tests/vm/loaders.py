"""Install boot loaders into disk-image files: GRUB for BIOS and UEFI, and SYSLINUX."""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
from pathlib import Path

from tests.client.disks import sh
from tests.vm.layouts import Layout

GRUB_PC = Path("/usr/lib/grub/i386-pc")
SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
GRUB_FS_MODULES = {"ext4": "ext2", "xfs": "xfs", "btrfs": "btrfs"}
# Offsets inside GRUB's boot.img and diskboot.img (grub/include/grub/i386/pc/boot.h).
BOOT_DRIVE_CHECK = 0x66
DISKBOOT_BLOCKLIST_LEN = 0x1FC


def write_config(layout: Layout, root: Path, kernel: str, initrd: str, cmdline: str) -> None:
    """Write the loader's menu with one entry booting the root's kernel."""
    if layout.loader == "syslinux":
        folder = root / "boot/syslinux"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "syslinux.cfg").write_text(
            f"SERIAL 0 115200\nDEFAULT debian\nPROMPT 0\nTIMEOUT 0\nLABEL debian\n"
            f"  LINUX {kernel}\n  INITRD {initrd}\n  APPEND {cmdline}\n")
        return
    folder = root / "boot/grub"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "grub.cfg").write_text(
        "serial --unit=0 --speed=115200\nterminal_output serial console\n"
        "set timeout=0\nmenuentry debian {\n"
        f"  linux {kernel} {cmdline}\n  initrd {initrd}\n}}\n")


def _early_config(tmp: Path, root_uuid: str) -> Path:
    """A config built into the GRUB image: find the root by UUID and load its grub.cfg."""
    early = tmp / "early.cfg"
    early.write_text(f"search --no-floppy --fs-uuid --set=root {root_uuid}\n"
                     "set prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n")
    return early


def install_grub_bios(image: Path, root_uuid: str, fs: str) -> None:
    """Write boot.img into the MBR and a self-contained core.img into the gap behind it."""
    with tempfile.TemporaryDirectory(prefix="castor-grub-") as tmp:
        core_path = Path(tmp) / "core.img"
        sh("grub-mkimage", "-O", "i386-pc", "-o", str(core_path), "-p", "/boot/grub",
           "-c", str(_early_config(Path(tmp), root_uuid)), "biosdisk", "part_msdos",
           "part_gpt", GRUB_FS_MODULES[fs], "search", "search_fs_uuid", "normal", "linux",
           "configfile", "echo", "test", "serial", "terminal")
        core = bytearray(core_path.read_bytes())
    core += bytes(-len(core) % 512)
    sectors = len(core) // 512
    first_start = min(int(line.split("start=")[1].split(",")[0]) for line in sh(
        "sfdisk", "-d", str(image)).splitlines() if "start=" in line)
    if sectors >= first_start:
        raise RuntimeError(f"core.img ({sectors} sectors) does not fit the MBR gap")
    # diskboot.img (core.img's first sector) loads the rest from sector 2 on.
    struct.pack_into("<H", core, DISKBOOT_BLOCKLIST_LEN, sectors - 1)
    boot = bytearray((GRUB_PC / "boot.img").read_bytes())
    boot[BOOT_DRIVE_CHECK:BOOT_DRIVE_CHECK + 2] = b"\x90\x90"  # a hard disk: trust DL
    fd = os.open(image, os.O_WRONLY)
    try:
        os.pwrite(fd, bytes(boot[:440]), 0)
        os.pwrite(fd, bytes(core), 512)
    finally:
        os.close(fd)


def install_grub_efi(esp_dev: str, root_uuid: str, fs: str) -> None:
    """Put a standalone GRUB at the removable-media path \\EFI\\BOOT\\BOOTX64.EFI."""
    with tempfile.TemporaryDirectory(prefix="castor-grub-efi-") as tmp:
        loader = Path(tmp) / "BOOTX64.EFI"
        modules = ["part_gpt", "part_msdos", GRUB_FS_MODULES[fs], "search",
                   "search_fs_uuid", "normal", "linux", "configfile", "echo", "test",
                   "serial", "terminal", "efi_gop", "fat"]
        sh("grub-mkstandalone", "-O", "x86_64-efi", "-o", str(loader),
           f"--install-modules={' '.join(modules)}", f"--modules={' '.join(modules)}",
           "--locales=", "--fonts=", "--themes=",
           f"boot/grub/grub.cfg={_early_config(Path(tmp), root_uuid)}")
        sh("mmd", "-i", esp_dev, "::/EFI", "::/EFI/BOOT")
        sh("mcopy", "-i", esp_dev, str(loader), "::/EFI/BOOT/BOOTX64.EFI")


def install_syslinux_high(root: Path) -> None:
    """Run extlinux with the lower part of the filesystem taken, so ldlinux.sys lands high."""
    filler = root / "filler"
    stat = os.statvfs(root)
    free = stat.f_bavail * stat.f_frsize
    # Leave 256 MiB free at the top for ldlinux.sys, then free the rest again.
    sh("fallocate", "-l", str(free - (256 << 20)), str(filler))
    os.sync()
    sh("extlinux", "--install", str(root / "boot/syslinux"))
    filler.unlink()
    sh("chattr", "+i", str(root / "boot/syslinux/ldlinux.sys"))
    os.sync()


def ldlinux_block(dev: str) -> int:
    """The first physical block of /boot/syslinux/ldlinux.sys on an unmounted ext volume."""
    out = sh("debugfs", "-R", "bmap /boot/syslinux/ldlinux.sys 0", dev)
    return int(out.strip().splitlines()[-1])


def check_ldlinux_high(dev: str) -> None:
    """Fail the build unless shrinking to the minimum would have to move ldlinux.sys."""
    minimum = int(subprocess.run(["resize2fs", "-P", dev], capture_output=True, text=True,
                                 check=True).stdout.rsplit(":", 1)[1])
    block = ldlinux_block(dev)
    if block <= minimum:
        raise RuntimeError(f"ldlinux.sys at block {block} is below the minimum {minimum}")


def install_syslinux_mbr(image: Path) -> None:
    """Put SYSLINUX's MBR code (it boots the partition marked active) into the MBR."""
    code = SYSLINUX_MBR.read_bytes()[:440]
    fd = os.open(image, os.O_WRONLY)
    try:
        os.pwrite(fd, code, 0)
    finally:
        os.close(fd)
