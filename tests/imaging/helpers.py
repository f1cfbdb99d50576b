"""Shared checks of disk plans: invariants, and writing them with the real sfdisk."""

from __future__ import annotations

import json
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

from app.imaging import selection as sel
from app.imaging.geometry import MBR_LIMIT_SECTORS, gpt_first_usable, gpt_tail_sectors
from app.imaging.minsize import partition_need
from app.imaging.schema import validate_schema
from app.imaging.units import align_sectors, to_sectors

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def load_schema(name: str) -> dict:
    """Return a validated example schema from tests/fixtures."""
    return validate_schema(json.loads((FIXTURES / name).read_text()))


def check_plan(plan: dict, disk: dict, selection_disk: dict | None = None,
               image_type: str = "block") -> None:
    """Assert every invariant of a dynamic or standard plan against its schema disk."""
    ss = plan["logical_sector_size"]
    align = align_sectors(ss)
    total = plan["size_bytes"] // ss
    assert plan["total_sectors"] == total
    if plan["table"] == "gpt":
        assert plan["last_usable_sector"] == total - 1 - gpt_tail_sectors(ss)
    else:
        assert plan["last_usable_sector"] == min(total, MBR_LIMIT_SECTORS) - 1
    parts = plan["partitions"]
    outer = [p for p in parts if p["role"] != "logical"]
    logicals = [p for p in parts if p["role"] == "logical"]
    for part in parts:
        end = part["start_sector"] + part["size_sectors"] - 1
        assert part["start_sector"] % align == 0, part
        assert part["size_sectors"] > 0
        assert align <= part["start_sector"] and end <= plan["last_usable_sector"], part
    for before, after in zip(outer, outer[1:], strict=False):
        assert before["start_sector"] + before["size_sectors"] <= after["start_sector"]
    if logicals:
        ext = next(p for p in parts if p["role"] == "extended")
        previous_end = ext["start_sector"]
        for part in logicals:
            # each logical is preceded by the aligned sector of its EBR
            assert part["start_sector"] >= previous_end + align, (part, previous_end)
            previous_end = part["start_sector"] + part["size_sectors"]
        assert previous_end == ext["start_sector"] + ext["size_sectors"]
        assert [p["number"] for p in logicals] == list(range(5, 5 + len(logicals)))
    if plan["method"] != "dynamic":
        return
    sources = [p["source_partition"] for p in parts if p["role"] != "extended"]
    by_number = {p["number"]: p for p in disk["partitions"]}
    starts = [by_number[n]["start_sector"] for n in sources]
    assert starts == sorted(starts), "partition order changed"
    for part in parts:
        if part["role"] == "extended":
            continue
        source = by_number[part["source_partition"]]
        entry = sel.selected_partition(selection_disk, source["number"])
        need = partition_need(source, disk, entry, selection_disk, image_type,
                              plan["size_bytes"])
        original = to_sectors(source["size_sectors"] * disk["logical_sector_size"], ss)
        if need.kind == "fixed":
            assert part["size_sectors"] == original and part["fixed"]
        elif need.kind == "dynamic":
            assert part["size_sectors"] >= to_sectors(need.min_bytes, ss)
        elif need.percent is None:
            assert part["size_sectors"] == to_sectors(need.min_bytes, ss)


@contextmanager
def attached(path: Path, sector_size: int):
    """Yield a loop device with the given logical sector size over a file; detach after."""
    dev = subprocess.run(["losetup", "-f", "--show", "-b", str(sector_size), str(path)],
                         check=True, capture_output=True, text=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def write_with_sfdisk(plan: dict, target: str) -> dict:
    """Write the plan's script with the real sfdisk and return `sfdisk --json` of the result."""
    done = subprocess.run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", target],
                          input=plan["sfdisk_script"], capture_output=True, text=True)
    assert done.returncode == 0, f"sfdisk refused:\n{plan['sfdisk_script']}\n{done.stderr}"
    out = subprocess.run(["sfdisk", "--json", target], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)["partitiontable"]


def assert_table_matches(plan: dict, table: dict) -> None:
    """Assert `sfdisk --json` shows exactly the planned partitions, types and GUIDs."""
    gpt = plan["table"] == "gpt"
    assert table["label"] == ("gpt" if gpt else "dos")
    assert table["sectorsize"] == plan["logical_sector_size"]
    if plan["disk_id"]:
        assert table["id"].lower() == plan["disk_id"].lower()
    if gpt:
        assert table["lastlba"] == plan["last_usable_sector"]
        if plan["method"] != "original":
            assert table["firstlba"] == gpt_first_usable(plan["logical_sector_size"])
    written = {}
    for entry in table["partitions"]:
        written[int(re.search(r"(\d+)$", entry["node"]).group(1))] = entry
    planned = {p["number"]: p for p in plan["partitions"]}
    assert sorted(written) == sorted(planned)
    for number, part in planned.items():
        got = written[number]
        assert (got["start"], got["size"]) == (part["start_sector"], part["size_sectors"])
        if gpt:
            assert got["type"].upper() == part["type"]
            if part["uuid"]:
                assert got["uuid"].upper() == part["uuid"].upper()
            assert got.get("name", "") == part["name"][:36].replace('"', "")
            assert got.get("attrs", "") == part["attributes"]
        else:
            assert int(got["type"], 16) == int(part["type"], 16)
            assert bool(got.get("bootable")) == part["bootable"]
