"""A file (WIM) partition restore that must start over: a fresh filesystem, then the apply.

A multicast source whose bytes fail the file's SHA-256 has the partition restored again over
HTTP (`client.deploy.restore_file`). A WIM apply writes files into a filesystem, so the
second attempt must not build on what the first one left: `restore_partition` makes the
filesystem again before every apply.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest

from client.capture import file_spec
from client.deploy import restore_file
from client.pipeline import run_pipeline
from client.progress import Progress
from client.sources import FunctionSource
from tests.client.disks import loop, mounted, tree_sums
from tests.conftest import needs_root

pytestmark = [needs_root]
MIB = 1 << 20


def make_volume(path: Path, fs_type: str) -> None:
    """Create a 48 MiB filesystem in a file."""
    with open(path, "wb") as handle:
        handle.truncate(48 * MIB)
    argv = ["mkfs.ntfs", "-F", "-f", "-Q", "-L", "data"] if fs_type == "ntfs" else [
        "mkfs.ext4", "-F", "-q", "-L", "data"]
    subprocess.run([*argv, str(path)], check=True, capture_output=True)


def capture_wim(dev: str, fs_type: str, out: Path) -> None:
    """Capture a volume the way `castor-client upload` does (its own WIM capture spec).

    Uncompressed: gzip would hold back its last output until end of input, and the first
    attempt must apply every file before it fails.
    """
    spec = file_spec(0, 1, fs_type, dev, "none", None, 48 * MIB)
    stages = [list(stage) for stage in spec.stages]
    with open(out, "wb") as sink:
        if spec.mount_fs is None:
            run_pipeline(stages, sink=sink)
            return
        with mounted(dev, spec.mount_fs, readonly=True) as root:
            stages[0][2] = str(root)
            run_pipeline(stages, sink=sink)


class DamagedThenHttp(FunctionSource):
    """A multicast-like source: its stream is another WIM, HTTP holds the right one."""

    retries_over_http = True

    def __init__(self, stream: bytes, good: bytes) -> None:
        super().__init__(lambda entry: [good[i:i + MIB] for i in range(0, len(good), MIB)])
        self.stream = stream
        self.again: list[bool] = []

    def partition(self, entry: dict):
        """Yield the damaged stream (a complete WIM of other files), then give the apply
        time to write it all before the SHA-256 check at the end fails it, as when a long
        stream is found damaged at its end."""
        yield from (self.stream[i:i + MIB] for i in range(0, len(self.stream), MIB))
        time.sleep(1.5)

    def restored(self, entry: dict, again_over_http: bool = False) -> None:
        """Remember whether the partition was restored a second time over HTTP."""
        self.again.append(again_over_http)


@pytest.mark.parametrize("fs_type", ["ext4", "ntfs"])
def test_wim_restored_again_over_http_starts_from_a_fresh_filesystem(tmp_path, fs_type):
    volume = tmp_path / "source.img"
    make_volume(volume, fs_type)
    with loop(volume) as dev:
        with mounted(dev, fs_type) as root:
            for index in range(5):
                (root / f"file{index}.txt").write_bytes(f"kept {index}\n".encode() * 900)
        with mounted(dev, fs_type, readonly=True) as root:
            expected = tree_sums(root)
        capture_wim(dev, fs_type, tmp_path / "good.wim")
        with mounted(dev, fs_type) as root:
            (root / "stale.txt").write_bytes(b"only in the damaged stream\n")
        capture_wim(dev, fs_type, tmp_path / "other.wim")
    good = (tmp_path / "good.wim").read_bytes()
    source = DamagedThenHttp((tmp_path / "other.wim").read_bytes(), good)
    entry = {"path": f"hd0/part1.{fs_type}.wim", "kind": "wim", "disk": 0, "partition": 1,
             "filesystem": fs_type, "compression": "none", "size_bytes": len(good),
             "sha256": hashlib.sha256(good).hexdigest()}
    target = tmp_path / "target.img"
    with open(target, "wb") as handle:
        handle.truncate(64 * MIB)
    with loop(target) as dev:
        restore_file(source, entry, dev, {"label": "data"}, "hd0 part1",
                     Progress(lambda body: {}), None, disk=0, partition=1)
        with mounted(dev, fs_type, readonly=True) as root:
            found = tree_sums(root)
    assert source.again == [True]
    assert "stale.txt" not in found
    assert found == expected
