"""Bench: replicate a 2 GiB image between two local Castor instances vs `cp -r`.

Run from the repository root with Redis up:  .venv/bin/python bench/replication.py
Prints the time of `cp -r` of the image folder, of the replication job (signed HTTP over
loopback, SHA-256 verified on receipt, manifest last), their ratio, and the bytes sent by a
second run of the unchanged image.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app, storage  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import ComServer, Image, Job, ReplicationStatus  # noqa: E402
from bench.serve import Served  # noqa: E402

MIB = 1 << 20
REDIS_URL = os.environ.get("CASTOR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


def make_config(folder: Path) -> dict:
    """Return the configuration of one instance living in `folder`."""
    return {"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'db.sqlite'}",
            "STORAGE_PATH": str(folder / "storage"), "REDIS_URL": REDIS_URL,
            "RQ_QUEUE": f"castor-bench-{uuid.uuid4().hex[:8]}", "WTF_CSRF_ENABLED": False}


def write_image(folder: Path, name: str, total: int, files: int) -> int:
    """Write an image of random files with its manifest; return its size in bytes."""
    image = storage.image_dir(folder, name)
    (image / "hd0").mkdir(parents=True)
    entries = []
    per_file = total // files
    for number in range(1, files + 1):
        relative = f"hd0/part{number}.ext4.partclone.zst"
        digest = hashlib.sha256()
        with open(image / relative, "wb") as handle:
            for _ in range(per_file // (16 * MIB)):
                block = os.urandom(16 * MIB)
                digest.update(block)
                handle.write(block)
        entries.append({"path": relative, "kind": "partclone", "disk": 0, "partition": number,
                        "lv": None, "filesystem": "ext4", "compression": "zstd", "level": 3,
                        "size_bytes": (image / relative).stat().st_size,
                        "sha256": digest.hexdigest()})
    (image / "schema.json").write_text('{"format": "castor-schema", "version": 1, "disks": []}')
    storage.write_json_atomic(image / storage.MANIFEST, {
        "format": "castor-manifest", "version": 1, "image": name, "upload_id": uuid.uuid4().hex,
        "image_type": "block", "created_at": "2026-11-25T00:00:00Z", "files": entries})
    return storage.folder_size(image)


def run_replication(app, image_id: int, server_id: int) -> tuple[float, int, str]:
    """Queue and run one replication job; return seconds, bytes sent and the job outcome."""
    from app.replication import queue_one
    from jobs.worker import make_worker

    with app.app_context():
        job_id = queue_one(db.session.get(Image, image_id),
                           db.session.get(ComServer, server_id)).id
    started = time.perf_counter()
    make_worker(app, simple=True).work(burst=True)
    elapsed = time.perf_counter() - started
    with app.app_context():
        job = db.session.get(Job, job_id)
        status = db.session.scalar(db.select(ReplicationStatus)
                                   .filter_by(image_id=image_id, server_id=server_id))
        if job.status != "finished":
            raise SystemExit(f"replication failed: {job.error}")
        return elapsed, status.bytes_sent, job.message


def main() -> None:
    """Build two instances and an image, then time cp -r and two replications."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="castor-bench-", dir=args.dir))
    served = None
    print("load:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    try:
        folders = {name: base / name for name in ("source", "target")}
        configs = {name: make_config(folder) for name, folder in folders.items()}
        apps = {}
        for name, folder in folders.items():
            os.environ["CASTOR_INSTANCE_PATH"] = str(folder / "instance")
            apps[name] = create_app(configs[name])
            with apps[name].app_context():
                db.create_all()
        served = Served(configs["target"], folders["target"] / "instance")
        secret = uuid.uuid4().hex * 2
        with apps["source"].app_context():
            db.session.add(ComServer(display_name="bench-source", url="http://127.0.0.1:1",
                                     is_local=True))
            target = ComServer(display_name="bench-target", url=served.url,
                               shared_secret=secret)
            image = Image(name="bench-image")
            db.session.add_all([target, image])
            db.session.commit()
            server_id, image_id = target.id, image.id
        with apps["target"].app_context():
            db.session.add(ComServer(display_name="bench-source", url="http://127.0.0.1:1",
                                     shared_secret=secret))
            db.session.commit()
        size = write_image(Path(configs["source"]["STORAGE_PATH"]), "bench-image",
                           args.size_mib * MIB, args.files)

        source_folder = storage.image_dir(configs["source"]["STORAGE_PATH"], "bench-image")
        started = time.perf_counter()
        subprocess.run(["cp", "-r", str(source_folder), str(base / "cp-copy")], check=True)
        cp_seconds = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run(["sync"], check=True)
        sync_seconds = time.perf_counter() - started

        seconds, sent, _ = run_replication(apps["source"], image_id, server_id)
        replica = storage.image_dir(configs["target"]["STORAGE_PATH"], "bench-image")
        problems = storage.verify_folder(replica)
        again_seconds, again_sent, message = run_replication(apps["source"], image_id, server_id)

        print(f"image: {size / MIB:.0f} MiB in {args.files} files + schema.json")
        print(f"cp -r:                 {cp_seconds:7.2f} s  ({size / MIB / cp_seconds:7.1f} MiB/s)"
              f"  (+ sync {sync_seconds:.2f} s)")
        print(f"replication (1st run): {seconds:7.2f} s  ({size / MIB / seconds:7.1f} MiB/s), "
              f"{sent} bytes sent")
        print(f"ratio replication / cp -r: {seconds / cp_seconds:.2f}  "
              f"(vs cp -r + sync: {seconds / (cp_seconds + sync_seconds):.2f})")
        print(f"replica verified: {'yes' if not problems else problems}")
        print(f"replication (2nd run, unchanged): {again_seconds:.2f} s, {again_sent} bytes sent"
              f" ({message})")
    finally:
        if served is not None:
            served.stop()
        print("load:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
