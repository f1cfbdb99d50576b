"""The VM harness itself: accelerator choice, the runner's marker wait and kill, layouts."""

from __future__ import annotations

import shutil
import struct
import time

import pytest

from tests.vm.layouts import LAYOUTS, numbers
from tests.vm.osdisks import sfdisk_script
from tests.vm.qemu import accel, boot_vm, parse_marker

needs_qemu = pytest.mark.skipif(not shutil.which("qemu-system-x86_64"), reason="needs qemu")


def serial_boot_sector(text: str) -> bytes:
    """A boot sector that writes text to COM1 and halts forever."""
    code = bytearray(b"\xba\xf8\x03")  # mov dx, 0x3f8
    for char in text.encode():
        code += b"\xb0" + bytes([char]) + b"\xee"  # mov al, char; out dx, al
    code += b"\xfa\xf4\xeb\xfd"  # cli; hlt; jmp back to hlt
    assert len(code) <= 440
    sector = bytes(code) + bytes(510 - len(code)) + struct.pack("<H", 0xAA55)
    return sector + bytes((1 << 20) - 512)  # SeaBIOS skips virtio disks of one sector


def test_parse_marker_reads_fields():
    line = "[  9.1] CASTOR-BOOT host=pc1 root=/dev/vda1 swaps=1 fsck=clean"
    assert parse_marker(line) == {"host": "pc1", "root": "/dev/vda1", "swaps": "1",
                                  "fsck": "clean"}
    assert parse_marker("") == {}


def test_logical_partitions_are_numbered_from_five():
    assert numbers(LAYOUTS["bios-grub-logical"]) == [1, 2, 5, 6]
    script = sfdisk_script(LAYOUTS["bios-grub-logical"])
    assert "type=5" in script and script.count("type=83") == 2


@needs_qemu
def test_vm_runner_waits_for_marker_and_kills(tmp_path):
    disk = tmp_path / "sector.img"
    disk.write_bytes(serial_boot_sector("CASTOR-BOOT host=tiny swaps=0\n"))
    started = time.monotonic()
    run = boot_vm([disk], console=tmp_path / "console.log", timeout=60, wait_exit=0)
    assert run.fields == {"host": "tiny", "swaps": "0"}
    assert run.failure is None
    assert run.exit_code is not None, "the VM was left running"
    assert time.monotonic() - started < 60
    assert accel() in ("kvm", "tcg")


@needs_qemu
def test_vm_runner_stops_early_on_a_failure_line(tmp_path):
    disk = tmp_path / "sector.img"
    disk.write_bytes(serial_boot_sector("Boot error\n"))
    run = boot_vm([disk], console=tmp_path / "console.log", timeout=60,
                  fail_on=("Boot error",))
    assert run.marker is None and run.failure == "Boot error"
    assert run.seconds < 30


@needs_qemu
def test_vm_runner_boots_uefi_with_its_own_vars(tmp_path):
    # OVMF finds no OS on an empty disk; the run must still end and clean its vars copy.
    disk = tmp_path / "empty.img"
    disk.write_bytes(bytes(1 << 20))
    run = boot_vm([disk], "uefi", console=tmp_path / "console.log", timeout=15)
    assert run.failure == "timeout"
    assert not list(tmp_path.glob("*.vars.fd"))
