"""Selections (custom upload schema, modified deploy schema) on a schema (pure)."""

from __future__ import annotations

import json

import pytest
from werkzeug.datastructures import MultiDict

from app.profiles import selections


def test_merge_adds_defaults_and_keeps_the_schema(schema: dict) -> None:
    original = json.dumps(schema, sort_keys=True)
    merged = selections.merge(schema, None, "deploy")
    assert json.dumps(schema, sort_keys=True) == original  # the input is never modified
    disk = merged["disks"][0]
    assert disk["deploy"] is True and disk["destination"] is None
    assert disk["partitions"][1]["custom_size"] is None
    assert disk["volume_groups"][0]["logical_volumes"][0]["fixed"] is False
    assert disk["partitions"][1]["filesystem"]["type"] == "ext4"


def test_merge_takes_only_selection_keys_from_stored(schema: dict) -> None:
    stored = selections.merge(schema, None, "deploy")
    stored["disks"][0]["partitions"][1]["custom_size"] = {"value": 30, "unit": "GB"}
    stored["disks"][0]["partitions"][1]["size_sectors"] = 1  # tampering is ignored
    stored["disks"][1]["deploy"] = False
    merged = selections.merge(schema, stored, "deploy")
    assert merged["disks"][0]["partitions"][1]["custom_size"] == {"value": 30, "unit": "GB"}
    assert merged["disks"][0]["partitions"][1]["size_sectors"] == 41943040
    assert merged["disks"][1]["deploy"] is False


def test_from_form_reads_checkboxes_sizes_and_destination(schema: dict) -> None:
    form = MultiDict({"d0.deploy": "on", "d0.destination": "/dev/nvme0n1",
                      "d0.p1.deploy": "on", "d0.p2.deploy": "on", "d0.p2.size": "40",
                      "d0.p2.unit": "GB", "d0.p3.deploy": "on", "d0.v0.l0.deploy": "on",
                      "d0.v0.l1.fixed": "on", "d0.p1.fixed": "on"})
    result = selections.from_form(schema, form, "deploy")
    sda, sdb = result["disks"]
    assert sda["destination"] == "/dev/nvme0n1" and sdb["deploy"] is False
    assert sda["partitions"][1]["custom_size"] == {"value": 40, "unit": "GB"}
    assert sda["partitions"][0]["fixed"] is True
    lvs = sda["volume_groups"][0]["logical_volumes"]
    assert lvs[0]["deploy"] is True and lvs[1]["deploy"] is False and lvs[1]["fixed"] is True
    assert selections.validate(result, "deploy") == []


def _deploy(schema: dict, **sizes) -> dict:
    selection = selections.merge(schema, None, "deploy")
    for number, size in sizes.items():
        selection["disks"][0]["partitions"][int(number[1:]) - 1]["custom_size"] = size
    return selection


def test_percent_sizes_over_100_in_total_are_refused(schema: dict) -> None:
    selection = _deploy(schema, p2={"value": 60, "unit": "%"}, p3={"value": 50, "unit": "%"})
    errors = selections.validate(selection, "deploy")
    assert any("110% of the disk" in e for e in errors)
    one = _deploy(schema, p2={"value": 101, "unit": "%"})
    assert any("over 100%" in e for e in selections.validate(one, "deploy"))
    fine = _deploy(schema, p2={"value": 60, "unit": "%"}, p3={"value": 40, "unit": "%"})
    assert selections.validate(fine, "deploy") == []


@pytest.mark.parametrize("size, message", [
    ({"value": 0, "unit": "GB"}, "above 0"),
    ({"value": "ten", "unit": "GB"}, "above 0"),
    ({"value": 10, "unit": "TB"}, "MB, GB or %"),
    (10, "object"),
])
def test_bad_custom_sizes_are_refused(schema: dict, size, message: str) -> None:
    errors = selections.validate(_deploy(schema, p2=size), "deploy")
    assert any(message in e for e in errors), errors


@pytest.mark.parametrize("destination", ["sdb", "/dev/sdb; reboot", "/dev/../etc/passwd",
                                         "/tmp/disk", "", 5])
def test_destination_must_be_a_device_path(schema: dict, destination) -> None:
    selection = selections.merge(schema, None, "deploy")
    selection["disks"][1]["destination"] = destination
    errors = selections.validate(selection, "deploy")
    assert any("not a device path" in e for e in errors)


def test_custom_sizes_need_the_dynamic_method(schema: dict) -> None:
    selection = _deploy(schema, p2={"value": 30, "unit": "GB"})
    assert selections.validate(selection, "deploy", "dynamic") == []
    errors = selections.validate(selection, "deploy", "original")
    assert any("only used by the Dynamic" in e for e in errors)


def test_standard_method_needs_exactly_one_partition_per_disk(schema: dict) -> None:
    selection = selections.merge(schema, None, "deploy")
    errors = selections.validate(selection, "deploy", "standard")
    assert any("sda" in e and "3 selected" in e for e in errors)
    for part in selection["disks"][0]["partitions"]:
        part["deploy"] = part["number"] == 2
    assert selections.validate(selection, "deploy", "standard") == []


def test_nothing_selected_is_refused(schema: dict) -> None:
    selection = selections.from_form(schema, MultiDict(), "upload")
    assert selections.validate(selection, "upload") == ["select at least one disk to upload"]


def test_clean_needs_a_schema_and_valid_json(schema: dict) -> None:
    with pytest.raises(selections.SelectionError, match="after the first upload"):
        selections.clean(None, {"disks": []}, "deploy")
    with pytest.raises(selections.SelectionError, match="not valid JSON"):
        selections.clean(schema, "{nope", "deploy")
    assert selections.clean(schema, None, "deploy") is None
    stored = json.loads(selections.clean(schema, {"disks": [{"index": 1, "upload": False}]},
                                         "upload"))
    assert stored["disks"][1]["upload"] is False and stored["disks"][0]["upload"] is True
