"""The EFI boot entry an upload records: from NVRAM for this ESP, else the ESP's own loader."""

from __future__ import annotations

import subprocess

import pytest

from client import efiboot

ESP_GUID = "74893CC5-6E94-BE41-A29E-1742C482EDE6"
# As efibootmgr 17 (Debian bookworm) prints `-v` on OVMF with a Debian install.
NVRAM = (
    "BootCurrent: 0001\nTimeout: 0 seconds\nBootOrder: 0005,0004,0001,0000\n"
    "Boot0000* UiApp\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-"
    "4503-836e-8ab6f4662331)\n"
    "Boot0001* UEFI QEMU HARDDISK\tPciRoot(0x0)/Pci(0x4,0x0){auto_created_boot_option}\n"
    "Boot0004* debian\tHD(1,GPT,74893cc5-6e94-be41-a29e-1742c482ede6,0x800,0x32000)/File("
    "\\EFI\\debian\\shimx64.efi)\n"
    "Boot0005* other disk\tHD(1,GPT,11111111-2222-3333-4444-555555555555,0x800,0x32000)/"
    "File(\\EFI\\fedora\\shimx64.efi)\n")


def test_nvram_entries_of_this_esp_in_boot_order():
    assert efiboot.entries_from_nvram(NVRAM, ESP_GUID) == [
        {"label": "debian", "loader": "\\EFI\\debian\\shimx64.efi"}]
    assert efiboot.entries_from_nvram(NVRAM, "00000000-0000-0000-0000-000000000000") == []


def test_esp_listing_prefers_a_vendor_loader_over_the_removable_path():
    listing = ("::/EFI/\n::/EFI/BOOT/\n::/EFI/BOOT/BOOTX64.EFI\n::/EFI/debian/\n"
               "::/EFI/debian/grubx64.efi\n::/EFI/debian/shimx64.efi\n::/EFI/debian/grub.cfg\n")
    assert efiboot.entry_from_listing(listing) == {
        "label": "debian", "loader": "\\EFI\\debian\\shimx64.efi"}
    windows = "::/EFI/Microsoft/Boot/bootmgfw.efi\n::/EFI/Microsoft/Boot/BCD\n"
    assert efiboot.entry_from_listing(windows) == {
        "label": "Windows Boot Manager", "loader": "\\EFI\\Microsoft\\Boot\\bootmgfw.efi"}
    # Only the removable path: firmware finds it without an entry, so none is recorded.
    assert efiboot.entry_from_listing("::/EFI/BOOT/BOOTX64.EFI\n") is None


def test_esp_types():
    assert efiboot.is_esp({"type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"})
    assert efiboot.is_esp({"type": "ef"})
    assert not efiboot.is_esp({"type": "83"})


@pytest.mark.skipif(subprocess.run(["which", "mkfs.vfat"], capture_output=True).returncode,
                    reason="needs dosfstools and mtools")
def test_real_esp_read_with_mtools(tmp_path):
    esp = tmp_path / "esp.img"
    subprocess.run(["truncate", "-s", "64M", str(esp)], check=True)
    subprocess.run(["mkfs.vfat", "-F", "32", str(esp)], check=True, capture_output=True)
    loader = tmp_path / "grubx64.efi"
    loader.write_bytes(b"MZ")
    for argv in (["mmd", "-i", str(esp), "::/EFI", "::/EFI/debian"],
                 ["mcopy", "-i", str(esp), str(loader), "::/EFI/debian/grubx64.efi"]):
        subprocess.run(argv, check=True)
    entry = efiboot.efi_boot_entry(str(esp), {"uuid": ESP_GUID}, firmware_dir=tmp_path / "no")
    assert entry == {"label": "debian", "loader": "\\EFI\\debian\\grubx64.efi"}


# efibootmgr 17 `-v` inside the environment right after `--create` on OVMF (network-booted).
AFTER_CREATE = (
    "BootCurrent: 0002\nTimeout: 0 seconds\nBootOrder: 0007,0001,0002,0003,0000\n"
    "Boot0000* UiApp\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-"
    "4503-836e-8ab6f4662331)\n"
    "Boot0001* UEFI PXEv4 (MAC:525400BE0005)\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(525400be0005,1)\n"
    "Boot0002* UEFI PXEv4 (MAC:525400BE0005) 2\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(525400be0005,1)"
    "/IPv4(0.0.0.0,0,DHCP,0.0.0.0,0.0.0.0,0.0.0.0)\n"
    "Boot0003* EFI Internal Shell\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(7c04a5"
    "83-9e3e-4f1c-ad65-e05268d0b4d1)\n"
    "Boot0007* debian\tHD(1,GPT,74893cc5-6e94-be41-a29e-1742c482ede6,0x800,0x32000)/File("
    "\\EFI\\debian\\GRUBX64.EFI)\n")


def test_the_network_entry_this_boot_came_from_stays_first():
    from client.bootcfg import network_first_order

    assert network_first_order(AFTER_CREATE, {"debian"}) == [
        "0002", "0007", "0001", "0003", "0000"]
    # Already in that order: nothing to change.
    settled = AFTER_CREATE.replace("BootOrder: 0007,0001,0002,0003,0000",
                                   "BootOrder: 0002,0007,0001,0003,0000")
    assert network_first_order(settled, {"debian"}) is None
    # Booted from a disk or a stick (no MAC in BootCurrent's path): the new entry stays first.
    assert network_first_order(AFTER_CREATE.replace("BootCurrent: 0002", "BootCurrent: 0007"),
                               {"debian"}) is None
