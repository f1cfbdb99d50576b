"""The Debian-on-LVM source disk: where its LVs lie on the PV, and that it boots."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import needs_root
from tests.vm.lvm import lv_windows
from tests.vm.lvmdisk import LVM_DISK, lvm_source_disk
from tests.vm.osdisks import copy_sparse
from tests.vm.qemu import BOOT_FAILURES, boot_vm

GIB = 1 << 30
MIB = 1 << 20
# `pvs --segments --reportformat json --units b --nosuffix -o pv_name,pe_start,pvseg_start,
# pvseg_size,lv_name,vg_extent_size` on the PV of a freshly built disk (lvm2 2.03.16).
PVS_SEGMENTS = """  {
      "report": [
          {
              "pvseg": [
                  {"pv_name":"/dev/loop0", "pe_start":"1048576", "pvseg_start":"0", "pvseg_size":"768", "lv_name":"root", "vg_extent_size":"4194304"},
                  {"pv_name":"/dev/loop0", "pe_start":"1048576", "pvseg_start":"768", "pvseg_size":"256", "lv_name":"data", "vg_extent_size":"4194304"},
                  {"pv_name":"/dev/loop0", "pe_start":"1048576", "pvseg_start":"1024", "pvseg_size":"64", "lv_name":"swap", "vg_extent_size":"4194304"},
                  {"pv_name":"/dev/loop0", "pe_start":"1048576", "pvseg_start":"1088", "pvseg_size":"319", "lv_name":"", "vg_extent_size":"4194304"}
              ]
          }
      ]
  }
"""  # noqa: E501
TOOLS = ("qemu-system-x86_64", "debootstrap", "lvm", "grub-mkimage")
needs_tools = pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS),
                                 reason=f"needs {', '.join(TOOLS)}")


def test_lv_windows_are_read_from_pv_segments():
    assert lv_windows(json.loads(PVS_SEGMENTS)) == {
        "root": (MIB, 3 * GIB), "data": (MIB + 3 * GIB, GIB),
        "swap": (MIB + 4 * GIB, 256 * MIB)}


def test_lv_windows_refuse_an_lv_in_two_segments():
    report = json.loads(PVS_SEGMENTS)
    report["report"][0]["pvseg"][3]["lv_name"] = "root"
    with pytest.raises(ValueError, match="root"):
        lv_windows(report)


def test_lvm_disk_reports_its_volumes_as_the_guest_does():
    assert LVM_DISK.lvs_report == ("castor/data:1073741824,castor/root:6442450944,"
                                   "castor/swap:268435456")
    assert LVM_DISK.root_device == "/dev/mapper/castor-root"


@pytest.mark.boot_full
@needs_root
@needs_tools
def test_lvm_source_disk_boots(tmp_path):
    disk = copy_sparse(lvm_source_disk(), tmp_path / "lvm.img")
    run = boot_vm([disk], LVM_DISK.firmware, console=tmp_path / "console.log",
                  timeout=600, memory_mib=1536, fail_on=BOOT_FAILURES)
    assert run.marker, f"no boot ({run.failure}); console tail:\n{run.console[-3000:]}"
    fields = run.fields
    assert fields["root"] == LVM_DISK.root_device
    assert fields["fstype"] == "ext4"
    assert int(fields["rootdev_bytes"]) == LVM_DISK.volume("root").size_mib * MIB
    assert fields["swaps"] == "1", f"the swap LV is not active: {fields}"
    assert fields["fsck"] == "clean", f"root was not checked clean at boot: {fields}"
    assert fields["lvs"] == LVM_DISK.lvs_report
    assert int(fields["datafs_bytes"]) > 0, f"the data LV is not mounted: {fields}"
    # The report is a oneshot multi-user.target waits for: the boot is still under way.
    assert fields["state"] == "starting", fields
    assert fields["host"] == "castor-source"
    assert run.exit_code == 0, "the guest did not power off cleanly"
