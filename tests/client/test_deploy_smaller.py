"""A filesystem shrunk at upload deploys onto a disk smaller than its source (issue 11, 1)."""

from __future__ import annotations

import json
import subprocess

from tests.client.disks import fs_size, fsck_clean, make_disk, partitions, read_sums
from tests.client.helpers import castor, make_image
from tests.conftest import needs_root

pytestmark = [needs_root]
MIB = 1 << 20
GIB = 1 << 30


def test_shrunk_ntfs_over_5_gib_deploys_to_smaller_disk(server, tmp_path):
    source = tmp_path / "ntfs-src-deploy-safety.img"
    sums = make_disk(source, 6400, "gpt", [(None, "ntfs")], seed=11, big_bytes=8 * MIB)
    source_part = partitions(source)[0]
    assert source_part["size"] * 512 > 6 * GIB
    make_image(server["app"], "ntfs-big", "block")
    castor(server, "upload", "--image", "ntfs-big", "--disk", str(source))
    schema = json.loads((server["storage"] / "images" / "ntfs-big" / "schema.json").read_text())
    fs = schema["disks"][0]["partitions"][0]["filesystem"]
    assert fs["shrunk"] is True and fs["volume_bytes"] < 2 * GIB
    assert fs_size(source, 1, "ntfs") > 6 * GIB, "the source was not grown back"

    target = tmp_path / "ntfs-target-deploy-safety.img"
    subprocess.run(["truncate", "-s", "3G", str(target)], check=True)
    castor(server, "deploy", "--image", "ntfs-big", "--disk", str(target))
    part = partitions(target)[0]
    assert part["size"] * 512 < source_part["size"] * 512
    assert read_sums(target, 1, "ntfs") == sums[1]
    fsck_clean(target, 1, "ntfs")
    # Grown back to fill the smaller partition (less its backup boot sector).
    assert part["size"] * 512 - fs_size(target, 1, "ntfs") < 4096 + 512
