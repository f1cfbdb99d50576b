"""Many deploys of one image from one server: `python -m bench.deploys [--mib 1024]`.

One Castor server (as `castor run` serves) holds an image of one file; 1, 4 and 8 clients
download it at the same time over loopback (curl, discarding the bytes, as the network
side of a deploy). Prints the aggregate throughput and the server's CPU seconds per GiB
served; whole-file answers go out with sendfile.
"""

from __future__ import annotations

import argparse
import hashlib
import os
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
from app.models import ApiToken, Image, User, default_profile_for  # noqa: E402
from bench.serve import Served  # noqa: E402

MIB = 1 << 20


def prepare(work: Path, mib: int) -> tuple[dict, str]:
    """Create an instance with one image of `mib` MiB; return its config and a token."""
    config = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'bench.db'}",
              "STORAGE_PATH": str(work / "storage"), "SECRET_KEY": "bench"}
    os.environ["CASTOR_INSTANCE_PATH"] = str(work / "instance")
    app = create_app(config)
    folder = storage.image_dir(config["STORAGE_PATH"], "bench")
    (folder / "hd0").mkdir(parents=True)
    digest = hashlib.sha256()
    with open(folder / "hd0/part1.img", "wb") as handle:
        for _ in range(mib):
            block = os.urandom(MIB)
            digest.update(block)
            handle.write(block)
    (folder / "schema.json").write_text('{"format": "castor-schema", "version": 1}')
    storage.write_json_atomic(folder / storage.MANIFEST, {
        "format": "castor-manifest", "version": 1, "image": "bench",
        "upload_id": uuid.uuid4().hex, "files": [
            {"path": "hd0/part1.img", "kind": "dd", "size_bytes": mib * MIB,
             "sha256": digest.hexdigest()}]})
    with app.app_context():
        db.create_all()
        user = User(username="bench", is_admin=True)
        user.set_password("bench-password")
        row, token = ApiToken.issue(user, "bench")
        image = Image(name="bench", image_type="block", environment="linux")
        image.profiles.append(default_profile_for("block", "linux"))
        db.session.add_all([user, row, image])
        db.session.commit()
        db.engine.dispose()
    return config, token


def round_of(served: Served, token: str, clients: int, mib: int) -> dict:
    """Run `clients` downloads at once; return seconds, MiB/s and server CPU s per GiB."""
    url = served.url + "/api/v1/client/images/bench/files/hd0/part1.img"
    before = served.counters()["cpu_s"]
    started = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sf", "-o", "/dev/null", "-H",
                               f"Authorization: Bearer {token}", url]) for _ in range(clients)]
    if any(proc.wait() for proc in procs):
        raise SystemExit("a download failed")
    seconds = time.perf_counter() - started
    cpu = served.counters()["cpu_s"] - before
    gib = clients * mib / 1024
    return {"clients": clients, "seconds": seconds, "mib_s": clients * mib / seconds,
            "cpu_s_per_gib": cpu / gib}


def main() -> None:
    """Serve the image, run the rounds, print a line each."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="castor-bench-") as tmp:
        work = Path(tmp)
        config, token = prepare(work, args.mib)
        served = Served(config, work / "instance")
        try:
            print("load:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
            round_of(served, token, 1, args.mib)  # warm the page cache
            for clients in (1, 4, 8):
                row = round_of(served, token, clients, args.mib)
                print(f"{row['clients']} client(s): {row['seconds']:.1f} s, "
                      f"{row['mib_s']:.0f} MiB/s aggregate, "
                      f"server {row['cpu_s_per_gib']:.2f} CPU s per GiB served", flush=True)
            print("load:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
        finally:
            served.stop()


if __name__ == "__main__":
    main()
