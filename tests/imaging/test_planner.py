"""The planner's methods and refusals on the example schemas."""

from __future__ import annotations

import pytest

from app.imaging.minsize import disk_minimums
from app.imaging.planner import PlanError, plan_deploy, plan_disk
from app.imaging.units import GIB, MIB
from tests.imaging.helpers import check_plan, load_schema

DYNAMIC = {"partition_method": "dynamic"}


def dest(size: int, lss: int = 512) -> dict:
    return {"size_bytes": size, "logical_sector_size": lss, "physical_sector_size": lss}


def test_too_small_states_the_minimum_in_bytes_and_units() -> None:
    schema = load_schema("schema_gpt_windows_efi.json")
    minimum = disk_minimums(schema, None)[0]
    with pytest.raises(PlanError) as caught:
        plan_deploy(schema, None, [dest(32 * GIB)], DYNAMIC)
    assert f"at least {minimum} bytes" in str(caught.value)
    assert "GiB)" in str(caught.value) and "too small" in str(caught.value)


def test_block_image_refuses_another_sector_size_file_image_does_not() -> None:
    schema = load_schema("schema_gpt_linux.json")
    with pytest.raises(PlanError, match="4096-byte logical sectors but this block image"):
        plan_deploy(schema, None, [dest(64 * GIB, 4096)], DYNAMIC)
    schema["image_type"] = "file"
    [plan] = plan_deploy(schema, None, [dest(64 * GIB, 4096)], DYNAMIC)
    assert plan["logical_sector_size"] == 4096
    assert plan["partitions"][0]["start_sector"] == 256
    assert plan["partitions"][0]["size_sectors"] == 512 * MIB // 4096
    check_plan(plan, schema["disks"][0], image_type="file")


def test_destination_count_must_match() -> None:
    schema = load_schema("schema_gpt_linux.json")
    with pytest.raises(PlanError, match="more destination disks than schema disks"):
        plan_deploy(schema, None, [dest(64 * GIB), dest(64 * GIB)], DYNAMIC)
    with pytest.raises(PlanError, match="only 0 destination"):
        plan_deploy(schema, None, [], DYNAMIC)
    with pytest.raises(PlanError, match="no disk of this image is selected"):
        plan_deploy(schema, {"disks": [{"index": 0, "deploy": False}]}, [], DYNAMIC)


def test_original_refuses_a_smaller_disk_and_keeps_the_table_otherwise() -> None:
    schema = load_schema("schema_gpt_linux.json")
    disk = schema["disks"][0]
    with pytest.raises(PlanError, match="method Original cannot restore disk 0"):
        plan_deploy(schema, None, [dest(disk["size_bytes"] - MIB)],
                    {"partition_method": "original"})
    [plan] = plan_deploy(schema, None, [dest(disk["size_bytes"] * 2)],
                         {"partition_method": "original"})
    assert plan["restore_original_table"] and plan["method"] == "original"
    assert [(p["start_sector"], p["size_sectors"], p["uuid"]) for p in plan["partitions"]] == [
        (p["start_sector"], p["size_sectors"], p["uuid"]) for p in disk["partitions"]]
    assert plan["disk_id"] == disk["disk_id"]


def test_exact_match_uses_original_unless_forced() -> None:
    schema = load_schema("schema_gpt_windows_efi.json")
    size = schema["disks"][0]["size_bytes"]
    assert plan_deploy(schema, None, [dest(size)], DYNAMIC)[0]["method"] == "original"
    forced = plan_deploy(schema, None, [dest(size)],
                         {**DYNAMIC, "force_dynamic_exact_match": True})[0]
    assert forced["method"] == "dynamic"
    assert forced["partitions"][-1]["start_sector"] + forced["partitions"][-1][
        "size_sectors"] - 1 == forced["last_usable_sector"]


def test_dynamic_grows_shrunk_filesystems_in_proportion() -> None:
    schema = load_schema("schema_mbr_extended.json")
    disk = schema["disks"][0]
    [plan] = plan_deploy(schema, None, [dest(disk["size_bytes"] * 2)], DYNAMIC)
    parts = {p["number"]: p for p in plan["partitions"]}
    assert parts[1]["fixed"] and parts[5]["fixed"]  # 512 MiB boot, swap
    assert parts[1]["size_sectors"] == disk["partitions"][0]["size_sectors"]
    for number in (2, 6, 7):
        assert not parts[number]["fixed"] and parts[number]["grow"]
    source = {p["number"]: p["size_sectors"] for p in disk["partitions"]}
    ratio = parts[2]["size_sectors"] / source[2]
    assert ratio == pytest.approx(parts[6]["size_sectors"] / source[6], rel=1e-4)
    assert parts[3]["role"] == "extended" and not parts[3]["restore"]
    check_plan(plan, disk)


def test_logicals_are_renumbered_when_one_is_left_out() -> None:
    schema = load_schema("schema_mbr_extended.json")
    selection = {"disks": [{"index": 0, "partitions": [{"number": 5, "deploy": False}]}]}
    [plan] = plan_deploy(schema, selection, [dest(200 * GIB)], DYNAMIC)
    logicals = [(p["number"], p["source_partition"]) for p in plan["partitions"]
                if p["role"] == "logical"]
    assert logicals == [(5, 6), (6, 7)]


def test_percent_and_custom_sizes_with_the_remainder_spread() -> None:
    schema = load_schema("schema_mbr_extended.json")
    selection = {"disks": [{"index": 0, "partitions": [
        {"number": 2, "custom_size": {"value": 40, "unit": "%"}},
        {"number": 6, "custom_size": {"value": 50, "unit": "GB"}}]}]}
    size = 300 * GIB
    [plan] = plan_deploy(schema, selection, [dest(size)], DYNAMIC)
    parts = {p["number"]: p for p in plan["partitions"]}
    region = plan["last_usable_sector"] + 1 - 2048
    assert parts[2]["size_sectors"] == region * 40 // 100 // 2048 * 2048
    assert parts[6]["size_sectors"] == 50 * 10**9 // 512
    assert parts[7]["start_sector"] + parts[7]["size_sectors"] - 1 == plan["last_usable_sector"]
    assert plan["minimum_bytes"] is None
    over = {"disks": [{"index": 0, "partitions": [
        {"number": n, "custom_size": {"value": 60, "unit": "%"}} for n in (2, 7)]}]}
    with pytest.raises(PlanError, match="add up to 120 %"):
        plan_deploy(schema, over, [dest(size)], DYNAMIC)


def test_custom_size_below_the_content_is_refused() -> None:
    schema = load_schema("schema_gpt_windows_efi.json")
    selection = {"disks": [{"index": 0, "partitions": [
        {"number": 4, "custom_size": {"value": 10, "unit": "GB"}}]}]}
    with pytest.raises(PlanError, match="custom size of partition 4 .* smaller than its content"):
        plan_deploy(schema, selection, [dest(200 * GIB)], DYNAMIC)


def test_randomize_guids_drops_gpt_ids_and_keeps_the_mbr_signature() -> None:
    gpt = load_schema("schema_gpt_linux.json")
    [plan] = plan_deploy(gpt, None, [dest(80 * GIB)], {**DYNAMIC, "randomize_guids": True})
    assert plan["disk_id"] is None and all(p["uuid"] is None for p in plan["partitions"])
    assert "uuid=" not in plan["sfdisk_script"] and "label-id" not in plan["sfdisk_script"]
    mbr = load_schema("schema_mbr_extended.json")
    [plan] = plan_deploy(mbr, None, [dest(200 * GIB)], {**DYNAMIC, "randomize_guids": True})
    assert plan["disk_id"] == "0x5ca1ab1e"


def test_mbr_plans_stay_inside_32_bit_sectors_on_huge_disks() -> None:
    schema = load_schema("schema_mbr_extended.json")
    [plan] = plan_deploy(schema, None, [dest(3 * 2**40)], DYNAMIC)
    assert plan["last_usable_sector"] == 2**32 - 1
    assert max(p["start_sector"] + p["size_sectors"] for p in plan["partitions"]) <= 2**32
    check_plan(plan, schema["disks"][0])


def test_lvm_volumes_are_planned_inside_the_pv() -> None:
    schema = load_schema("schema_lvm.json")
    [plan] = plan_deploy(schema, None, [dest(200 * GIB)], DYNAMIC)
    [group] = plan["volume_groups"]
    pv = plan["partitions"][1]
    assert group["pv_partition"] == 2 and group["name"] == "vg0"
    assert group["size_bytes"] + group["metadata_bytes"] <= pv["size_sectors"] * 512
    volumes = {lv["name"]: lv for lv in group["logical_volumes"]}
    assert volumes["swap"]["size_bytes"] == 4 * GIB and volumes["swap"]["fixed"]
    assert volumes["home"]["size_bytes"] > 60 * GIB and volumes["home"]["grow"]
    assert sum(lv["extents"] for lv in volumes.values()) == group["extents"]
    assert volumes["root"]["source"] == "vg0-root"


def test_original_method_restores_each_lv_at_its_source_size() -> None:
    schema = load_schema("schema_lvm.json")
    source = schema["disks"][0]
    [plan] = plan_deploy(schema, None, [dest(source["size_bytes"])], DYNAMIC)
    assert plan["method"] == "original"
    [group] = plan["volume_groups"]
    assert group["pv_partition"] == 2 and group["name"] == "vg0"
    [source_group] = source["volume_groups"]
    assert [(lv["name"], lv["size_bytes"], lv["fixed"]) for lv in group["logical_volumes"]] == [
        (lv["name"], lv["size_bytes"], True) for lv in source_group["logical_volumes"]]
    assert [lv["source"] for lv in group["logical_volumes"]] == [
        f"vg0-{lv['name']}" for lv in source_group["logical_volumes"]]


def test_standard_efi_layout() -> None:
    schema = load_schema("schema_gpt_windows_efi.json")
    selection = {"disks": [{"index": 0, "partitions": [
        {"number": n, "deploy": n == 4} for n in (1, 2, 3, 4)]}]}
    [plan] = plan_deploy(schema, selection, [dest(120 * GIB)],
                         {"partition_method": "standard"})
    kinds = [(p["number"], p["size_sectors"] * 512 // MIB, p["filesystem"], p["restore"])
             for p in plan["partitions"][:3]]
    assert kinds == [(1, 500, "ntfs", False), (2, 100, "vfat", False), (3, 16, None, False)]
    os_part = plan["partitions"][3]
    assert os_part["source_partition"] == 4 and os_part["restore"] and os_part["grow"]
    assert os_part["type"] == "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
    assert plan["table"] == "gpt" and plan["method"] == "standard"


def test_standard_legacy_layout_from_a_gpt_image_and_4kn_esp() -> None:
    schema = load_schema("schema_gpt_windows_efi.json")
    selection = {"disks": [{"index": 0, "partitions": [
        {"number": n, "deploy": n == 4} for n in (1, 2, 3, 4)]}]}
    [plan] = plan_deploy(schema, selection, [dest(120 * GIB)],
                         {"partition_method": "standard", "efi": False})
    assert plan["table"] == "mbr"
    boot, os_part = plan["partitions"]
    assert boot["bootable"] and boot["type"] == "07" and os_part["type"] == "07"
    schema["image_type"] = "file"
    [plan] = plan_deploy(schema, selection, [dest(120 * GIB, 4096)],
                         {"partition_method": "standard", "efi": True})
    assert plan["partitions"][1]["size_sectors"] * 4096 == 260 * MIB


def test_standard_needs_exactly_one_partition() -> None:
    schema = load_schema("schema_gpt_windows_efi.json")
    with pytest.raises(PlanError, match="exactly one OS partition.*4 are selected"):
        plan_deploy(schema, None, [dest(120 * GIB)], {"partition_method": "standard"})


def test_custom_script_is_passed_through() -> None:
    schema = load_schema("schema_gpt_linux.json")
    script = "sgdisk -n 1:0:+512M /dev/sda\n"
    [plan] = plan_deploy(schema, None, [dest(10 * GIB)],
                         {"partition_method": "custom_script",
                          "custom_partition_script": script})
    assert plan["partitions"] is None and plan["custom_script"] == script
    assert plan["method"] == "custom_script"


def test_bad_destination_and_method() -> None:
    disk = load_schema("schema_gpt_linux.json")["disks"][0]
    with pytest.raises(PlanError, match="logical sector size 520"):
        plan_disk(disk, None, dest(10 * GIB, 520), DYNAMIC)
    with pytest.raises(PlanError, match="needs integer size_bytes"):
        plan_disk(disk, None, {"size_bytes": "big"}, DYNAMIC)
    with pytest.raises(PlanError, match="unknown partition method"):
        plan_disk(disk, None, dest(10 * GIB), {"partition_method": "magic"})


def test_two_disk_images_plan_in_order_and_skip_deselected_disks() -> None:
    linux = load_schema("schema_gpt_linux.json")
    windows = load_schema("schema_gpt_windows_efi.json")
    second = dict(windows["disks"][0], index=1)
    schema = {**linux, "disks": [linux["disks"][0], second]}
    plans = plan_deploy(schema, None, [dest(80 * GIB), dest(300 * GIB)], DYNAMIC)
    assert [p["disk_index"] for p in plans] == [0, 1]
    assert [len(p["partitions"]) for p in plans] == [3, 4]
    only_second = {"disks": [{"index": 0, "deploy": False}]}
    [plan] = plan_deploy(schema, only_second, [dest(300 * GIB)], DYNAMIC)
    assert plan["disk_index"] == 1


def test_mbr_boot_partition_sets_the_active_flag() -> None:
    schema = load_schema("schema_mbr_extended.json")
    schema["disks"][0]["boot_partition"] = 2
    for part in schema["disks"][0]["partitions"]:
        part["bootable"] = False
    [plan] = plan_deploy(schema, None, [dest(200 * GIB)], DYNAMIC)
    assert [p["number"] for p in plan["partitions"] if p["bootable"]] == [2]
    assert "part2 : start=1050624, size=" in plan["sfdisk_script"]
    assert plan["sfdisk_script"].count("bootable") == 1


def test_lvm_pv_with_a_custom_size_holding_its_volume_group() -> None:
    schema = load_schema("schema_lvm.json")
    selection = {"disks": [{"index": 0, "partitions": [
        {"number": 2, "custom_size": {"value": 85, "unit": "GB"}}]}]}
    [plan] = plan_deploy(schema, selection, [dest(200 * GIB)], DYNAMIC)
    assert plan["partitions"][1]["size_sectors"] == 85 * 10**9 // 512
    assert plan["volume_groups"][0]["size_bytes"] <= 85 * 10**9
    selection["disks"][0]["partitions"][0]["custom_size"] = {"value": 50, "unit": "GB"}
    with pytest.raises(PlanError, match="custom size of partition 2"):
        plan_deploy(schema, selection, [dest(200 * GIB)], DYNAMIC)
