"""LVM on the client: parsers of `pvs/vgs/lvs --reportformat json --units b`, and the probe
that turns a physical volume partition into a schema volume group with its logical volumes.

The parsers are pure functions over the tools' JSON; `probe_volume_group` runs the tools
(it needs device-mapper, so it runs inside the imaging environment only).
"""

from __future__ import annotations

import json

from client.run import run

PV_FIELDS = "pv_name,vg_name,pv_size,pe_start"
VG_FIELDS = "vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,pv_count,lv_count"
LV_FIELDS = "lv_name,vg_name,lv_uuid,lv_size,seg_count"


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


def lv_device(vg_name: str, lv_name: str) -> str:
    """Return the device node of an active LV (/dev/<vg>/<lv>)."""
    return f"/dev/{vg_name}/{lv_name}"


def activate(vg_name: str) -> None:
    """Activate every LV of a volume group (`vgchange -ay`)."""
    run(["vgchange", "-ay", vg_name])


def _report(tool: str, fields: str, target: str) -> str:
    """Run one LVM report tool (pvs, vgs, lvs) as JSON in bytes and return its output."""
    return run([tool, "--reportformat", "json", "--units", "b", "-o", fields, target])


def probe_volume_group(pv_device: str, pv_partition: int) -> dict:
    """Activate the VG on a PV partition and return it as a schema volume group."""
    pvs = parse_pvs(_report("pvs", PV_FIELDS, pv_device))
    if not pvs or not pvs[0]["vg_name"]:
        raise LvmError(f"{pv_device} is a physical volume without a volume group")
    name = pvs[0]["vg_name"]
    activate(name)
    vgs = parse_vgs(_report("vgs", VG_FIELDS, name))
    return schema_volume_group(vgs[0], parse_lvs(_report("lvs", LV_FIELDS, name)), pv_partition)
