"""Build a real 2-partition image folder (ext4 + NTFS) with partclone and zstd.

The folder follows docs/manifest.md and its schema comes from the client's own probe, so the
multicast tests deploy exactly what an upload would have stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

MIB = 1 << 20
CHUNK_BYTES = 16 * MIB  # as app.receive.hashing stores them in manifests
PART_MIB = 220


def sh(*argv: str, **kwargs) -> str:
    """Run a tool and return its stdout; fail loudly."""
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs).stdout


def attach(path: str, offset: int = 0, size: int | None = None) -> str:
    """Attach a loop device over a byte window of a file or device."""
    argv = ["losetup", "-f", "--show"]
    if offset:
        argv += ["-o", str(offset)]
    if size is not None:
        argv += ["--sizelimit", str(size)]
    return sh(*argv, path).strip()


def detach(dev: str) -> None:
    """Detach a loop device."""
    subprocess.run(["losetup", "-d", dev], capture_output=True)


def detach_loops_under(base: Path) -> None:
    """Detach loop devices left on files under base (and loops stacked on those)."""
    loops = json.loads(sh("losetup", "-J") or '{"loopdevices": []}')["loopdevices"]
    ours = {d["name"] for d in loops if (d.get("back-file") or "").startswith(str(base))}
    stacked = [d["name"] for d in loops if (d.get("back-file") or "").split(" ")[0] in ours]
    for dev in [*stacked, *ours]:
        detach(dev)


def partitions(disk_path: str) -> list[dict]:
    """Return sfdisk's view of a disk image's partitions (start/size in sectors)."""
    return json.loads(sh("sfdisk", "--json", disk_path))["partitiontable"]["partitions"]


def fill(mountpoint: Path, seed: int, big_mib: int) -> None:
    """Write a tree of small files and one big random file."""
    rng = __import__("random").Random(seed)
    for folder in range(4):
        sub = mountpoint / f"dir{folder}"
        sub.mkdir()
        for index in range(25):
            (sub / f"file{index}.txt").write_bytes(rng.randbytes(rng.randint(1, 40_000)))
    with open(mountpoint / "big.bin", "wb") as handle:
        for _ in range(big_mib):
            handle.write(os.urandom(MIB))


def checksums(mountpoint: Path) -> dict[str, str]:
    """Return the SHA-256 of every file under a mount point, by relative path."""
    result = {}
    for path in sorted(mountpoint.rglob("*")):
        if path.is_file() and "System Volume Information" not in path.parts:
            result[str(path.relative_to(mountpoint))] = hashlib.sha256(
                path.read_bytes()).hexdigest()
    return result


def mounted_checksums(dev: str, fs: str) -> dict[str, str]:
    """Mount a filesystem read-only, checksum its files and unmount it."""
    with tempfile.TemporaryDirectory() as mnt:
        if fs == "ntfs":
            sh("ntfs-3g", "-o", "ro", dev, mnt)
        else:
            sh("mount", "-o", "ro", dev, mnt)
        try:
            return checksums(Path(mnt))
        finally:
            sh("umount", mnt)


def make_source_disk(path: Path, big_mib: int = 40) -> dict[int, dict[str, str]]:
    """Create a GPT disk image with ext4 (1) and NTFS (2) full of files; return checksums."""
    with open(path, "wb") as handle:
        handle.truncate((2 * PART_MIB + 4) * MIB)
    sh("sfdisk", "-q", str(path), input=(
        "label: gpt\n"
        f"start=2048, size={PART_MIB * 2048}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"
        f"size={PART_MIB * 2048}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n"))
    sums = {}
    for number, (part, fs) in enumerate(zip(partitions(str(path)), ("ext4", "ntfs"),
                                            strict=True), start=1):
        dev = attach(str(path), part["start"] * 512, part["size"] * 512)
        try:
            if fs == "ext4":
                sh("mkfs.ext4", "-q", "-F", "-L", "root", dev)
            else:
                sh("mkfs.ntfs", "-f", "-Q", "-L", "data", dev)
            with tempfile.TemporaryDirectory() as mnt:
                sh("ntfs-3g", dev, mnt) if fs == "ntfs" else sh("mount", dev, mnt)
                try:
                    fill(Path(mnt), number, big_mib)
                    sums[number] = checksums(Path(mnt))
                finally:
                    sh("umount", mnt)
        finally:
            detach(dev)
    return sums


def capture_image(source: Path, folder: Path, name: str) -> dict:
    """Capture a disk image into an image folder (schema, partclone+zstd files, manifest)."""
    from client.devices import open_disk
    from client.probe import build_schema, probe_disk

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hd0").mkdir(exist_ok=True)
    files = []
    with open_disk(str(source)) as disk:
        schema = build_schema([probe_disk(disk, 0)])
        for part in schema["disks"][0]["partitions"]:
            fs = part["filesystem"]["type"]
            dev = disk.partition_device(part["number"], part["start_sector"],
                                        part["size_sectors"])
            relative = f"hd0/part{part['number']}.{fs}.partclone.zst"
            with open(folder / relative, "wb") as out:
                clone = subprocess.Popen([f"partclone.{fs}", "-c", "-q", "-s", dev, "-o", "-"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                subprocess.run(["zstd", "-q", "-3", "-T0", "-c"], stdin=clone.stdout,
                               stdout=out, check=True)
                clone.stdout.close()
                assert clone.wait() == 0, f"partclone.{fs} failed"
            data = (folder / relative).read_bytes()
            files.append({"path": relative, "kind": "partclone", "disk": 0,
                          "partition": part["number"], "lv": None, "filesystem": fs,
                          "compression": "zstd", "level": 3, "size_bytes": len(data),
                          "sha256": hashlib.sha256(data).hexdigest(),
                          "chunk_bytes": CHUNK_BYTES,
                          "chunks": [hashlib.sha256(data[i:i + CHUNK_BYTES]).hexdigest()
                                     for i in range(0, len(data), CHUNK_BYTES)]})
    table = sh("sfdisk", "--dump", str(source)).encode()
    with open(source, "rb") as handle:
        head = handle.read(schema["disks"][0]["table_area_sectors"] * 512)
    for relative, kind, data in (("hd0/table.sfdisk", "table", table),
                                 ("hd0/head.bin", "head", head)):
        (folder / relative).write_bytes(data)
        files.append({"path": relative, "kind": kind, "disk": 0, "partition": None, "lv": None,
                      "filesystem": None, "compression": "none", "level": None,
                      "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    (folder / "schema.json").write_text(json.dumps(schema, indent=2))
    manifest = {"format": "castor-manifest", "version": 1, "image": name,
                "upload_id": "test-build", "image_type": "block",
                "created_at": "2026-11-25T00:00:00Z", "files": files}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return schema


def deployed_checksums(disk_path: Path) -> dict[int, dict[str, str]]:
    """Read back every filesystem of a deployed disk image: checksums per partition number."""
    result = {}
    for number, part in enumerate(partitions(str(disk_path)), start=1):
        dev = attach(str(disk_path), part["start"] * 512, part["size"] * 512)
        try:
            fs = sh("blkid", "-p", "-o", "value", "-s", "TYPE", dev).strip()
            result[number] = mounted_checksums(dev, fs)
        finally:
            detach(dev)
    return result
