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
    write_grub_config(root / "boot/grub", kernel, initrd, cmdline)


def write_grub_config(folder: Path, kernel: str, initrd: str, cmdline: str) -> None:
    """Write a grub.cfg into folder with one serial-console entry booting the kernel."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "grub.cfg").write_text(
        "serial --unit=0 --speed=115200\nterminal_output serial console\n"
        "set timeout=0\nmenuentry debian {\n"
        f"  linux {kernel} {cmdline}\n  initrd {initrd}\n}}\n")


def _early_config(tmp: Path, uuid: str, grub_dir: str) -> Path:
    """A config built into the GRUB image: find a filesystem by UUID and load its grub.cfg."""
    early = tmp / "early.cfg"
    early.write_text(f"search --no-floppy --fs-uuid --set=root {uuid}\n"
                     f"set prefix=($root){grub_dir}\nconfigfile $prefix/grub.cfg\n")
    return early


def install_grub_bios(image: Path, uuid: str, fs: str, grub_dir: str = "/boot/grub") -> None:
    """Write boot.img into the MBR and a self-contained core.img into the gap behind it.

    core.img finds the filesystem with that UUID and reads grub.cfg from grub_dir on it.
    """
    with tempfile.TemporaryDirectory(prefix="castor-grub-") as tmp:
        core_path = Path(tmp) / "core.img"
        sh("grub-mkimage", "-O", "i386-pc", "-o", str(core_path), "-p", grub_dir,
           "-c", str(_early_config(Path(tmp), uuid, grub_dir)), "biosdisk", "part_msdos",
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
           f"boot/grub/grub.cfg={_early_config(Path(tmp), root_uuid, '/boot/grub')}")
        sh("mmd", "-i", esp_dev, "::/EFI", "::/EFI/BOOT")
        sh("mcopy", "-i", esp_dev, str(loader), "::/EFI/BOOT/BOOTX64.EFI")


WINDOW_BYTES = 128 << 20  # the room freed for extlinux right below the placement point
FILLER_BYTES = 64 << 20


def install_syslinux_at(root: Path, syslinux_dir: str, at_bytes: int) -> None:
    """Install extlinux into a mounted ext volume so ldlinux.sys lands just below at_bytes.

    The free space is filled with files, those starting in the window below at_bytes are
    deleted, and extlinux installed: the window is the only free room it can take.
    """
    # Everything written so far goes to disk first: with the volume full, delayed writes fail.
    os.sync()
    # ext4 keeps a pool of clusters that fallocate cannot take but ordinary writes can:
    # empty it, or extlinux's writes land in it wherever it is.
    device = Path(sh("findmnt", "-n", "-o", "SOURCE", str(root)).strip()).name
    Path(f"/sys/fs/ext4/{device}/reserved_clusters").write_text("0\n")
    filler = root / "castor-filler"
    filler.mkdir()
    size, count = FILLER_BYTES, 0
    while size >= 4096:
        path = filler / f"{count}"
        if subprocess.run(["fallocate", "-l", str(size), str(path)],
                          capture_output=True).returncode == 0:
            count += 1
        else:
            path.unlink(missing_ok=True)
            size //= 2
    os.sync()
    block = os.statvfs(root).f_frsize
    low, high = (at_bytes - WINDOW_BYTES) // block, at_bytes // block
    for path in filler.iterdir():
        if low <= first_physical_block(path) < high:
            path.unlink()
    os.sync()
    target = root / syslinux_dir.lstrip("/")
    sh("extlinux", "--install", str(target))
    for path in filler.iterdir():
        path.unlink()
    filler.rmdir()
    sh("chattr", "+i", str(target / "ldlinux.sys"))
    os.sync()


def first_physical_block(path: Path) -> int:
    """The physical block where a file's first extent starts (from `filefrag -e`)."""
    for line in sh("filefrag", "-e", str(path)).splitlines():
        fields = line.replace(":", " ").replace("..", " ").split()
        if fields and fields[0] == "0":
            return int(fields[3])
    return -1


def ldlinux_block(dev: str) -> int:
    """The first physical block of /boot/syslinux/ldlinux.sys on an unmounted ext volume."""
    out = sh("debugfs", "-R", "bmap /boot/syslinux/ldlinux.sys 0", dev)
    return int(out.strip().splitlines()[-1])


def check_ldlinux_high(dev: str, below_bytes: int) -> None:
    """Fail the build unless ldlinux.sys is above the shrink minimum and below below_bytes.

    Above the minimum: a shrink without the guard moves it. Below: a guarded shrink still
    leaves a volume that fits the layout's smaller disk.
    """
    minimum = int(subprocess.run(["resize2fs", "-P", dev], capture_output=True, text=True,
                                 check=True).stdout.rsplit(":", 1)[1])
    block = ldlinux_block(dev)
    if block <= minimum:
        raise RuntimeError(f"ldlinux.sys at block {block} is below the minimum {minimum}")
    if block * 4096 >= below_bytes:
        raise RuntimeError(f"ldlinux.sys at block {block} is not below {below_bytes} bytes")


def install_syslinux_mbr(image: Path) -> None:
    """Put SYSLINUX's MBR code (it boots the partition marked active) into the MBR."""
    code = SYSLINUX_MBR.read_bytes()[:440]
    fd = os.open(image, os.O_WRONLY)
    try:
        os.pwrite(fd, code, 0)
    finally:
        os.close(fd)
