"""LVM on the client: parsers of `pvs/vgs/lvs --reportformat json --units b`, and the probe
that turns a physical volume partition into a schema volume group with its logical volumes.

The parsers are pure functions over the tools' JSON; `probe_volume_group` runs the tools
(it needs device-mapper, so it runs inside the imaging environment only).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from client.run import CommandError, run

log = logging.getLogger("castor.client")

PV_FIELDS = "pv_name,vg_name,pv_size,pe_start"
VG_FIELDS = "vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,pv_count,lv_count"
LV_FIELDS = "lv_name,vg_name,lv_uuid,lv_size,seg_count"
LVM_CONFIG = ("activation{udev_sync=0 udev_rules=0 monitoring=0} "
              "devices{obtain_device_list_from_udev=0 use_devicesfile=0}")
LVM_ENV = {**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"}
TOOLS = ("pvs", "vgs", "lvs", "pvcreate", "vgcreate", "lvcreate", "vgchange", "wipefs")


class LvmError(Exception):
    """LVM state the client does not image (several PVs in one VG, a missing VG)."""


def _bytes(value: str) -> int:
    """Return a `--units b` size ("440401920B") as an integer."""
    text = value.strip()
    if text.upper().endswith("B"):
        text = text[:-1]
    return int(text)


def report_rows(text: str, kind: str) -> list[dict]:
    """Return the rows of one report kind ("pv", "vg", "lv") of a JSON LVM report."""
    rows: list[dict] = []
    for report in json.loads(text).get("report", []):
        rows.extend(report.get(kind, []))
    return rows


def parse_pvs(text: str) -> list[dict]:
    """Return each physical volume: device, its VG, size and the first extent's offset."""
    return [{"device": row["pv_name"], "vg_name": row["vg_name"] or None,
             "size_bytes": _bytes(row["pv_size"]), "pe_start_bytes": _bytes(row["pe_start"])}
            for row in report_rows(text, "pv")]


def parse_vgs(text: str) -> list[dict]:
    """Return each volume group as schema fields, plus its free bytes and PV/LV counts."""
    return [{"name": row["vg_name"], "uuid": row["vg_uuid"],
             "size_bytes": _bytes(row["vg_size"]), "free_bytes": _bytes(row["vg_free"]),
             "extent_bytes": _bytes(row["vg_extent_size"]),
             "pv_count": int(row["pv_count"]), "lv_count": int(row["lv_count"])}
            for row in report_rows(text, "vg")]


def parse_lvs(text: str) -> list[dict]:
    """Return each logical volume: name, VG, UUID, size and segment count."""
    return [{"name": row["lv_name"], "vg_name": row["vg_name"], "uuid": row["lv_uuid"],
             "size_bytes": _bytes(row["lv_size"]), "segments": int(row["seg_count"])}
            for row in report_rows(text, "lv")]


def schema_volume_group(vg: dict, lvs: list[dict], pv_partition: int) -> dict:
    """Combine parsed vgs/lvs rows into a schema volume group (filesystems still None).

    The LVs are sorted by name so the schema is stable from one capture to the next.
    """
    if vg["pv_count"] != 1:
        raise LvmError(f"volume group {vg['name']} spans {vg['pv_count']} physical volumes; "
                       "only a volume group on one partition is imaged")
    extent = vg["extent_bytes"]
    volumes = []
    for lv in sorted((lv for lv in lvs if lv["vg_name"] == vg["name"]),
                     key=lambda lv: lv["name"]):
        volumes.append({"name": lv["name"], "uuid": lv["uuid"],
                        "size_bytes": lv["size_bytes"],
                        "extents": lv["size_bytes"] // extent,
                        "filesystem": None})
    return {"name": vg["name"], "uuid": vg["uuid"], "pv_partition": pv_partition,
            "size_bytes": vg["size_bytes"], "extent_bytes": extent,
            "logical_volumes": volumes}


def dm_name(vg_name: str, lv_name: str) -> str:
    """Return the device-mapper name of an LV: hyphens inside either name are doubled."""
    return f"{vg_name.replace('-', '--')}-{lv_name.replace('-', '--')}"


def lv_device(vg_name: str, lv_name: str) -> str:
    """Return the device node of an active LV (/dev/mapper/<vg>-<lv>)."""
    return f"/dev/mapper/{dm_name(vg_name, lv_name)}"


def lv_key(vg_name: str, lv_name: str) -> str:
    """Return how the manifest, the plan and file copy modules name an LV: `vg-lv`."""
    return f"{vg_name}-{lv_name}"


def lvm(tool: str, *args: str, check: bool = True) -> str:
    """Run one LVM tool with the client's configuration and return its output.

    LVM makes its device nodes itself and never waits for udev: the imaging environment's
    udev has no LVM rules to answer with, and no devices file limits what is seen.
    """
    return run([tool, "--config", LVM_CONFIG, *args], check=check, env=LVM_ENV, timeout=600)


def load_device_mapper() -> None:
    """Load device-mapper when it is a module (the environment has no service manager that
    would do it on first use of /dev/mapper/control)."""
    if not Path("/dev/mapper/control").exists():
        run(["modprobe", "dm_mod"], check=False)


def settle(vg_name: str, lv_names: list[str] | None = None, timeout: float = 20) -> None:
    """Wait for udev to finish with the VG's devices and for each LV's kernel node to exist."""
    run(["udevadm", "settle"], check=False)
    for name in lv_names or []:
        node(vg_name, name, timeout)


def node(vg_name: str, lv_name: str, timeout: float = 20) -> str:
    """Return the kernel's device node of an active LV (/dev/dm-N).

    The names under /dev/mapper are rewritten by udev each time an LV changes (a resize, an
    activation) and are missing meanwhile; devtmpfs keeps /dev/dm-N for as long as the
    device-mapper device lives, and a resize keeps its minor number.
    """
    rows = report_rows(_report("lvs", "lv_name,lv_kernel_minor", f"{vg_name}/{lv_name}"),
                       "lv")
    minor = rows[0].get("lv_kernel_minor", "").strip() if rows else ""
    if not minor.lstrip("-").isdigit() or int(minor) < 0:
        raise LvmError(f"logical volume {vg_name}/{lv_name} is not active")
    path = f"/dev/dm-{int(minor)}"
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise LvmError(f"{path} ({vg_name}/{lv_name}) did not appear")
        time.sleep(0.2)
    return path


def activate(vg_name: str) -> None:
    """Activate every LV of a volume group (`vgchange -ay`)."""
    load_device_mapper()
    lvm("vgchange", "-ay", vg_name)
    settle(vg_name)


def deactivate(vg_name: str) -> None:
    """Deactivate every LV of a volume group so its disk can be released."""
    lvm("vgchange", "-an", vg_name)


def _report(tool: str, fields: str, *targets: str) -> str:
    """Run one LVM report tool (pvs, vgs, lvs) as JSON in bytes and return its output."""
    return lvm(tool, "--reportformat", "json", "--units", "b", "-o", fields, *targets)


def probe_volume_group(pv_device: str, pv_partition: int) -> dict:
    """Activate the VG on a PV partition and return it as a schema volume group."""
    pvs = parse_pvs(_report("pvs", PV_FIELDS, pv_device))
    if not pvs or not pvs[0]["vg_name"]:
        raise LvmError(f"{pv_device} is a physical volume without a volume group")
    name = pvs[0]["vg_name"]
    activate(name)
    vgs = parse_vgs(_report("vgs", VG_FIELDS, name))
    return schema_volume_group(vgs[0], parse_lvs(_report("lvs", LV_FIELDS, name)), pv_partition)


def reduce_argv(vg_name: str, lv_name: str, extents: int) -> list[str]:
    """The lvreduce arguments shrinking an LV to extents (its filesystem already shrunk)."""
    return ["-f", "-y", "-l", str(extents), f"{vg_name}/{lv_name}"]


@contextmanager
def reduced(vg_name: str, lv_name: str, extents: int, back_to: int) -> Iterator[None]:
    """Shrink an LV to extents for the capture and always extend it back afterwards."""
    lvm("lvreduce", *reduce_argv(vg_name, lv_name, extents))
    settle(vg_name, [lv_name])
    log.info("logical volume %s/%s reduced to %d extents for the capture", vg_name, lv_name,
             extents)
    try:
        yield
    finally:
        lvm("lvextend", "-y", "-l", str(back_to), f"{vg_name}/{lv_name}")
        settle(vg_name, [lv_name])
        log.info("logical volume %s/%s extended back to %d extents", vg_name, lv_name, back_to)


def create_commands(pv_device: str, group: dict) -> list[list[str]]:
    """The LVM commands that make a planned volume group on a PV partition.

    The PV gets a new UUID and the VG its metadata from vgcreate, so the new metadata is
    consistent; names, extent size and each LV's extents are the plan's.
    """
    commands = [["pvcreate", "-ff", "-y", "--zero", "y", pv_device],
                ["vgcreate", "-y", "-s", f"{group['extent_bytes']}b", group["name"],
                 pv_device]]
    for volume in group["logical_volumes"]:
        commands.append(["lvcreate", "-y", "--wipesignatures", "y", "--zero", "y", "-n",
                         volume["name"], "-l", str(volume["extents"]), group["name"]])
    return commands


def create_volume_group(pv_device: str, group: dict) -> None:
    """Make a planned volume group and its LVs (all active afterwards)."""
    load_device_mapper()
    run(["wipefs", "-a", "-q", pv_device])  # an earlier PV label there would be reused
    for command in create_commands(pv_device, group):
        lvm(command[0], *command[1:])
    settle(group["name"], [v["name"] for v in group["logical_volumes"]])
    log.info("volume group %s created on %s with %d logical volume(s)", group["name"],
             pv_device, len(group["logical_volumes"]))


def group_names(text: str) -> dict[str, set[str]]:
    """Return {vg: set of PV devices} for every VG of a `pvs -o pv_name,vg_name` report."""
    groups: dict[str, set[str]] = {}
    for row in report_rows(text, "pv"):
        if row.get("vg_name"):
            groups.setdefault(row["vg_name"], set()).add(row["pv_name"])
    return groups


def parent_disk(device: str) -> str:
    """Return the whole-disk device a partition device belongs to (itself when none)."""
    name = Path(os.path.realpath(device)).name
    link = Path(f"/sys/class/block/{name}")
    if (link / "partition").exists():
        return f"/dev/{Path(os.path.realpath(link)).parent.name}"
    return f"/dev/{name}"


def groups_by_disk() -> dict[str, set[str]]:
    """Return {vg: set of whole disks holding its PVs} as LVM sees them now ({} without LVM)."""
    try:
        text = _report("pvs", "pv_name,vg_name")
    except CommandError:
        return {}
    return {vg: {parent_disk(pv) for pv in pvs} for vg, pvs in group_names(text).items()}


def release_disk(disk_path: str) -> list[str]:
    """Deactivate every VG with a PV on this disk (before its table is rewritten)."""
    released = []
    for vg, disks in groups_by_disk().items():
        if disk_path in disks:
            lvm("vgchange", "-an", vg, check=False)
            released.append(vg)
    return released
