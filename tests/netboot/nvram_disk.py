"""A UEFI Debian disk whose loader is only reachable through an NVRAM boot entry.

Made from the boot matrix's cached `uefi-grub` disk: its standalone GRUB is moved from the
removable-media path \\EFI\\BOOT\\BOOTX64.EFI to \\EFI\\debian\\grubx64.efi, where a Debian
install keeps it, and \\EFI\\BOOT is removed. Firmware then boots it only through the entry a
deploy writes with efibootmgr. Cheap (a sparse copy and three mtools calls), so not cached.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.client.disks import partitions
from tests.vm.layouts import LAYOUTS
from tests.vm.osdisks import copy_sparse, source_disk

LOADER = "\\EFI\\debian\\grubx64.efi"
REMOVABLE = "::/EFI/BOOT/BOOTX64.EFI"


def esp_image(disk: Path) -> str:
    """Return the mtools image spec (`file@@offset`) of the disk's first partition, the ESP."""
    first = min(partitions(disk), key=lambda p: p["number"])
    return f"{disk}@@{first['start'] * 512}"


def esp_files(disk: Path) -> list[str]:
    """List every path on the disk's ESP (`::/EFI/...`)."""
    out = subprocess.run(["mdir", "-/", "-b", "-i", esp_image(disk), "::/"], check=True,
                         capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def nvram_only_disk(target: Path) -> Path:
    """Write the disk to `target` and return it."""
    copy_sparse(source_disk(LAYOUTS["uefi-grub"]), target)
    image = esp_image(target)
    for argv in (["mmd", "-i", image, "::/EFI/debian"],
                 ["mmove", "-i", image, REMOVABLE, "::/EFI/debian/grubx64.efi"],
                 ["mrd", "-i", image, "::/EFI/BOOT"]):
        subprocess.run(argv, check=True, capture_output=True)
    files = [f.lower() for f in esp_files(target)]  # mtools writes 8.3 names in capitals
    assert "::/efi/debian/grubx64.efi" in files and not any("/boot" in f for f in files), files
    return target


def vars_hold(vars_file: Path, text: str) -> bool:
    """Tell whether an OVMF variable store holds `text` (UCS-2, as Boot#### entries store it)."""
    return text.encode("utf-16-le") in vars_file.read_bytes()
