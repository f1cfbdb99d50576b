"""A refused deploy writes nothing: every bad input of issue 11 leaves the target identical."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from client.preflight import DeployRefused, gpt_usable, missing_tools
from client.run import ClientError
from tests.client.disks import make_disk, read_sums
from tests.client_steps.imaging import (
    capture_local,
    deploy_local,
    plan_for,
    sha256_file,
)
from tests.conftest import needs_root

pytestmark = [needs_root]
MIB = 1 << 20
LAYOUT = [(40, "ext4"), (None, "ntfs")]


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    """An 80 MiB GPT disk (ext4 + NTFS) captured into a local image folder."""
    tmp = tmp_path_factory.mktemp("preflight")
    source = tmp / "src-deploy-safety.img"
    sums = make_disk(source, 80, "gpt", LAYOUT, seed=21, big_bytes=4 * MIB)
    folder = tmp / "image"
    schema, manifest = capture_local(source, folder)
    return {"source": source, "sums": sums, "folder": folder, "schema": schema,
            "manifest": manifest}


@pytest.fixture
def image(captured, tmp_path):
    """A private copy of the captured image folder, free to damage."""
    folder = tmp_path / "image"
    shutil.copytree(captured["folder"], folder)
    return {**captured, "folder": folder, "schema": json.loads(json.dumps(captured["schema"])),
            "manifest": json.loads(json.dumps(captured["manifest"]))}


def used_disk(path: Path, size_mib: int) -> Path:
    """A destination that already holds a GPT and a filesystem (a machine's old disk)."""
    make_disk(path, size_mib, "gpt", [(None, "ext4")], seed=5)
    return path


def stored(image: dict, number: int) -> Path:
    """The stored file of one partition."""
    entry = next(f for f in image["manifest"]["files"] if f.get("partition") == number)
    return image["folder"] / entry["path"]


def assert_refused_untouched(target: Path, run, match: str) -> None:
    """Run a deploy, expect a refusal naming match, and the target byte-identical."""
    before = sha256_file(target)
    with pytest.raises(ClientError, match=match) as info:
        run()
    assert isinstance(info.value, DeployRefused), f"refused too late: {info.value}"
    assert sha256_file(target) == before, "the refused deploy wrote to the target disk"


def test_good_image_deploys(image, tmp_path):
    target = used_disk(tmp_path / "t-deploy-safety.img", 100)
    plans = plan_for(image["schema"], str(target))
    deploy_local(str(target), image["schema"], image["manifest"], image["folder"], plans)
    assert read_sums(target, 1, "ext4") == image["sums"][1]
    assert read_sums(target, 2, "ntfs") == image["sums"][2]


def test_corrupted_partition_image_refused_before_writing(image, tmp_path):
    target = used_disk(tmp_path / "t-deploy-safety.img", 100)
    damaged = stored(image, 2)
    # One flipped bit in the partclone header (the filesystem's block count) of the stream.
    raw = bytearray(subprocess.run(["zstd", "-dc", str(damaged)], capture_output=True,
                                   check=True).stdout)
    raw[0x3C] ^= 0x01
    damaged.write_bytes(subprocess.run(["zstd", "-q", "-c"], input=bytes(raw),
                                       capture_output=True, check=True).stdout)
    plans = plan_for(image["schema"], str(target))
    assert_refused_untouched(target, lambda: deploy_local(
        str(target), image["schema"], image["manifest"], image["folder"], plans), "damaged")


def test_truncated_partition_image_refused_before_writing(image, tmp_path):
    target = used_disk(tmp_path / "t-deploy-safety.img", 100)
    cut = stored(image, 2)
    os.truncate(cut, cut.stat().st_size // 2)
    plans = plan_for(image["schema"], str(target))
    assert_refused_untouched(target, lambda: deploy_local(
        str(target), image["schema"], image["manifest"], image["folder"], plans), "truncated")


def test_disk_smaller_than_minimum_refused_before_writing(image, tmp_path):
    target = used_disk(tmp_path / "t-deploy-safety.img", 60)
    # Planned for the disk the server was told of; the disk found is smaller than the minimum.
    plans = plan_for(image["schema"], str(target), facts={"size_bytes": 200 * MIB})
    assert plans[0]["minimum_bytes"] > 60 * MIB
    assert_refused_untouched(target, lambda: deploy_local(
        str(target), image["schema"], image["manifest"], image["folder"], plans), "too small")


def test_4kn_disk_for_512_byte_image_refused_before_writing(image, tmp_path):
    backing = used_disk(tmp_path / "t4k-deploy-safety.img", 100)
    dev = subprocess.run(["losetup", "-f", "--show", "--sector-size", "4096", str(backing)],
                         capture_output=True, text=True, check=True).stdout.strip()
    try:
        plans = plan_for(image["schema"], dev, facts={"logical_sector_size": 512,
                                                     "physical_sector_size": 512})
        assert_refused_untouched(backing, lambda: deploy_local(
            dev, image["schema"], image["manifest"], image["folder"], plans), "4096-byte")
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)


def test_partition_past_gpt_last_usable_sector_refused_before_writing(image, tmp_path):
    target = used_disk(tmp_path / "t-deploy-safety.img", 80)
    disk = image["schema"]["disks"][0]
    total = disk["size_bytes"] // 512
    _first, last = gpt_usable(total, 512)
    last_part = disk["partitions"][-1]
    # The source's table ends its last partition in the backup GPT area of a standard disk.
    new_size = total - 2 - last_part["start_sector"]
    assert last_part["start_sector"] + new_size - 1 > last
    last_part["size_sectors"] = new_size
    table = stored_table(image)
    table.write_text(re.sub(r"(img2 : start=\s*\d+, size=\s*)\d+", rf"\g<1>{new_size}",
                            table.read_text()))
    refresh_entry(image, "table")
    plans = plan_for(image["schema"], str(target))
    assert plans[0]["method"] == "original"
    assert_refused_untouched(target, lambda: deploy_local(
        str(target), image["schema"], image["manifest"], image["folder"], plans),
        "last usable sector")


def test_missing_tool_refused_before_writing(image, tmp_path, monkeypatch):
    target = used_disk(tmp_path / "t-deploy-safety.img", 100)
    plans = plan_for(image["schema"], str(target))
    tools = tmp_path / "bin"
    tools.mkdir()
    for folder in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin",
                   "/bin"):
        for path in Path(folder).glob("*"):
            if path.name != "partclone.ntfs" and not (tools / path.name).exists():
                (tools / path.name).symlink_to(path)
    monkeypatch.setenv("PATH", str(tools))
    assert missing_tools(["partclone.ntfs", "sfdisk"]) == ["partclone.ntfs"]
    assert_refused_untouched(target, lambda: deploy_local(
        str(target), image["schema"], image["manifest"], image["folder"], plans),
        "partclone.ntfs")


def stored_table(image: dict) -> Path:
    """The saved sfdisk dump of disk 0."""
    return image["folder"] / "hd0/table.sfdisk"


def refresh_entry(image: dict, kind: str) -> None:
    """Give a rewritten stored file its new size and checksum in the manifest."""
    import hashlib

    entry = next(f for f in image["manifest"]["files"] if f["kind"] == kind)
    data = (image["folder"] / entry["path"]).read_bytes()
    entry["size_bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
