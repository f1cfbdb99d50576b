"""LVM report parsers on real `pvs/vgs/lvs --reportformat json` output (tests/fixtures/tools,
captured by capture_imaging.sh), the schema volume group built from them, and the commands
the client runs. Capturing and deploying LVs needs device-mapper: the VM tests do that."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from app.imaging.schema import normalise_schema, validate_schema
from client.lvm import (
    LvmError,
    create_commands,
    dm_name,
    group_names,
    lv_device,
    lv_key,
    parse_lvs,
    parse_pvs,
    parse_vgs,
    reduce_argv,
    schema_volume_group,
)

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


def planned_group() -> dict:
    """A planned volume group as the planner hands it to the client."""
    return {"name": "castor", "uuid": "u", "extent_bytes": 4 << 20, "extents": 1400,
            "size_bytes": 1400 * (4 << 20), "metadata_bytes": 1 << 20, "pv_partition": 2,
            "logical_volumes": [
                {"name": "data", "extents": 200, "size_bytes": 200 * (4 << 20),
                 "filesystem": "ext4", "source": "castor-data", "fixed": False, "grow": True},
                {"name": "root", "extents": 700, "size_bytes": 700 * (4 << 20),
                 "filesystem": "ext4", "source": "castor-root", "fixed": False, "grow": True},
                {"name": "swap", "extents": 64, "size_bytes": 64 * (4 << 20),
                 "filesystem": "swap", "source": "castor-swap", "fixed": True,
                 "grow": False}]}


def test_create_commands_make_the_pv_vg_and_each_lv_at_its_planned_extents() -> None:
    commands = create_commands("/dev/vda2", planned_group())
    assert commands[0] == ["pvcreate", "-ff", "-y", "--zero", "y", "/dev/vda2"]
    assert commands[1] == ["vgcreate", "-y", "-s", "4194304b", "castor", "/dev/vda2"]
    assert [(c[c.index("-n") + 1], c[c.index("-l") + 1], c[-1]) for c in commands[2:]] == [
        ("data", "200", "castor"), ("root", "700", "castor"), ("swap", "64", "castor")]
    # Old signatures inside a new LV (a filesystem from an earlier deploy) are wiped.
    assert all("--wipesignatures" in c for c in commands[2:])


def test_lv_names_for_device_mapper_and_the_manifest() -> None:
    assert dm_name("vg-a", "my-root") == "vg--a-my--root"
    assert lv_device("castor", "root") == "/dev/mapper/castor-root"
    assert lv_key("castor", "root") == "castor-root"
    assert reduce_argv("castor", "root", 123) == ["-f", "-y", "-l", "123", "castor/root"]


def test_group_names_reads_every_pv_of_each_vg() -> None:
    report = json.dumps({"report": [{"pv": [
        {"pv_name": "/dev/vda2", "vg_name": "castor"},
        {"pv_name": "/dev/vdb1", "vg_name": "castor"},
        {"pv_name": "/dev/vdc1", "vg_name": ""},
        {"pv_name": "/dev/sda3", "vg_name": "other"}]}]})
    assert group_names(report) == {"castor": {"/dev/vda2", "/dev/vdb1"},
                                   "other": {"/dev/sda3"}}


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("pvcreate"),
                    reason="needs root and lvm2")
def test_pv_without_device_mapper_is_probed_and_captured_raw(tmp_path, caplog) -> None:
    """Where LVs cannot be activated (this host has no device-mapper), the PV is one raw
    partition in the schema, and the log says why."""
    from client.devices import open_disk
    from client.probe import probe_disk
    from tests.client.disks import loop, partitions, sh

    image = tmp_path / "disk.img"
    sh("truncate", "-s", "64M", str(image))
    sh("sfdisk", "-q", str(image), input="label: dos\ntype=8e\n")
    (part,) = partitions(image)
    config = "devices{obtain_device_list_from_udev=0 use_devicesfile=0}"
    with loop(image, part["start"] * 512, part["size"] * 512) as dev:
        sh("pvcreate", "--config", config, "-q", dev)
        sh("vgcreate", "--config", config, "-q", "castortestvg", dev)
        sh("lvcreate", "--config", config, "--driverloaded", "n", "-an", "-Zn", "-q", "-L",
           "16M", "-n", "root", "castortestvg")
        try:
            with open_disk(str(image)) as disk:
                info = probe_disk(disk, 0)
        finally:
            sh("vgremove", "--config", config, "-f", "-q", "castortestvg")
            sh("pvremove", "--config", config, "-q", dev)
    (probed,) = info["partitions"]
    if info["volume_groups"]:
        pytest.skip("device-mapper works here: the VM tests cover LV capture")
    assert probed["lvm_vg"] == "castortestvg" and probed["filesystem"] is None
    assert "capturing it raw" in caplog.text


class FakeDisk:
    """What the preflight reads of an opened disk."""

    logical_sector_size = 512
    path = "/dev/vda"
    source = "/dev/vda"


def lvm_plan() -> dict:
    """A disk plan: /boot partition 1 and the PV partition 2 holding the planned group."""
    return {"disk_index": 0, "table": "mbr", "volume_groups": [planned_group()],
            "partitions": [
                {"number": 1, "start_sector": 2048, "size_sectors": 1048576, "role": "primary",
                 "filesystem": "ext4", "source_partition": 1, "restore": True, "lv": None},
                {"number": 2, "start_sector": 1050624, "size_sectors": 1000 * 8192 + 2048,
                 "role": "primary", "filesystem": None, "source_partition": 2,
                 "restore": True, "lv": None}]}


def lv_manifest() -> dict:
    """Stored files of partition 1 and two LVs of the PV on partition 2."""
    def entry(path: str, lv: str | None, partition: int) -> dict:
        return {"path": path, "kind": "partclone", "disk": 0, "partition": partition,
                "lv": lv, "filesystem": "ext4", "compression": "zstd", "size_bytes": 10,
                "sha256": "0" * 64}
    return {"files": [entry("hd0/castor-data.ext4.partclone.zst", "castor-data", 2),
                      entry("hd0/part1.ext4.partclone.zst", None, 1),
                      entry("hd0/castor-root.ext4.partclone.zst", "castor-root", 2)]}


def test_manifest_lookup_tells_an_lv_file_from_its_pv_partition() -> None:
    from client.deploy import manifest_file

    manifest = lv_manifest()
    assert manifest_file(manifest, "partclone", 0, 2) is None  # no raw copy of the PV
    assert manifest_file(manifest, "partclone", 0, 1)["path"].endswith("part1.ext4.partclone.zst")
    assert manifest_file(manifest, "partclone", 0, lv="castor-root")["lv"] == "castor-root"


def test_preflight_sees_each_lv_file_and_the_lvm_tools() -> None:
    from client.preflight import restored_files, restored_volumes, tools_needed

    plan, manifest = lvm_plan(), lv_manifest()
    found = {v["name"]: e for _g, v, e in restored_volumes(plan, manifest)}
    assert found["root"]["lv"] == "castor-root" and found["swap"] is None
    schema_disk = {"logical_sector_size": 512, "partitions": [
        {"number": 1, "size_sectors": 1048576}, {"number": 2, "size_sectors": 9000000}],
        "volume_groups": [{"name": "castor", "logical_volumes": [
            {"name": "root", "size_bytes": 3 << 30}, {"name": "data", "size_bytes": 1 << 30}]}]}
    labels = [(label, target, need) for label, target, need, _e in restored_files(
        plan, schema_disk, manifest, 512)]
    assert ("disk 0 LV castor/root (hd0/castor-root.ext4.partclone.zst)", 700 * (4 << 20),
            3 << 30) in labels
    assert len(labels) == 3
    tools = tools_needed(plan, manifest, {})
    assert {"pvcreate", "vgcreate", "lvcreate", "mkswap", "partclone.extfs",
            "resize2fs"} <= tools


def test_preflight_refuses_a_vg_name_another_disk_holds_and_lvs_that_do_not_fit() -> None:
    from client.preflight import volume_group_problems

    plan = lvm_plan()
    assert volume_group_problems(FakeDisk(), plan, {"castor": {"/dev/vda"}}, {"/dev/vda"}) == []
    [problem] = volume_group_problems(FakeDisk(), plan, {"castor": {"/dev/sdb"}}, {"/dev/vda"})
    assert "already exists on /dev/sdb" in problem
    plan["volume_groups"][0]["logical_volumes"][1]["extents"] = 900
    [problem] = volume_group_problems(FakeDisk(), plan, {}, {"/dev/vda"})
    assert "take 1164 extents but its partition 2 holds 1000" in problem


def lvm_schema(image_type: str = "block") -> dict:
    """A probed disk schema with a PV partition and its volume group."""
    group = {"name": "castor", "uuid": "u", "pv_partition": 2, "size_bytes": 1 << 30,
             "extent_bytes": 4 << 20, "logical_volumes": [
                 {"name": "root", "uuid": "r", "size_bytes": 512 << 20, "extents": 128,
                  "filesystem": None},
                 {"name": "data", "uuid": "d", "size_bytes": 256 << 20, "extents": 64,
                  "filesystem": None}]}
    return {"format": "castor-schema", "version": 1, "image_type": image_type, "disks": [
        {"index": 0, "partitions": [{"number": 1}, {"number": 2, "lvm_vg": "castor"}],
         "volume_groups": [group]}]}


def test_file_images_of_logical_volumes_are_refused_before_any_capture() -> None:
    from client.run import ClientError
    from client.upload import refuse_file_lvm

    refuse_file_lvm(lvm_schema("block"))
    with pytest.raises(ClientError, match="file \\(WIM\\) images of logical volumes are not"):
        refuse_file_lvm(lvm_schema("file"))
    schema = lvm_schema("file")
    schema["disks"][0]["partitions"][1]["upload"] = False  # the PV is not uploaded
    refuse_file_lvm(schema)


def test_custom_upload_schema_leaves_out_a_logical_volume() -> None:
    from client.upload import apply_selection

    selection = {"disks": [{"index": 0, "volume_groups": [
        {"name": "castor", "logical_volumes": [{"name": "data", "upload": False},
                                               {"name": "root", "fixed": True}]}]}]}
    schema = apply_selection(lvm_schema(), selection)
    volumes = {v["name"]: (v["upload"], v.get("fixed", False))
               for v in schema["disks"][0]["volume_groups"][0]["logical_volumes"]}
    assert volumes == {"root": (True, True), "data": (False, False)}


def shrink_calls(monkeypatch, options: dict, fixed: str = "") -> tuple[list, dict]:
    """Run the upload's shrink step on a probed LVM disk with the tools replaced by
    recorders; return the calls and the disk's schema afterwards."""
    from contextlib import ExitStack, contextmanager

    from client import resize, upload

    calls: list = []

    @contextmanager
    def shrunk(dev, fs_type, enabled, threshold, slack, record=None, pins_at=None):
        calls.append(("shrink", dev))
        try:
            yield 300 << 20 if dev.endswith("root") else None
        finally:
            calls.append(("grow", dev))

    @contextmanager
    def reduced(vg, lv, extents, back_to):
        calls.append(("lvreduce", f"{vg}/{lv}", extents))
        try:
            yield
        finally:
            calls.append(("lvextend", f"{vg}/{lv}", back_to))

    monkeypatch.setattr(resize, "shrunk_for_capture", shrunk)
    monkeypatch.setattr(resize, "filesystem_info", lambda dev, fs: {"block_size": 4096})
    monkeypatch.setattr(upload.lvm, "reduced", reduced)
    monkeypatch.setattr(upload.lvm, "node", lambda vg, lv: f"/dev/mapper/{vg}-{lv}")
    info = lvm_schema()["disks"][0]
    info["partitions"] = [{"number": 2, "filesystem": None, "lvm_vg": "castor"}]
    for volume in info["volume_groups"][0]["logical_volumes"]:
        volume["filesystem"] = {"type": "ext4", "volume_bytes": volume["size_bytes"]}
        volume["fixed"] = volume["name"] == fixed
    with ExitStack() as stack:
        upload._shrink_all(stack, None, info, options, True)
    return calls, info


def test_upload_shrinks_each_lv_then_reduces_it_and_grows_back_in_reverse(monkeypatch) -> None:
    calls, info = shrink_calls(monkeypatch, {})
    assert calls == [("shrink", "/dev/mapper/castor-root"),
                     ("lvreduce", "castor/root", 75),  # 300 MiB in 4 MiB extents
                     ("shrink", "/dev/mapper/castor-data"),
                     ("grow", "/dev/mapper/castor-data"),
                     ("lvextend", "castor/root", 128),  # the LV first, then its filesystem
                     ("grow", "/dev/mapper/castor-root")]
    root = info["volume_groups"][0]["logical_volumes"][0]
    assert root["filesystem"]["shrunk"] and root["filesystem"]["min_bytes"] == 300 << 20
    assert root["captured_extents"] == 75


def test_dont_shrink_lvm_and_dont_shrink_volumes_leave_the_lvs_whole(monkeypatch) -> None:
    assert shrink_calls(monkeypatch, {"dont_shrink_lvm": True})[0] == []
    assert shrink_calls(monkeypatch, {"dont_shrink_volumes": True})[0] == []



def test_a_fixed_lv_of_the_custom_upload_schema_is_never_shrunk(monkeypatch) -> None:
    calls, _info = shrink_calls(monkeypatch, {}, fixed="root")
    assert calls == [("shrink", "/dev/mapper/castor-data"), ("grow", "/dev/mapper/castor-data")]
