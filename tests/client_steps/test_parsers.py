"""Pure parsers of the client steps, on output captured from the real tools."""

from __future__ import annotations

import pytest

from client import resize
from client.bootcfg import loader_path, nvram_commands, parse_boot_entries, task_completed_action
from client.checks import mbr_entries, sgdisk_verify_problems
from client.run import ClientError
from tests.client_steps.conftest import fixture_text


def test_dumpe2fs_sizes():
    info = resize.parse_dumpe2fs(fixture_text("steps_dumpe2fs_h.txt"))
    assert info == {"volume_bytes": 131072 * 1024, "used_bytes": (131072 - 114409) * 1024,
                    "block_size": 1024}


def test_resize2fs_minimum_in_blocks():
    assert resize.parse_resize2fs_minimum(fixture_text("steps_resize2fs_P.txt")) == 18241


def test_ntfsresize_info_and_free_space():
    info = resize.parse_ntfsresize_info(fixture_text("steps_ntfsresize_info.txt"))
    assert info == {"volume_bytes": 129999360, "block_size": 4096, "min_bytes": 23584768}
    free = resize.parse_ntfscluster_free(fixture_text("steps_ntfscluster_info.txt"))
    assert free == 106418176
    # The used space agrees with ntfsresize's minimum within a few clusters.
    assert abs((info["volume_bytes"] - free) - info["min_bytes"]) < 8 * 4096


def test_ntfsresize_info_without_minimum():
    text = fixture_text("steps_ntfsresize_info.txt").replace("You might resize at", "Resize at")
    assert resize.parse_ntfsresize_info(text)["min_bytes"] is None


def test_xfs_db_sizes():
    info = resize.parse_xfs_db(fixture_text("steps_xfs_db_sb.txt"))
    assert info == {"volume_bytes": 81920 * 4096, "used_bytes": (81920 - 65504) * 4096,
                    "block_size": 4096}


def test_fat_sizes_from_minfo_and_mdir():
    info = resize.parse_fat(fixture_text("steps_minfo.txt"), fixture_text("steps_mdir.txt"))
    assert info == {"volume_bytes": 131072 * 512, "used_bytes": 131072 * 512 - 66955264,
                    "block_size": 2048}


def test_btrfs_sizes():
    info = resize.parse_btrfs_super(fixture_text("steps_btrfs_dump_super.txt"))
    assert info == {"volume_bytes": 314572800, "used_bytes": 147456, "block_size": 4096}


def test_parser_says_what_is_missing():
    with pytest.raises(ClientError, match="block count"):
        resize.parse_dumpe2fs("Block size: 4096\n")


def test_sgdisk_verify_problems():
    assert sgdisk_verify_problems(fixture_text("steps_sgdisk_verify_clean.txt")) == []
    assert sgdisk_verify_problems(fixture_text("steps_sgdisk_verify_hybrid.txt")) == []
    damaged = sgdisk_verify_problems(fixture_text("steps_sgdisk_verify_damaged.txt"))
    assert damaged == ["sgdisk: Main header: ERROR"]
    assert sgdisk_verify_problems(fixture_text("steps_sgdisk_verify_grown.txt")) == []
    problem = "Problem: partitions 1 and 2 overlap:\n1 (2048-4096)\n\nNo problems found."
    assert sgdisk_verify_problems(problem) == [
        "sgdisk: Problem: partitions 1 and 2 overlap: 1 (2048-4096)"]


def test_mbr_entries():
    sector = bytearray(512)
    sector[446 + 4] = 0xEE
    sector[446 + 8:446 + 16] = (1).to_bytes(4, "little") + (2047).to_bytes(4, "little")
    sector[462 + 4] = 0x83
    sector[462 + 8:462 + 16] = (2048).to_bytes(4, "little") + (40960).to_bytes(4, "little")
    assert mbr_entries(bytes(sector)) is None  # no 0x55AA signature
    sector[510:512] = b"\x55\xaa"
    assert mbr_entries(bytes(sector)) == [
        {"slot": 1, "type": 0xEE, "start": 1, "sectors": 2047},
        {"slot": 2, "type": 0x83, "start": 2048, "sectors": 40960}]


def test_nvram_commands_first_entry_first_and_duplicates_replaced():
    entries = [{"label": "Windows Boot Manager", "loader": "/EFI/Microsoft/Boot/bootmgfw.efi"},
               {"label": "debian", "loader": "\\EFI\\debian\\shimx64.efi"}]
    existing = parse_boot_entries(
        "BootCurrent: 0001\nBootOrder: 0003,0001\n"
        "Boot0001* debian\tHD(1,GPT,abc)/File(\\EFI\\debian\\shimx64.efi)\n"
        "Boot0003* UEFI PXE\tPciRoot(0x0)\nBoot000A  debian\n")
    assert existing == {"debian": ["0001", "000A"], "UEFI PXE": ["0003"]}
    commands = nvram_commands("/dev/nvme0n1", 1, entries, existing)
    assert commands == [
        ["efibootmgr", "-q", "-b", "0001", "-B"],
        ["efibootmgr", "-q", "-b", "000A", "-B"],
        ["efibootmgr", "-q", "--create", "--disk", "/dev/nvme0n1", "--part", "1",
         "--label", "debian", "--loader", "\\EFI\\debian\\shimx64.efi"],
        ["efibootmgr", "-q", "--create", "--disk", "/dev/nvme0n1", "--part", "1",
         "--label", "Windows Boot Manager", "--loader", "\\EFI\\Microsoft\\Boot\\bootmgfw.efi"],
    ]
    assert nvram_commands("/dev/sda", 2, []) == []
    assert loader_path("EFI/BOOT/BOOTX64.EFI") == "\\EFI\\BOOT\\BOOTX64.EFI"


def test_task_completed_action():
    assert task_completed_action("reboot", dry_run=False) == ["reboot"]
    assert task_completed_action("power_off", dry_run=False) == ["poweroff"]
    assert task_completed_action("exit_to_shell", dry_run=False) == []
    assert task_completed_action("reboot", dry_run=True) == []
    with pytest.raises(ClientError, match="unknown task completed action"):
        task_completed_action("explode", dry_run=False)
