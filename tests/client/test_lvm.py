"""LVM report parsers on real `pvs/vgs/lvs --reportformat json` output (tests/fixtures/tools,
captured by capture_imaging.sh), and the schema volume group built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.imaging.schema import normalise_schema, validate_schema
from client.lvm import LvmError, parse_lvs, parse_pvs, parse_vgs, schema_volume_group

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tools"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_parse_pvs() -> None:
    assert parse_pvs(fixture("imaging_pvs_json.json")) == [
        {"device": "/dev/loop11", "vg_name": "castorvg", "size_bytes": 1606418432,
         "pe_start_bytes": 1048576}]


def test_parse_vgs() -> None:
    (vg,) = parse_vgs(fixture("imaging_vgs_json.json"))
    assert vg["name"] == "castorvg"
    assert vg["uuid"] == "4dT7ef-mEGB-lqWo-dDxc-hTNs-ON1h-RPCBBN"
    assert (vg["size_bytes"], vg["free_bytes"], vg["extent_bytes"]) == (
        1606418432, 536870912, 4194304)
    assert (vg["pv_count"], vg["lv_count"]) == (1, 2)


def test_parse_lvs() -> None:
    lvs = parse_lvs(fixture("imaging_lvs_json.json"))
    assert [(lv["name"], lv["size_bytes"], lv["segments"]) for lv in lvs] == [
        ("home", 440401920, 1), ("root", 629145600, 1)]
    assert lvs[1]["uuid"] == "R00tLV-aaaa-bbbb-cccc-dddd-eeee-ffffff"


def test_schema_volume_group_extents_and_normalisation() -> None:
    (vg,) = parse_vgs(fixture("imaging_vgs_json.json"))
    group = schema_volume_group(vg, parse_lvs(fixture("imaging_lvs_json.json")), 2)
    assert group["pv_partition"] == 2
    assert [(lv["name"], lv["extents"]) for lv in group["logical_volumes"]] == [
        ("home", 105), ("root", 150)]
    # The planner's schema accepts it on a disk whose partition 2 holds the PV.
    pv_sectors = (vg["size_bytes"] + 2 * 1048576) // 512
    doc = {"format": "castor-schema", "version": 1, "image_type": "block", "disks": [{
        "index": 0, "name": "sda", "size_bytes": 4 << 30, "logical_sector_size": 512,
        "physical_sector_size": 512, "table": "gpt", "disk_id": "", "boot_partition": None,
        "first_usable_sector": 34, "last_usable_sector": (4 << 30) // 512 - 34,
        "table_area_sectors": 2048,
        "partitions": [{"number": 2, "start_sector": 2048, "size_sectors": pv_sectors,
                        "type": "E6D6D379-F507-44C2-A23C-238F2A3DF928", "role": "primary",
                        "filesystem": None, "lvm_vg": "castorvg"}],
        "volume_groups": [group]}]}
    validate_schema(doc)
    normalise_schema(doc)


def test_volume_group_on_two_pvs_is_refused() -> None:
    (vg,) = parse_vgs(fixture("imaging_vgs_json.json"))
    with pytest.raises(LvmError, match="2 physical volumes"):
        schema_volume_group(dict(vg, pv_count=2), [], 2)
