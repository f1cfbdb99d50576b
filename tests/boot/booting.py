"""Boot a disk in a VM and check what the guest reported against what the disk should be."""

from __future__ import annotations

from pathlib import Path

from tests.boot.checks import filesystem_bytes, fsck_problems, partition
from tests.vm.layouts import Layout
from tests.vm.qemu import BOOT_FAILURES, VmRun, boot_vm

ALIGN_SLACK = 8 << 20


def boot_disk(disk: Path, layout: Layout, console: Path, timeout: float = 420) -> VmRun:
    """Boot a disk of a layout with its firmware until the report line or a failure."""
    return boot_vm([disk], layout.firmware, console=console, timeout=timeout,
                   fail_on=BOOT_FAILURES)


def check_booted(run: VmRun, disk: Path, layout: Layout, hostname: str | None) -> None:
    """Assert the guest reached userspace with the right root, swap, fsck and hostname."""
    assert run.marker, f"no boot ({run.failure}); console tail:\n{run.console[-3000:]}"
    fields = run.fields
    number = layout.root_number
    part_bytes = partition(disk, number)["size"] * 512
    fs = layout.root.fs or "ext4"
    assert fields["fstype"] == fs
    assert int(fields["rootdev_bytes"]) == part_bytes, "the guest's root is another partition"
    # statfs leaves out the filesystem's own metadata: a grown root is within 10 % of it.
    assert int(fields["rootfs_bytes"]) > 0.9 * part_bytes, f"root not grown: {fields}"
    assert int(fields["swaps"]) == layout.swap_count, f"swap not active: {fields}"
    assert fields["fsck"] == "clean", f"root was not checked clean at boot: {fields}"
    if hostname is not None:
        assert fields["host"] == hostname
    assert run.exit_code == 0, "the guest did not power off cleanly"
    # After the clean poweroff the host checks the filesystem itself.
    assert filesystem_bytes(disk, number, fs) > part_bytes - ALIGN_SLACK
    assert fsck_problems(disk, number, fs) == ""
