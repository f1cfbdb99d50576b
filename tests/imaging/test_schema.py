"""Schema v1 validation: the examples pass, every broken field is named precisely."""

from __future__ import annotations

import copy
import json

import pytest

from app.imaging.schema import SchemaError, parse_schema, validate_schema
from tests.imaging.helpers import FIXTURES

EXAMPLES = sorted(p.name for p in FIXTURES.glob("schema_*.json"))


def example(name: str = "schema_mbr_extended.json") -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_are_valid_and_normalising_is_stable(name) -> None:
    schema = validate_schema(example(name))
    assert validate_schema(schema) == schema
    assert schema["format"] == "castor-schema" and schema["version"] == 1


def test_defaults_are_filled() -> None:
    minimal = {"format": "castor-schema", "version": 1, "disks": [{
        "index": 0, "size_bytes": 64 * 2**20, "logical_sector_size": 512, "table": "gpt",
        "partitions": [{"number": 1, "start_sector": 2048, "size_sectors": 4096,
                        "type": "0fc63daf-8483-4772-8e79-3d69d8477de4",
                        "filesystem": {"type": "ext4", "used_bytes": 1000}}]}]}
    disk = validate_schema(minimal)["disks"][0]
    assert disk["first_usable_sector"] == 34
    assert disk["last_usable_sector"] == 64 * 2048 - 34
    assert disk["physical_sector_size"] == 512 and disk["volume_groups"] == []
    part = disk["partitions"][0]
    assert part["type"] == "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
    assert part["role"] == "primary" and part["uuid"] is None
    fs = part["filesystem"]
    assert fs["volume_bytes"] == fs["min_bytes"] == 4096 * 512
    assert fs["used_bytes"] == 1000 and fs["shrunk"] is False


def test_mbr_types_and_roles_are_normalised() -> None:
    schema = example()
    schema["disks"][0]["partitions"][1]["type"] = "7"
    del schema["disks"][0]["partitions"][2]["role"]
    disk = validate_schema(schema)["disks"][0]
    assert disk["partitions"][1]["type"] == "07"
    assert disk["partitions"][2]["role"] == "extended"


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda s: s["disks"][0]["partitions"][1].update(size_sectors=-5),
     r"disks\[0\]\.partitions\[1\]\.size_sectors: -5 is less than the minimum of 1"),
    (lambda s: s["disks"][0]["partitions"][0].update(type="zz"),
     r"disks\[0\]\.partitions\[0\]\.type: 'zz' does not match"),
    (lambda s: s["disks"][0].update(table="apm"), r"disks\[0\]\.table: 'apm' is not one of"),
    (lambda s: s.update(version=2), r"version: 1 was expected"),
    (lambda s: s["disks"][0].pop("size_bytes"), r"disks\[0\]: 'size_bytes' is a required"),
    (lambda s: s["disks"][0]["partitions"][1].update(number=1),
     r"partition 1 appears twice"),
    (lambda s: s["disks"][0]["partitions"][1].update(start_sector=2049),
     r"partitions 1 and 2 overlap"),
    (lambda s: s["disks"][0]["partitions"][5].update(size_sectors=10**9),
     r"partition 7 ends at sector"),
    (lambda s: s["disks"][0]["partitions"][3].update(start_sector=4096),
     r"logical partition 5 lies outside extended partition 3"),
    (lambda s: s["disks"][0]["partitions"][0].update(type="0FC63DAF-8483-4772-8E79-3D69D8477DE4"),
     r"an MBR partition type is two hex digits"),
    (lambda s: s["disks"][0]["partitions"][1]["filesystem"].update(used_bytes=10**15),
     r"disks\[0\]\.partitions\[1\]\.filesystem\.used_bytes: .* larger than volume_bytes"),
    (lambda s: s["disks"][0]["partitions"][0].update(custom_size={"value": 5, "unit": "TB"}),
     r"custom_size\.unit: 'TB' is not one of"),
    (lambda s: s["disks"][0].update(size_bytes=10**9 + 1), r"not a whole number of 512"),
])
def test_bad_fields_are_named(mutate, message) -> None:
    schema = copy.deepcopy(example())
    mutate(schema)
    with pytest.raises(SchemaError, match=message):
        validate_schema(schema)


def test_volume_group_checks() -> None:
    schema = example("schema_lvm.json")
    schema["disks"][0]["volume_groups"][0]["logical_volumes"][2]["size_bytes"] = 10**12
    with pytest.raises(SchemaError, match=r"volume_groups\[0\]\.logical_volumes: the logical"):
        validate_schema(schema)
    schema = example("schema_lvm.json")
    schema["disks"][0]["volume_groups"][0]["pv_partition"] = 9
    with pytest.raises(SchemaError, match=r"pv_partition: partition 9 is not on this disk"):
        validate_schema(schema)


def test_parse_schema_reports_malformed_json() -> None:
    with pytest.raises(SchemaError, match="not valid JSON"):
        parse_schema('{"format": ')
    with pytest.raises(SchemaError, match="must be a JSON object"):
        parse_schema("[1, 2]")
    assert parse_schema((FIXTURES / "schema_gpt_linux.json").read_text())["disks"][0]["index"] == 0
