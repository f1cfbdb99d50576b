"""Real captures → client parsers → schema JSON → validation → plan → the real sfdisk."""

from __future__ import annotations

import json
import subprocess

import pytest

from app.imaging.minsize import disk_minimums
from app.imaging.planner import plan_deploy
from app.imaging.schema import parse_schema
from client.lvm import parse_lvs, parse_pvs, parse_vgs, schema_volume_group
from client.probe import (
    build_schema,
    filesystem_entry,
    parse_blkid_export,
    parse_dumpe2fs,
    parse_ntfsresize_info,
    parse_sfdisk_json,
    parse_xfs_info,
)
from tests.conftest import needs_root
from tests.imaging.helpers import (
    FIXTURES,
    assert_table_matches,
    attached,
    check_plan,
    write_with_sfdisk,
)

TOOLS = FIXTURES / "tools"


def capture(name: str) -> str:
    return (TOOLS / f"imaging_{name}").read_text()


def disk_from(sfdisk_name: str, size_bytes: int, filesystems: dict[int, tuple[str, dict]],
              sector: int = 512) -> dict:
    """Build a schema disk the way the client does, from captured tool output."""
    table = parse_sfdisk_json(capture(sfdisk_name))
    for part in table["partitions"]:
        if part["number"] in filesystems:
            blkid_name, info = filesystems[part["number"]]
            part["filesystem"] = filesystem_entry(parse_blkid_export(capture(blkid_name)), info,
                                                  part["size_sectors"] * sector)
    first, last = (table["first_lba"], table["last_lba"]) if table["table"] == "gpt" else (
        1, size_bytes // sector - 1)
    return {"index": 0, "name": "sda", "size_bytes": size_bytes, "logical_sector_size": sector,
            "physical_sector_size": sector, "table": table["table"],
            "disk_id": table["disk_id"], "boot_partition": table["boot_partition"],
            "first_usable_sector": first, "last_usable_sector": last,
            "table_area_sectors": table["partitions"][0]["start_sector"],
            "partitions": table["partitions"], "volume_groups": []}


def gpt_capture() -> dict:
    ntfs = parse_ntfsresize_info(capture("ntfsresize_i_f.txt"))
    ext4 = parse_dumpe2fs(capture("dumpe2fs_h_ext4.txt"))
    disk = disk_from("sfdisk_json_gpt_5parts.json", 3 * 2**30, {
        1: ("blkid_export_vfat.txt", {}), 3: ("blkid_export_ntfs.txt", ntfs),
        4: ("blkid_export_ext4.txt", ext4), 5: ("blkid_export_swap.txt", {})})
    return build_schema([disk])


def mbr_capture() -> dict:
    xfs = parse_xfs_info(capture("xfs_info.txt"))
    return build_schema([disk_from("sfdisk_json_mbr_extended.json", 3 * 2**30,
                                   {6: ("blkid_export_xfs.txt", xfs)})])


def lvm_capture() -> dict:
    """Add the captured volume group (vgs/lvs/pvs JSON) to the LVM disk's schema."""
    disk = disk_from("sfdisk_json_gpt_lvm.json", 2 * 2**30, {})
    (vg,) = parse_vgs(capture("vgs_json.json"))
    (pv,) = parse_pvs(capture("pvs_json.json"))
    disk["partitions"][1]["lvm_vg"] = vg["name"]
    disk["volume_groups"] = [schema_volume_group(vg, parse_lvs(capture("lvs_json.json")), 2)]
    assert pv["size_bytes"] <= disk["partitions"][1]["size_sectors"] * 512
    return build_schema([disk])


CAPTURES = {"gpt": gpt_capture, "mbr": mbr_capture, "lvm": lvm_capture}


def test_captured_values_reach_the_schema() -> None:
    schema = parse_schema(json.dumps(gpt_capture()))
    parts = {p["number"]: p for p in schema["disks"][0]["partitions"]}
    assert parts[3]["filesystem"]["type"] == "ntfs"
    assert parts[3]["filesystem"]["min_bytes"] == 216555520  # "You might resize at"
    assert parts[4]["filesystem"]["used_bytes"] == (307200 - 216476) * 4096  # dumpe2fs
    assert parts[1]["filesystem"]["uuid"] == "8F09-8B28"
    lvm = parse_schema(json.dumps(lvm_capture()))
    assert [lv["size_bytes"] for lv in lvm["disks"][0]["volume_groups"][0][
        "logical_volumes"]] == [150 * 4 * 2**20, 105 * 4 * 2**20][::-1]


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_captured_disks_round_trip_through_sfdisk(tmp_path, name) -> None:
    schema = parse_schema(json.dumps(CAPTURES[name]()))
    disk = schema["disks"][0]
    minimum = disk_minimums(schema, None)[0]
    # Drop the last partition to deploy onto a disk smaller than the source, too.
    last = disk["partitions"][-1]["number"]
    fewer = {"disks": [{"index": 0, "partitions": [{"number": last, "deploy": False}]}]}
    smaller = disk_minimums(schema, fewer)[0]
    assert smaller < disk["size_bytes"] and minimum <= disk["size_bytes"]
    cases = [(None, minimum), (fewer, smaller), (None, disk["size_bytes"]),
             (None, disk["size_bytes"] + 5 * 2**30)]
    for selection, size in cases:
        [plan] = plan_deploy(schema, selection, [{"size_bytes": size}],
                             {"partition_method": "dynamic", "force_dynamic_exact_match": True})
        check_plan(plan, disk, (selection or {"disks": [None]})["disks"][0])
        image = tmp_path / f"{size}.img"
        subprocess.run(["truncate", "-s", str(size), str(image)], check=True)
        assert_table_matches(plan, write_with_sfdisk(plan, str(image)))


@needs_root
def test_captured_4kn_disk_round_trips_on_a_4kn_loop_device(tmp_path) -> None:
    schema = parse_schema(json.dumps(build_schema(
        [disk_from("sfdisk_json_gpt_4kn.json", 2 * 2**30, {}, sector=4096)])))
    disk = schema["disks"][0]
    for size in (disk_minimums(schema, None)[0], disk["size_bytes"], 3 * 2**30):
        [plan] = plan_deploy(schema, None, [{"size_bytes": size, "logical_sector_size": 4096}],
                             {"partition_method": "dynamic", "force_dynamic_exact_match": True})
        check_plan(plan, disk)
        image = tmp_path / f"{size}.img"
        subprocess.run(["truncate", "-s", str(size), str(image)], check=True)
        with attached(image, 4096) as dev:
            assert_table_matches(plan, write_with_sfdisk(plan, dev))
