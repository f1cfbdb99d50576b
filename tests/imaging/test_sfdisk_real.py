"""Plans of the example schemas written by the real sfdisk on sparse files (and 4Kn loops)."""

from __future__ import annotations

import subprocess

import pytest

from app.imaging.minsize import disk_minimums
from app.imaging.planner import PlanError, plan_deploy
from tests.conftest import needs_root
from tests.imaging.helpers import (
    assert_table_matches,
    attached,
    check_plan,
    load_schema,
    write_with_sfdisk,
)

SCHEMAS_512 = ["schema_gpt_windows_efi.json", "schema_mbr_extended.json",
               "schema_gpt_linux.json", "schema_lvm.json"]


def sizes_for(schema: dict) -> list[tuple[str, int]]:
    """Return smaller (the minimum), equal and larger destination sizes of disk 0."""
    minimum = disk_minimums(schema, None)[0]
    original = schema["disks"][0]["size_bytes"]
    return [("minimum", minimum), ("smaller", (minimum + original) // 2 // 512 * 512),
            ("equal", original), ("larger", original * 3)]


def sparse(tmp_path, size: int):
    """Return a sparse file of `size` bytes."""
    path = tmp_path / "disk.img"
    path.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", str(size), str(path)], check=True)
    return path


@pytest.mark.parametrize("name", SCHEMAS_512)
@pytest.mark.parametrize("method", ["dynamic", "force_dynamic"])
def test_examples_on_smaller_equal_larger_disks(tmp_path, name, method) -> None:
    schema = load_schema(name)
    options = {"partition_method": "dynamic",
               "force_dynamic_exact_match": method == "force_dynamic"}
    for label, size in sizes_for(schema):
        [plan] = plan_deploy(schema, None, [{"size_bytes": size, "logical_sector_size": 512}],
                             options)
        expected = "original" if label == "equal" and method == "dynamic" else "dynamic"
        assert plan["method"] == expected, label
        if expected == "dynamic":
            check_plan(plan, schema["disks"][0])
        table = write_with_sfdisk(plan, str(sparse(tmp_path, size)))
        assert_table_matches(plan, table)


@pytest.mark.parametrize("name", SCHEMAS_512)
def test_one_sector_below_the_minimum_is_refused(name) -> None:
    schema = load_schema(name)
    minimum = disk_minimums(schema, None)[0]
    with pytest.raises(PlanError, match=f"at least {minimum} bytes"):
        plan_deploy(schema, None, [{"size_bytes": minimum - 512, "logical_sector_size": 512}],
                    {"partition_method": "dynamic"})


@pytest.mark.parametrize("efi", [True, False])
def test_standard_layouts_written(tmp_path, efi) -> None:
    schema = load_schema("schema_gpt_windows_efi.json")
    selection = {"disks": [{"index": 0, "partitions": [
        {"number": n, "deploy": n == 4} for n in (1, 2, 3, 4)]}]}
    size = 120 * 10**9 // 512 * 512
    [plan] = plan_deploy(schema, selection, [{"size_bytes": size}],
                         {"partition_method": "standard", "efi": efi})
    check_plan(plan, schema["disks"][0], selection["disks"][0])
    assert_table_matches(plan, write_with_sfdisk(plan, str(sparse(tmp_path, size))))


@needs_root
@pytest.mark.parametrize("label", ["minimum", "equal-forced", "larger"])
def test_4kn_example_on_a_4096_byte_loop_device(tmp_path, label) -> None:
    schema = load_schema("schema_gpt_4kn.json")
    original = schema["disks"][0]["size_bytes"]
    size = {"minimum": disk_minimums(schema, None)[0], "equal-forced": original,
            "larger": original + 10 * 2**30}[label]
    [plan] = plan_deploy(schema, None, [{"size_bytes": size, "logical_sector_size": 4096}],
                         {"partition_method": "dynamic", "force_dynamic_exact_match": True})
    assert plan["partitions"][0]["start_sector"] == 256  # 1 MiB in 4 KiB sectors
    check_plan(plan, schema["disks"][0])
    with attached(sparse(tmp_path, size), 4096) as dev:
        table = write_with_sfdisk(plan, dev)
    assert_table_matches(plan, table)


def test_original_method_writes_the_source_table(tmp_path) -> None:
    schema = load_schema("schema_mbr_extended.json")
    disk = schema["disks"][0]
    [plan] = plan_deploy(schema, None, [{"size_bytes": disk["size_bytes"] + 2**30}],
                         {"partition_method": "original"})
    assert plan["restore_original_table"] is True
    table = write_with_sfdisk(plan, str(sparse(tmp_path, disk["size_bytes"] + 2**30)))
    assert_table_matches(plan, table)
    got = {(p["start"], p["size"]) for p in table["partitions"]}
    assert got == {(p["start_sector"], p["size_sectors"]) for p in disk["partitions"]}
