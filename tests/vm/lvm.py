"""Write LVM metadata onto a loop device without device-mapper, and find where each LV lies."""

from __future__ import annotations

import json

from tests.client.disks import sh


def lvm_config(dev: str) -> str:
    """An lvm --config that sees only dev and leaves no trace on the host.

    No udev, no devices file, no hints and no metadata backups: the VG lives on the loop
    device alone, and the host forgets it once the loop is detached.
    """
    return ("activation{udev_sync=0 udev_rules=0} "
            "devices{obtain_device_list_from_udev=0 use_devicesfile=0 hints=\"none\" "
            f"global_filter=[\"a|^{dev}$|\",\"r|.*|\"]}} "
            "backup{backup=0 archive=0}")


def lvm(command: str, dev: str, *args: str) -> str:
    """Run one lvm command that sees only dev, with activation off (no device-mapper here)."""
    return sh("lvm", command, "--config", lvm_config(dev), "--driverloaded", "n", *args)


def create_volume_group(dev: str, vg: str,
                        volumes: list[tuple[str, int]]) -> dict[str, tuple[int, int]]:
    """Make dev a PV holding vg with linear LVs (name, MiB); return their byte windows on dev."""
    lvm("pvcreate", dev, "-q", dev)
    lvm("vgcreate", dev, "-q", vg, dev)
    for name, size_mib in volumes:
        # -Zn: without device-mapper the LV cannot be opened to zero its start.
        lvm("lvcreate", dev, "-q", "-an", "-Zn", "-L", f"{size_mib}M", "-n", name, vg)
    report = lvm("pvs", dev, "--segments", "--reportformat", "json", "--units", "b",
                 "--nosuffix", "-o", "pv_name,pe_start,pvseg_start,pvseg_size,lv_name,"
                 "vg_extent_size", dev)
    return lv_windows(json.loads(report))


def lv_windows(report: dict) -> dict[str, tuple[int, int]]:
    """(offset, size) in bytes on the PV of each LV, from `pvs --segments` JSON.

    Only linear LVs in one segment each are expected: a second segment is an error.
    """
    windows: dict[str, tuple[int, int]] = {}
    for seg in report["report"][0]["pvseg"]:
        name = seg["lv_name"]
        if not name:
            continue
        if name in windows:
            raise ValueError(f"LV {name} has more than one segment")
        extent = int(seg["vg_extent_size"])
        windows[name] = (int(seg["pe_start"]) + int(seg["pvseg_start"]) * extent,
                         int(seg["pvseg_size"]) * extent)
    return windows
