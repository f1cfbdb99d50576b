"""End to end: a real server on loopback, the real client, real filesystems in disk images."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from app.extensions import db
from app.models import Image, Task
from app.storage import verify_folder
from tests.client.disks import detach_all, fs_size, fsck_clean, make_disk, partitions, read_sums
from tests.client.helpers import (
    castor,
    client_argv,
    make_image,
    manifest,
    set_profile,
    set_protected,
)
from tests.conftest import needs_root

pytestmark = [needs_root]
ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20
GPT_LAYOUT = [(32, "vfat"), (200, "ext4"), (120, "ntfs"), (16, "swap")]
MBR_LAYOUT = [(150, "ext4"), (120, "ntfs"), (None, "swap")]


@pytest.fixture(scope="module")
def gpt_source(server):
    """A GPT disk with ESP, ext4, NTFS and swap, filled with known files."""
    path = server["tmp"] / "gpt-src.img"
    sums = make_disk(path, 400, "gpt", GPT_LAYOUT, seed=1, big_bytes=60 * MIB)
    return path, sums


@pytest.fixture(scope="module")
def block_image(server, gpt_source):
    """The GPT source uploaded as block image `blk` (zstd), shrinking ext4 on the way."""
    path, sums = gpt_source
    make_image(server["app"], "blk", "block")
    before = fs_size(path, 2, "ext4")
    castor(server, "upload", "--image", "blk", "--disk", str(path),
           "--shrink-threshold", str(100 * MIB), "--shrink-slack", str(4 * MIB))
    assert fs_size(path, 2, "ext4") == before, "the shrunk filesystem was not grown back"
    return sums


def test_block_upload_stores_verified_image(server, block_image, gpt_source):
    data = manifest(server, "blk")
    by_part = {f["partition"]: f for f in data["files"] if f["kind"] in ("partclone", "dd")}
    assert set(by_part) == {1, 2, 3}, "swap must be recorded, not imaged"
    assert {by_part[n]["filesystem"] for n in by_part} == {"vfat", "ext4", "ntfs"}
    assert all(f["compression"] == "zstd" and f["level"] == 3 for f in by_part.values())
    kinds = {f["kind"] for f in data["files"]}
    assert {"table", "gpt-backup", "head"} <= kinds
    folder = server["storage"] / "images" / "blk"
    assert verify_folder(folder) == []
    schema = json.loads((folder / "schema.json").read_text())
    parts = {p["number"]: p for p in schema["disks"][0]["partitions"]}
    assert parts[2]["filesystem"]["shrunk"] is True
    assert parts[2]["filesystem"]["volume_bytes"] < 200 * MIB
    assert parts[4]["filesystem"]["type"] == "swap"
    assert schema["disks"][0]["table"] == "gpt"
    assert list((server["storage"] / "staging").iterdir()) == []
    with server["app"].app_context():
        image = db.session.scalar(db.select(Image).filter_by(name="blk"))
        assert image.protected and image.size_on_server_bytes > 0


def test_upload_over_protected_image_refused(server, block_image, gpt_source):
    before = manifest(server, "blk")
    proc = castor(server, "upload", "--image", "blk", "--disk", str(gpt_source[0]), ok=False)
    assert proc.returncode == 1 and "protected" in proc.stderr
    assert manifest(server, "blk") == before


def test_killed_upload_leaves_old_image_deployable(server, block_image, gpt_source):
    before = manifest(server, "blk")
    set_protected(server, "blk", False)
    try:
        proc = subprocess.Popen(client_argv(server, "upload", "--image", "blk", "--disk",
                                            str(gpt_source[0])), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        killed = threading.Event()

        def kill_client() -> None:
            # Called by the server while it reads the ext4 partition's stream.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed.set()

        server["switch"].hook = kill_client
        proc.wait(timeout=120)
        assert killed.is_set(), "the upload finished before it could be killed"
        detach_all(str(gpt_source[0]))
        staging = server["storage"] / "staging"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(staging.iterdir()):
            time.sleep(0.1)
        assert list(staging.iterdir()) == [], "staging was not cleaned"
        assert manifest(server, "blk") == before
        assert verify_folder(server["storage"] / "images" / "blk") == []
    finally:
        server["switch"].hook = None
        set_protected(server, "blk", True)


def planned_parts(image: Path) -> dict[int, dict]:
    """Partitions of a disk image by number."""
    return {p["number"]: p for p in partitions(image)}


def assert_same_files(source: dict, target: Path, layout: list) -> None:
    """Every file of every imaged partition has the source's checksum."""
    for number, (_size, fs) in enumerate(layout, start=1):
        if fs == "swap":
            continue
        assert read_sums(target, number, fs) == source[number], f"partition {number} differs"
        fsck_clean(target, number, fs)


@pytest.mark.parametrize("size_mib", [600, 385])
def test_deploy_block_to_larger_and_smaller_disk(server, block_image, size_mib):
    target = server["tmp"] / f"target-{size_mib}.img"
    target.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", f"{size_mib}M", str(target)], check=True)
    castor(server, "deploy", "--image", "blk", "--disk", str(target))
    assert_same_files(block_image, target, GPT_LAYOUT)
    parts = planned_parts(target)
    # The shrunk filesystems were grown to fill their partitions again.
    assert fs_size(target, 2, "ext4") > 190 * MIB
    assert fs_size(target, 2, "ext4") <= parts[2]["size"] * 512
    assert fs_size(target, 3, "ntfs") > 110 * MIB
    schema = json.loads((server["storage"] / "images" / "blk" / "schema.json").read_text())
    source = {p["number"]: p for p in schema["disks"][0]["partitions"]}
    blkid = subprocess.run(["blkid", "-p", "-o", "export", "--offset",
                            str(parts[4]["start"] * 512), str(target)],
                           capture_output=True, text=True).stdout
    assert f"UUID={source[4]['filesystem']['uuid']}" in blkid, "swap UUID not kept"
    table = json.loads(subprocess.run(["sfdisk", "--json", str(target)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    assert {p["uuid"] for p in table["partitions"]} == {p["uuid"] for p in source.values()}


def test_deploy_same_size_restores_original_table(server, block_image, gpt_source):
    target = server["tmp"] / "target-same.img"
    target.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", "400M", str(target)], check=True)
    castor(server, "deploy", "--image", "blk", "--disk", str(target))
    assert_same_files(block_image, target, GPT_LAYOUT)
    src = {n: (p["start"], p["size"]) for n, p in planned_parts(gpt_source[0]).items()}
    assert {n: (p["start"], p["size"]) for n, p in planned_parts(target).items()} == src
    with server["app"].app_context():
        task = db.session.scalars(db.select(Task).filter_by(kind="deploy").order_by(
            Task.id.desc())).first()
        assert task.state == "done" and task.on_demand
        assert "hd0 part2" in task.log
        assert task.progress["step"] == "deploy" and task.progress["bytes_done"] > 0


def test_deploy_to_too_small_disk_refused_before_writing(server, block_image):
    target = server["tmp"] / "target-small.img"
    target.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", "200M", str(target)], check=True)
    with open(target, "r+b") as handle:
        handle.write(b"untouched" * 100)
    before = target.read_bytes()
    proc = castor(server, "deploy", "--image", "blk", "--disk", str(target), ok=False)
    assert proc.returncode == 1 and "too small" in proc.stderr
    assert target.read_bytes() == before


def test_corrupt_image_file_detected_by_checksum(server, block_image, tmp_path):
    folder = server["storage"] / "images" / "blk"
    entry = next(f for f in manifest(server, "blk")["files"] if f["partition"] == 1)
    stored = folder / entry["path"]
    original = stored.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    stored.write_bytes(bytes(damaged))
    try:
        target = tmp_path / "target.img"
        subprocess.run(["truncate", "-s", "600M", str(target)], check=True)
        proc = castor(server, "deploy", "--image", "blk", "--disk", str(target), ok=False)
        assert proc.returncode == 1
        assert "SHA-256 mismatch" in proc.stderr or "damaged" in proc.stderr
        assert entry["path"] in proc.stderr
        # It stopped there: partition 2 was never written.
        part2 = planned_parts(target)[2]
        with open(target, "rb") as handle:
            handle.seek(part2["start"] * 512)
            assert handle.read(1 << 20) == bytes(1 << 20)
    finally:
        stored.write_bytes(original)


MBR_BLOCK_LAYOUT = [(100, "ext4"), (80, "ntfs"), (300, "xfs"), (None, "swap")]


@pytest.mark.parametrize("compression", ["lz4", "none"])
def test_mbr_block_image_roundtrip(server, compression):
    name = f"mbr-{compression}"
    source = server["tmp"] / f"{name}.img"
    sums = make_disk(source, 520, "mbr", MBR_BLOCK_LAYOUT, seed=7, big_bytes=8 * MIB)
    make_image(server["app"], name, "block")
    set_profile(server, name, compression_algorithm=compression, compression_level=1)
    castor(server, "upload", "--image", name, "--disk", str(source))
    files = manifest(server, name)["files"]
    assert {f["compression"] for f in files if f["kind"] == "partclone"} == {compression}
    target = server["tmp"] / f"{name}-target.img"
    target.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", "780M", str(target)], check=True)
    castor(server, "deploy", "--image", name, "--disk", str(target))
    for number, fs in ((1, "ext4"), (2, "ntfs"), (3, "xfs")):
        assert read_sums(target, number, fs) == sums[number], f"partition {number} differs"
        fsck_clean(target, number, fs)
    table = json.loads(subprocess.run(["sfdisk", "--json", str(target)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]
    src_table = json.loads(subprocess.run(["sfdisk", "--json", str(source)],
                                          capture_output=True, text=True,
                                          check=True).stdout)["partitiontable"]
    assert table["label"] == "dos" and table["id"] == src_table["id"]


def test_file_image_wim_gzip_roundtrip(server):
    source = server["tmp"] / "file-src.img"
    sums = make_disk(source, 300, "mbr", MBR_LAYOUT, seed=3, big_bytes=12 * MIB)
    make_image(server["app"], "wim", "file")
    castor(server, "upload", "--image", "wim", "--disk", str(source))
    files = {f["partition"]: f for f in manifest(server, "wim")["files"] if f["kind"] == "wim"}
    assert set(files) == {1, 2}
    assert {f["compression"] for f in files.values()} == {"gzip"}
    target = server["tmp"] / "file-target.img"
    target.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", "450M", str(target)], check=True)
    castor(server, "deploy", "--image", "wim", "--disk", str(target))
    assert read_sums(target, 1, "ext4") == sums[1]
    assert read_sums(target, 2, "ntfs") == sums[2]
    fsck_clean(target, 1, "ext4")
    fsck_clean(target, 2, "ntfs")


def test_schema_only_upload_sends_no_files(server, gpt_source):
    make_image(server["app"], "only-schema", "block")
    set_profile(server, "only-schema", upload_schema_only=True)
    castor(server, "upload", "--image", "only-schema", "--disk", str(gpt_source[0]))
    assert not (server["storage"] / "images" / "only-schema").exists()
    with server["app"].app_context():
        image = db.session.scalar(db.select(Image).filter_by(name="only-schema"))
        disk = image.schema["disks"][0]
        assert [p["number"] for p in disk["partitions"]] == [1, 2, 3, 4]
        assert not image.protected
        task = db.session.scalars(db.select(Task).filter_by(image_id=image.id)).one()
        assert task.state == "done"


def test_on_demand_upload_of_a_new_name_creates_the_image(server):
    source = server["tmp"] / "new-name.img"
    make_disk(source, 160, "mbr", [(100, "ext4")], seed=11)
    castor(server, "upload", "--image", "brand-new", "--disk", str(source))
    with server["app"].app_context():
        image = db.session.scalar(db.select(Image).filter_by(name="brand-new"))
        assert (image.environment, image.image_type) == ("linux", "block")
        assert [p.name for p in image.profiles] == ["default"]
        assert image.last_upload_at is not None and image.size_on_server_bytes > 0
    assert manifest(server, "brand-new")["files"]
    listed = castor(server, "images").stdout
    assert "brand-new\tblock" in listed
