"""Minimum sizes: the rules of REFERENCE.md §4, one by one."""

from __future__ import annotations

import pytest

from app.imaging.minsize import (
    SLACK_BASE_BYTES,
    content_need,
    disk_minimum,
    disk_minimums,
    partition_minimum,
    size_need,
    slack_bytes,
)
from app.imaging.units import GIB, MIB
from tests.imaging.helpers import load_schema

BIG = 100 * GIB


def fs(kind: str, used: int, minimum: int | None = None, volume: int = BIG, **extra) -> dict:
    data = {"type": kind, "volume_bytes": volume, "used_bytes": used,
            "min_bytes": minimum if minimum is not None else volume, "shrunk": False,
            "image_bytes": None}
    data.update(extra)
    return data


def test_slack_is_a_tenth_of_use_plus_512_mib() -> None:
    assert slack_bytes(0) == SLACK_BASE_BYTES == 512 * MIB
    assert slack_bytes(20 * GIB) == 2 * GIB + 512 * MIB


def test_forced_fixed_beats_everything() -> None:
    need = size_need(fs("ext4", GIB, GIB), BIG, {"fixed": True,
                                                  "custom_size": {"value": 5, "unit": "GB"}})
    assert (need.kind, need.min_bytes) == ("fixed", BIG)


@pytest.mark.parametrize(("custom", "expected"), [
    ({"value": 20, "unit": "GB"}, 20 * 10**9), ({"value": 1500, "unit": "MB"}, 1500 * 10**6),
    ({"value": 2.5, "unit": "GB"}, 2_500_000_000), ({"value": 25, "unit": "%"}, 250 * 10**9),
])
def test_custom_sizes(custom, expected) -> None:
    need = size_need(fs("ext4", GIB, GIB), BIG, {"custom_size": custom},
                     destination_bytes=1000 * 10**9)
    assert (need.kind, need.min_bytes) == ("custom", expected)


def test_percent_without_destination_is_unknown() -> None:
    need = size_need(fs("ext4", GIB, GIB), BIG, {"custom_size": {"value": 10, "unit": "%"}})
    assert need.min_bytes is None and need.percent == 10


@pytest.mark.parametrize("kind", ["vfat", "btrfs", "swap", "exfat"])
def test_filesystems_we_cannot_shrink_keep_their_size(kind) -> None:
    need = size_need(fs(kind, GIB, GIB), BIG, None)
    assert (need.kind, need.min_bytes) == ("fixed", BIG)


def test_no_filesystem_and_small_partitions_are_fixed() -> None:
    assert size_need(None, BIG, None).kind == "fixed"
    small = 5 * GIB
    need = size_need(fs("ext4", MIB, MIB, volume=small), small, None)
    assert (need.kind, need.min_bytes) == ("fixed", small)
    assert size_need(fs("ext4", MIB, MIB, volume=small + 1), small + 1, None).kind == "dynamic"


def test_shrunk_ntfs_needs_use_plus_slack_or_its_image() -> None:
    shrunk = fs("ntfs", 20 * GIB, 19 * GIB, shrunk=True, image_bytes=21 * GIB)
    assert content_need(shrunk, BIG) == 20 * GIB + slack_bytes(20 * GIB)
    bigger_image = dict(shrunk, image_bytes=30 * GIB)
    assert content_need(bigger_image, BIG) == 30 * GIB
    need = size_need(shrunk, BIG, None)
    assert (need.kind, need.min_bytes, need.original_bytes) == (
        "dynamic", 20 * GIB + slack_bytes(20 * GIB), BIG)


def test_unshrunk_block_image_needs_its_whole_filesystem() -> None:
    # partclone restores only onto a partition at least the filesystem's size
    assert content_need(fs("ext4", GIB, GIB, volume=50 * GIB), BIG) == 50 * GIB
    # a file image is extracted onto a fresh filesystem: only the use counts
    assert content_need(fs("ext4", GIB, GIB, volume=50 * GIB), BIG, "file") == (
        GIB + slack_bytes(GIB))


@pytest.mark.parametrize("kind", ["ext4", "ntfs"])
def test_file_image_needs_its_files_not_the_source_shrink_minimum(kind: str) -> None:
    # An unshrunk source (a file image is never shrunk) reports its whole volume as the
    # minimum; a fresh filesystem that receives the files needs only their space.
    unshrunk = fs(kind, GIB, volume=7 * GIB)
    assert content_need(unshrunk, 7 * GIB, "file") == GIB + slack_bytes(GIB)
    assert content_need(unshrunk, 7 * GIB, "block") == 7 * GIB


def test_a_file_image_plans_onto_a_disk_smaller_than_its_source() -> None:
    # The boot matrix's bios-grub layout: 7 GiB ext4 root holding 1 GiB, 1 GiB swap, 8 GiB.
    schema = load_schema("schema_gpt_linux.json")
    schema["image_type"] = "file"
    disk = schema["disks"][0]
    root, swap = disk["partitions"][1:]
    root.update(start_sector=2048, size_sectors=7 * GIB // 512)
    root["filesystem"].update(volume_bytes=7 * GIB, used_bytes=GIB, min_bytes=7 * GIB,
                              shrunk=False, image_bytes=None)
    swap.update(start_sector=2048 + 7 * GIB // 512, size_sectors=GIB // 512 - 4096)
    swap_bytes = swap["size_sectors"] * 512
    swap["filesystem"].update(volume_bytes=swap_bytes, used_bytes=swap_bytes,
                              min_bytes=swap_bytes)
    disk.update(partitions=[root, swap], size_bytes=8 * GIB,
                last_usable_sector=8 * GIB // 512 - 34)
    minimum = disk_minimum(disk, image_type="file")
    assert minimum < 5 * GIB
    assert disk_minimum(disk, image_type="block") > 8 * GIB - 2 * MIB


def test_xfs_never_shrinks_but_grows() -> None:
    need = size_need(fs("xfs", GIB, GIB, volume=40 * GIB), 40 * GIB, None, image_type="file")
    assert (need.kind, need.min_bytes) == ("dynamic", 40 * GIB)


def test_need_is_capped_at_the_original_size() -> None:
    nearly_full = fs("ext4", 9 * GIB, 9 * GIB, volume=9 * GIB + MIB, shrunk=True,
                     image_bytes=9 * GIB)
    assert content_need(nearly_full, 9 * GIB + MIB) == 9 * GIB + MIB


def test_extended_holds_its_logicals_and_ebr_gaps() -> None:
    disk = load_schema("schema_mbr_extended.json")["disks"][0]
    ext = next(p for p in disk["partitions"] if p["role"] == "extended")
    logicals = [p for p in disk["partitions"] if p["role"] == "logical"]
    expected = sum(MIB + -(-partition_minimum(p, disk, None) // MIB) * MIB for p in logicals)
    assert partition_minimum(ext, disk, None) == expected
    selection = {"index": 0, "partitions": [{"number": 6, "deploy": False}]}
    without = partition_minimum(ext, disk, None, selection_disk=selection)
    assert without == expected - MIB - partition_minimum(logicals[1], disk, None)


def test_volume_group_is_its_lvs_plus_metadata() -> None:
    schema = load_schema("schema_lvm.json")
    disk = schema["disks"][0]
    group = disk["volume_groups"][0]
    pv = disk["partitions"][1]
    root, swap, home = group["logical_volumes"]
    root_min = root["filesystem"]["used_bytes"] + slack_bytes(root["filesystem"]["used_bytes"])
    root_min = -(-root_min // group["extent_bytes"]) * group["extent_bytes"]
    metadata = pv["size_sectors"] * 512 - group["size_bytes"]
    assert partition_minimum(pv, disk, None) == (
        metadata + root_min + swap["size_bytes"] + home["size_bytes"])


def test_disk_minimums_per_disk_and_unknown_with_percent() -> None:
    schema = load_schema("schema_gpt_linux.json")
    disk = schema["disks"][0]
    esp, root, swap = disk["partitions"]
    used = root["filesystem"]["used_bytes"]
    root_min = max(used + slack_bytes(used), root["filesystem"]["image_bytes"])
    expected = (2048 + esp["size_sectors"] + -(-root_min // MIB) * 2048 + swap["size_sectors"]
                + 33) * 512
    assert disk_minimums(schema, None) == [expected]
    selection = {"disks": [{"index": 0, "partitions": [
        {"number": 2, "custom_size": {"value": 50, "unit": "%"}}]}]}
    assert disk_minimums(schema, selection) == [None]
    assert disk_minimum(disk, selection["disks"][0], destination_bytes=100 * GIB) is not None
    skipped = {"disks": [{"index": 0, "partitions": [{"number": 3, "deploy": False}]}]}
    assert disk_minimums(schema, skipped) == [expected - swap["size_sectors"] * 512]


def test_shrunk_without_image_bytes_holds_its_minimum() -> None:
    from app.imaging.dynamic import needs_grow

    shrunk = fs("ext4", 2 * GIB, 30 * GIB, shrunk=True)
    assert content_need(shrunk, BIG) == 30 * GIB + slack_bytes(2 * GIB)
    assert needs_grow(shrunk, 31 * GIB, "block", False)
    assert not needs_grow(shrunk, 31 * GIB, "block", True)
    assert not needs_grow(fs("ext4", GIB, GIB), BIG, "block", False)  # already full size
