"""A real disk, end to end: mkfs, shrink, probe, schema JSON, plan onto a smaller disk,
sfdisk, partclone into the planned partitions, grow, and the data reads back intact."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from app.imaging.planner import plan_deploy
from app.imaging.schema import parse_schema
from app.imaging.units import GIB, MIB
from client.devices import open_disk
from client.probe import build_schema, probe_disk
from tests.conftest import needs_root

ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def sh(*argv: str, stdin: str | None = None) -> str:
    """Run a tool and return its output; fail the test with its stderr."""
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"
    return done.stdout


def mounted_sha256(dev: str, mountpoint: Path) -> str:
    """Mount an ext4 device read-only and return the SHA-256 of its data file."""
    sh("mount", "-o", "ro", dev, str(mountpoint))
    try:
        return hashlib.sha256((mountpoint / "data.bin").read_bytes()).hexdigest()
    finally:
        sh("umount", str(mountpoint))


def block_count_bytes(dev: str) -> int:
    """Return an ext4 filesystem's size from `dumpe2fs -h`."""
    fields = dict(line.split(":", 1) for line in sh("dumpe2fs", "-h", dev).splitlines()
                  if ":" in line)
    return int(fields["Block count"]) * int(fields["Block size"])


@needs_root
def test_real_disk_deploys_onto_a_smaller_disk(tmp_path) -> None:
    source_file, target_file = tmp_path / "source.img", tmp_path / "target.img"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    sh("truncate", "-s", str(8 * GIB), str(source_file))
    sh("sfdisk", "-q", str(source_file),
       stdin=f"label: gpt\nstart=2048, size=64MiB, type={ESP}\ntype={LINUX}, name=\"root\"\n")
    with open_disk(str(source_file)) as disk:
        table = json.loads(sh("sfdisk", "--json", disk.path))["partitiontable"]["partitions"]
        esp = disk.partition_device(1, table[0]["start"], table[0]["size"])
        root = disk.partition_device(2, table[1]["start"], table[1]["size"])
        sh("mkfs.vfat", "-n", "ESP", esp)
        sh("mkfs.ext4", "-q", "-F", "-L", "root", root)
        sh("mount", root, str(mnt))
        try:
            (mnt / "data.bin").write_bytes(os.urandom(24 * MIB))
        finally:
            sh("umount", str(mnt))
        digest = mounted_sha256(root, mnt)
        # Shrink as the client does before capture: minimum plus slack.
        sh("e2fsck", "-f", "-y", root)
        minimum_blocks = int(sh("resize2fs", "-P", root).rsplit(":", 1)[1])
        shrunk_bytes = minimum_blocks * 4096 + 256 * MIB
        sh("resize2fs", root, f"{shrunk_bytes // 1024}K")
        schema = build_schema([probe_disk(disk, 0)])
        fs = schema["disks"][0]["partitions"][1]["filesystem"]
        assert fs["type"] == "ext4" and fs["volume_bytes"] == shrunk_bytes
        # What the client records for a shrunk filesystem (docs/schema.md).
        fs.update(shrunk=True, image_bytes=shrunk_bytes, min_bytes=minimum_blocks * 4096,
                  volume_bytes=table[1]["size"] * 512)
        schema = parse_schema(json.dumps(schema))
        [plan] = plan_deploy(schema, None, [{"size_bytes": 3 * GIB}],
                             {"partition_method": "dynamic"})
        sh("truncate", "-s", str(3 * GIB), str(target_file))
        sh("sfdisk", "--no-reread", "-q", str(target_file), stdin=plan["sfdisk_script"])
        with open_disk(str(target_file)) as target:
            devices = {}
            for part in plan["partitions"]:
                source = table[part["source_partition"] - 1]
                src = disk.partition_device(part["source_partition"], source["start"],
                                            source["size"])
                dst = target.partition_device(part["number"], part["start_sector"],
                                              part["size_sectors"])
                tool = "partclone.vfat" if part["filesystem"] == "vfat" else "partclone.ext4"
                sh(tool, "-q", "-b", "-s", src, "-o", dst)
                devices[part["number"]] = dst
            root_plan = plan["partitions"][1]
            assert root_plan["grow"] and not plan["partitions"][0]["grow"]
            sh("e2fsck", "-f", "-y", devices[2])
            sh("resize2fs", devices[2])
            assert block_count_bytes(devices[2]) == root_plan["size_sectors"] * 512 // 4096 * 4096
            assert mounted_sha256(devices[2], mnt) == digest
            assert sh("blkid", "-o", "value", "-s", "LABEL", devices[1]).strip() == "ESP"
