"""Capture a disk image into a local image folder and deploy it back, without a server.

The client's own capture specs, schema probe, planner input and deploy loop run on real
loop-device disks; only the transport is a folder instead of HTTP, so a test can damage a
stored file, edit a schema or plan, and watch what the client does before it writes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

from app.imaging.planner import plan_deploy
from client.capture import block_spec
from client.deploy import deploy_plans, disk_facts
from client.devices import open_disk
from client.pipeline import run_pipeline
from client.probe import build_schema, probe_disk
from client.progress import Progress
from client.run import run

MIB = 1 << 20


def _entry(folder: Path, path: str, kind: str, disk: int, **fields) -> dict:
    data = (folder / path).read_bytes()
    return {"path": path, "kind": kind, "disk": disk, "partition": None, "lv": None,
            "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), **fields}


def capture_local(image: Path, folder: Path, compression: str = "zstd") -> tuple[dict, dict]:
    """Capture every partition of a disk image into folder; return (schema, manifest)."""
    files = []
    (folder / "hd0").mkdir(parents=True, exist_ok=True)
    with open_disk(str(image)) as disk:
        info = probe_disk(disk, 0)
        (folder / "hd0/table.sfdisk").write_text(run(["sfdisk", "--dump", disk.path]))
        files.append(_entry(folder, "hd0/table.sfdisk", "table", 0))
        with open(image, "rb") as handle:
            (folder / "hd0/head.bin").write_bytes(handle.read(info["table_area_sectors"] * 512))
        files.append(_entry(folder, "hd0/head.bin", "head", 0))
        for part in info["partitions"]:
            fs = (part.get("filesystem") or {}).get("type")
            if part["role"] == "extended" or fs == "swap":
                continue
            dev = disk.partition_device(part["number"], part["start_sector"],
                                        part["size_sectors"])
            spec = block_spec(0, part["number"], fs, dev, compression, 3, 0)
            with open(folder / spec.path, "wb") as out:
                run_pipeline(spec.stages, sink=out)
            files.append(_entry(folder, spec.path, spec.kind, 0, partition=part["number"],
                                filesystem=fs, compression=compression))
    return build_schema([info]), {"files": files}


def folder_source(folder: Path):
    """A stream source reading stored files from a local image folder, 1 MiB at a time."""

    def source(entry: dict) -> Iterator[bytes]:
        with open(folder / entry["path"], "rb") as handle:
            while data := handle.read(MIB):
                yield data

    return source


def plan_for(schema: dict, target: str, options: dict | None = None,
             facts: dict | None = None) -> list[dict]:
    """Plan the schema onto a destination disk the way the server does."""
    with open_disk(target) as disk:
        destination = {**disk_facts([disk])[0], **(facts or {})}
    return plan_deploy(schema, None, [destination], dict(options or {}))


def deploy_local(target: str, schema: dict, manifest: dict, folder: Path, plans: list[dict],
                 options: dict | None = None, check_sizes: bool = True) -> None:
    """Run the client's deploy loop from a local folder onto target."""
    answer = {"image": {"name": "local"}, "schema": schema, "manifest": manifest,
              "plans": plans, "profile": dict(options or {})}
    with open_disk(target) as disk:
        deploy_plans(None, answer, [disk], folder_source(folder), Progress(lambda body: {}),
                     {}, file_size=(lambda e: (folder / e["path"]).stat().st_size)
                     if check_sizes else None)


def sha256_file(path: Path) -> str:
    """SHA-256 of a whole (sparse) disk-image file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while data := handle.read(4 * MIB):
            digest.update(data)
    return digest.hexdigest()


def sh(*argv: str, input: str | None = None) -> str:
    """Run a set-up tool and fail loudly."""
    proc = subprocess.run(argv, input=input, capture_output=True, text=True)
    assert proc.returncode == 0, f"{argv}: {proc.stderr}"
    return proc.stdout


def dump_json(data: dict) -> str:
    """Pretty JSON for failure messages."""
    return json.dumps(data, indent=1)
