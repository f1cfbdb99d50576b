"""Parsers of real tool output captured on this machine (tests/fixtures/tools/client_*)."""

from __future__ import annotations

from pathlib import Path

from client.probe import (
    build_schema,
    filesystem_entry,
    parse_blkid_export,
    parse_dumpe2fs,
    parse_lsblk_json,
    parse_ntfsresize_info,
    parse_partclone_progress,
    parse_sfdisk_json,
    parse_xfs_info,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tools"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_sfdisk_gpt() -> None:
    table = parse_sfdisk_json(fixture("client_sfdisk_gpt.json"))
    assert table["table"] == "gpt"
    assert table["disk_id"] == "435E976C-1918-1D45-A27B-44A6AB7A406A"
    assert (table["first_lba"], table["last_lba"]) == (2048, 1228766)
    numbers = [p["number"] for p in table["partitions"]]
    assert numbers == [1, 2, 3, 4, 5]
    esp = table["partitions"][0]
    assert esp["type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    assert esp["start_sector"] == 2048 and esp["size_sectors"] == 131072
    assert esp["uuid"] == "79A824DC-54CE-5849-B87C-A254DC04ED91"
    assert all(p["role"] == "primary" for p in table["partitions"])


def test_sfdisk_mbr_roles_and_types() -> None:
    table = parse_sfdisk_json(fixture("client_sfdisk_mbr.json"))
    assert table["table"] == "mbr"
    assert table["disk_id"] == "0xb93bbbfa"
    assert table["boot_partition"] == 1
    roles = {p["number"]: (p["role"], p["type"]) for p in table["partitions"]}
    assert roles == {1: ("primary", "83"), 2: ("primary", "07"), 3: ("extended", "05"),
                     5: ("logical", "82"), 6: ("logical", "83")}


def test_blkid_export_blocks() -> None:
    blocks = fixture("client_blkid_export.txt").split("== ")[1:]
    parsed = [parse_blkid_export(b.split("\n", 1)[1]) for b in blocks]
    assert [p.get("TYPE") for p in parsed] == ["vfat", "ext4", "ntfs", "swap", None]
    assert parsed[1]["UUID"] == "aad9a166-4fad-4bc4-890b-e8d12c35629e"
    assert parsed[2]["LABEL"] == "win"


def test_dumpe2fs() -> None:
    info = parse_dumpe2fs(fixture("client_dumpe2fs_h.txt"))
    assert info == {"volume_bytes": 204800 * 1024, "used_bytes": (204800 - 186285) * 1024,
                    "block_size": 1024}


def test_ntfsresize_info() -> None:
    info = parse_ntfsresize_info(fixture("client_ntfsresize_i.txt"))
    assert info["volume_bytes"] == 104854016
    assert info["min_bytes"] == 2564096
    assert info["block_size"] == 4096


def test_xfs_info() -> None:
    text = ("meta-data=/dev/loop8 isize=512    agcount=4, agsize=19200 blks\n"
            "data     =                       bsize=4096   blocks=76800, imaxpct=25\n")
    assert parse_xfs_info(text) == {"volume_bytes": 4096 * 76800, "block_size": 4096}


def test_partclone_progress_lines() -> None:
    lines = fixture("client_partclone_ext4_stderr.txt").replace("\r", "\n").splitlines()
    parsed = [p for p in map(parse_partclone_progress, lines) if p]
    rates = [p for p in parsed if "rate_bytes_s" in p]
    assert rates and abs(rates[-1]["rate_bytes_s"] - 2.46e9 / 60) < 1
    assert rates[-1]["percent"] == 100.0
    blocks = [p for p in parsed if "total_blocks" in p]
    assert blocks[-1]["current_block"] == 135699 and blocks[-1]["total_blocks"] == 204800
    assert parse_partclone_progress("Reading Super Block") is None


def test_lsblk_flattens_children() -> None:
    text = ('{"blockdevices": [{"name": "sda", "size": 100, "children": '
            '[{"name": "sda1", "size": 50}]}]}')
    assert [d["name"] for d in parse_lsblk_json(text)] == ["sda", "sda1"]


def test_filesystem_entry_and_schema() -> None:
    blkid = {"TYPE": "ext4", "UUID": "u", "LABEL": "root"}
    entry = filesystem_entry(blkid, {"volume_bytes": 1000, "used_bytes": 400,
                                     "block_size": 1024}, 2048)
    assert entry["min_bytes"] == 1000 and entry["used_bytes"] == 400
    assert filesystem_entry({}, {}, 10) is None
    schema = build_schema([], "file")
    assert schema["format"] == "castor-schema" and schema["version"] == 1
    assert schema["image_type"] == "file"
