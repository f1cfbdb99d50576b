"""Benchmark: castor-client upload/deploy against the raw partclone | zstd pipelines.

Builds a GPT disk image with an ext4 and an NTFS filesystem (2 GiB each by default) holding
half random, half compressible data, then times in the same run:

  raw upload   partclone.<fs> -c -s DEV -o - | zstd -T0 -3 > file     (per partition)
  our upload   castor-client upload (to a Castor server on loopback, as `castor run`)
  raw deploy   zstd -dc file | partclone.<fs> -r -s - -o DEV           (per partition)
  our deploy   castor-client deploy (download, SHA-256, zstd -d, partclone)

and prints the throughput ratios (raw time / our time; 1.0 = as fast as the raw pipeline).
Needs root and loop devices.  Usage: python -m bench.imaging [--fs-gib 2] [--data-gib 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MIB = 1 << 20
NTFS_TYPE = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"


def sh(*argv: str, input: str | None = None) -> str:
    """Run a tool; raise with its stderr on failure."""
    proc = subprocess.run(argv, input=input, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr}")
    return proc.stdout


def drop_caches() -> None:
    """Write back and drop the page cache so every run starts cold."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def loop(image: Path, start: int, size: int) -> str:
    """Attach a loop device over a partition window of an image (sectors of 512 bytes)."""
    return sh("losetup", "-f", "--show", "-o", str(start * 512), "--sizelimit",
              str(size * 512), str(image)).strip()


def partitions(image: Path) -> list[tuple[int, int]]:
    """(start, size) in sectors of each partition."""
    import json

    table = json.loads(sh("sfdisk", "--json", str(image)))["partitiontable"]
    return [(p["start"], p["size"]) for p in table["partitions"]]


def fill(root: Path, data_bytes: int) -> None:
    """Write data_bytes of files: half random, half repetitive text."""
    block = 4 * MIB
    text = b"".join(b"castor imaging line %08d: the quick brown fox\n" % i
                    for i in range(block // 48))[:block]
    written, index = 0, 0
    while written < data_bytes:
        with open(root / f"f{index:05d}.bin", "wb") as handle:
            for _ in range(16):  # 64 MiB files
                handle.write(os.urandom(block) if index % 2 == 0 else text)
                written += block
        index += 1


def build_source(image: Path, fs_gib: int, data_bytes: int) -> None:
    """Create the GPT source disk with ext4 and NTFS filled with data."""
    fs_mib = fs_gib * 1024
    sh("truncate", "-s", f"{2 * fs_mib + 8}M", str(image))
    sh("sfdisk", "-q", str(image), input=f"label: gpt\n,{fs_mib}M,L\n,{fs_mib}M,{NTFS_TYPE}\n")
    (ext_start, ext_size), (ntfs_start, ntfs_size) = partitions(image)
    mnt = Path(tempfile.mkdtemp())
    dev = loop(image, ext_start, ext_size)
    try:
        sh("mkfs.ext4", "-q", dev)
        sh("mount", dev, str(mnt))
        fill(mnt, data_bytes)
        sh("umount", str(mnt))
    finally:
        sh("losetup", "-d", dev)
    dev = loop(image, ntfs_start, ntfs_size)
    try:
        sh("mkfs.ntfs", "-f", "-Q", dev)
        sh("ntfs-3g", dev, str(mnt))
        fill(mnt, data_bytes)
        sh("umount", str(mnt))
    finally:
        sh("losetup", "-d", dev)
    mnt.rmdir()


def timed(argv: list[str]) -> float:
    """Run a command (after dropping caches) and return its wall time in seconds."""
    drop_caches()
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if proc.returncode:
        raise SystemExit(f"{argv[:4]} failed: {proc.stderr[-2000:]}")
    return elapsed


def raw_pipelines(source: Path, target: Path, work: Path) -> tuple[float, float]:
    """Time the raw upload and deploy pipelines over both partitions."""
    up = down = 0.0
    for (start, size), tool in zip(partitions(source), ("extfs", "ntfs"), strict=True):
        dev = loop(source, start, size)
        out = work / f"raw-{tool}.pc.zst"
        try:
            up += timed(["bash", "-o", "pipefail", "-c",
                         f"partclone.{tool} -c -s {dev} -o - 2>/dev/null | zstd -q -T0 -3 > {out}"])
        finally:
            sh("losetup", "-d", dev)
        dev = loop(target, start, size)
        try:
            down += timed(["bash", "-o", "pipefail", "-c",
                           f"zstd -q -dc {out} | partclone.{tool} -r -s - -o {dev} 2>/dev/null"])
        finally:
            sh("losetup", "-d", dev)
        out.unlink()
    return up, down


def unprotect(app) -> None:
    """Let the benchmark upload over its own image again."""
    from app.extensions import db
    from app.models import Image

    with app.app_context():
        db.session.scalar(db.select(Image).filter_by(name="bench")).protected = False
        db.session.commit()


def start_server(work: Path):
    """Serve a fresh Castor app on loopback as `castor run` does; return (served, token, app)."""
    from app import create_app
    from app.extensions import db
    from app.models import ApiToken, Image, User, default_profile_for
    from bench.serve import Served

    os.environ["CASTOR_INSTANCE_PATH"] = str(work / "instance")
    config = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'bench.db'}",
              "STORAGE_PATH": str(work / "storage"), "SECRET_KEY": "bench"}
    app = create_app(config)
    with app.app_context():
        db.create_all()
        user = User(username="bench", is_admin=True)
        user.set_password("bench")
        row, token = ApiToken.issue(user, "bench")
        image = Image(name="bench", image_type="block", environment="linux")
        image.profiles.append(default_profile_for("block", "linux"))
        db.session.add_all([user, row, image])
        db.session.commit()
        db.engine.dispose()
    return Served(config, work / "instance"), token, app


def served_step(served, argv: list[str]) -> tuple[float, dict]:
    """Time one client run; return seconds and the server's writes, CPU and peak RSS."""
    before = served.counters()
    stop = served.watch()
    seconds = timed(argv)
    peak = stop()
    after = served.counters()
    return seconds, {**{k: after[k] - before[k] for k in after}, "peak_rss": peak}


def main() -> int:
    """Build the disks, time both ways, print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fs-gib", type=int, default=2)
    parser.add_argument("--data-gib", type=float, default=1.0)
    parser.add_argument("--work", default=None, help="work folder (default: a temp folder)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each measurement; the fastest counts (shared machines)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="castor-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    source, target = work / "source.img", work / "target.img"
    print(f"building {args.fs_gib} GiB ext4 + NTFS with {args.data_gib} GiB data each ...")
    build_source(source, args.fs_gib, int(args.data_gib * (1 << 30)))
    sh("truncate", "-s", str(source.stat().st_size), str(target))
    sh("sfdisk", "-q", str(target), input=sh("sfdisk", "--dump", str(source)))
    print("load:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    served, token, app = start_server(work)
    client = [sys.executable, "-m", "client.main", "--server", served.url, "--token", token]
    runs: dict[str, list[float]] = {"raw_up": [], "raw_down": [], "up": [], "down": []}
    try:
        for _ in range(args.repeat):
            raw_up, raw_down = raw_pipelines(source, target, work)
            runs["raw_up"].append(raw_up)
            runs["raw_down"].append(raw_down)
            unprotect(app)
            seconds, facts = served_step(served, [*client, "upload", "--image", "bench",
                                                  "--disk", str(source)])
            runs["up"].append(seconds)
            stored = sum(p.stat().st_size for p in
                         (work / "storage" / "images" / "bench").rglob("*") if p.is_file())
            print(f"upload {seconds:.1f} s: server wrote {facts['write_bytes'] / stored:.3f}x "
                  f"(wchar {facts['wchar'] / stored:.3f}x) the {stored / MIB:.0f} MiB stored, "
                  f"{facts['cpu_s']:.1f} CPU s, peak RSS {facts['peak_rss'] / MIB:.0f} MiB")
            seconds, facts = served_step(served, [*client, "deploy", "--image", "bench",
                                                  "--disk", str(target)])
            runs["down"].append(seconds)
            print(f"deploy {seconds:.1f} s: server {facts['cpu_s']:.1f} CPU s")
    finally:
        served.stop()
    print("load:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    raw_up, raw_down = min(runs["raw_up"]), min(runs["raw_down"])
    ours_up, ours_down = min(runs["up"]), min(runs["down"])
    print("all runs (s):", {k: [round(v, 1) for v in vals] for k, vals in runs.items()})
    stored = sum(p.stat().st_size for p in (work / "storage" / "images" / "bench").rglob("*")
                 if p.is_file())
    print(f"stored image: {stored / MIB:.0f} MiB")
    print(f"{'step':<8}{'raw s':>9}{'castor s':>10}{'ratio':>8}")
    for name, raw, ours in (("upload", raw_up, ours_up), ("deploy", raw_down, ours_down)):
        print(f"{name:<8}{raw:>9.1f}{ours:>10.1f}{raw / ours:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
