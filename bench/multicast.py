"""Bench: deploy one image to 1, 2, 4 and 8 machines by multicast vs sequential unicast.

Everything runs for real on one host: a bridge and one network namespace per machine, the
server (HTTP API) inside the sender's namespace, `udp-sender` started by the session
supervisor, and `castor-client multicast` in each receiver namespace writing a disk-image
file. Unicast is the real `castor-client deploy` (HTTP download with SHA-256 check,
decompress, partclone restore), run N times one after another from one namespace.

Run as root: `.venv/bin/python -m bench.multicast [--big-mib 120] [--counts 1,2,4,8]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = 8741


def start_server(lan, base: Path, app) -> subprocess.Popen:
    """Serve the app inside the sender namespace and wait until it listens."""
    config = {k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "STORAGE_PATH",
                                         "SECRET_KEY", "REDIS_URL")}
    (base / "serve.json").write_text(json.dumps(config))
    ready = base / "ready"
    proc = subprocess.Popen(
        [*lan.prefix(0), sys.executable, "-m", "tests.multicast.serve", str(base / "serve.json"),
         lan.address(0), str(PORT), str(ready)], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    for _ in range(100):
        if ready.exists():
            return proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def client_argv(lan, host: int, token: str, *args: str) -> list[str]:
    """Return the castor-client command line run inside a host's namespace."""
    return [*lan.prefix(host), sys.executable, "-m", "client.main", "--server",
            f"http://{lan.address(0)}:{PORT}", "--token", token, *args]


def blank(path: Path, mib: int) -> Path:
    """Create (or reset) an empty disk-image file."""
    path.unlink(missing_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(mib << 20)
    return path


def run_multicast(lan, app, token: str, base: Path, count: int) -> float:
    """Deploy to `count` receivers in one session; return seconds until all are done."""
    name = f"bench-{count}-{int(time.time())}"
    disks = [blank(base / f"m{i}.img", 480) for i in range(count)]
    started = time.monotonic()
    answer = app.test_client().post(
        "/api/v1/multicast/sessions", headers={"Authorization": f"Bearer {token}"},
        json={"name": name, "image": "lab", "expected_clients": count, "max_wait_seconds": 30})
    assert answer.status_code == 201, answer.get_json()
    procs = [subprocess.Popen(client_argv(lan, i + 1, token, "multicast", "--session", name,
                                          "--disk", str(disk)), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i, disk in enumerate(disks)]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise SystemExit(f"multicast client failed: {err.decode()[-2000:]}")
        if os.environ.get("BENCH_DEBUG"):
            print(err.decode()[-3000:])
    return time.monotonic() - started


def run_network_only(lan, app, token: str, count: int) -> float:
    """Send the session to `count` receivers that only hash what they get (no restore)."""
    name = f"net-{count}-{int(time.time())}"
    started = time.monotonic()
    answer = app.test_client().post(
        "/api/v1/multicast/sessions", headers={"Authorization": f"Bearer {token}"},
        json={"name": name, "image": "lab", "expected_clients": count, "max_wait_seconds": 30})
    assert answer.status_code == 201, answer.get_json()
    streams = answer.get_json()["streams"]
    with app.app_context():
        from app.extensions import db
        from app.models import Image
        from app.multicast.sessions import image_streams

        expected = [s["sha256"] for s in image_streams(
            db.session.scalar(db.select(Image).filter_by(name="lab")))]
    loop = "; ".join(f"udp-receiver --portbase {s['portbase']} --interface lan0 --nokbd "
                     "2>/dev/null | sha256sum" for s in streams)
    procs = [subprocess.Popen([*lan.prefix(i + 1), "sh", "-c", loop], stdout=subprocess.PIPE)
             for i in range(count)]
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        sums = [line.split()[0] for line in out.decode().splitlines()]
        if sums != expected:
            raise SystemExit(f"a receiver got a damaged stream: {sums} != {expected}")
    return time.monotonic() - started


def run_unicast(lan, token: str, base: Path, count: int) -> float:
    """Deploy `count` times one after another over HTTP; return the total seconds."""
    disk = base / "u.img"
    total = 0.0
    for _ in range(count):
        blank(disk, 480)
        started = time.monotonic()
        proc = subprocess.run(client_argv(lan, 1, token, "deploy", "--image", "lab",
                                          "--disk", str(disk)), cwd=ROOT, capture_output=True)
        total += time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit(f"unicast deploy failed: {proc.stderr.decode()[-2000:]}")
    return total


def main() -> None:
    """Build the image, run every round, print the table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mib", type=int, default=120,
                        help="random data per partition (MiB)")
    parser.add_argument("--counts", default="1,2,4,8")
    parser.add_argument("--jumbo", action="store_true",
                        help="9000-byte MTU and udp-sender --blocksize 8192 (fewer packets)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    sys.path.insert(0, str(ROOT))
    from app.extensions import db
    from app.models import ApiToken, Image, User
    from app.models.profiles import default_profile_for
    from tests.conftest import make_app
    from tests.multicast import imagebuilder as ib
    from tests.multicast.helpers import kill_leftovers
    from tests.multicast.netns import make_lan

    base = Path(tempfile.mkdtemp(prefix="castor-bench-mc-"))
    ib.make_source_disk(base / "source.img", big_mib=args.big_mib)
    schema = ib.capture_image(base / "source.img", base / "storage" / "images" / "lab", "lab")
    stored = sum(f.stat().st_size for f in (base / "storage/images/lab/hd0").iterdir())
    lan = make_lan(max(counts) + 1, 9000 if args.jumbo else 1500)
    server = None
    try:
        app = make_app(base, MULTICAST_COMMAND_PREFIX=lan.prefix(0), MULTICAST_INTERFACE="lan0",
                       MULTICAST_STREAM_WAIT=10, MULTICAST_CLIENT_GRACE=60)
        with app.app_context():
            user = User(username="admin", is_admin=True)
            user.set_password("bench password")
            image = Image(name="lab", schema_json=json.dumps(schema))
            image.profiles.append(default_profile_for("block", "linux"))
            if args.jumbo:
                image.profiles[0].multicast_sender_args = "--blocksize 8192"
            row, token = ApiToken.issue(user, "bench")
            db.session.add_all([user, image, row])
            db.session.commit()
        server = start_server(lan, base, app)
        print(f"image: 2 partitions (ext4 + NTFS), {stored / 2**20:.0f} MiB stored (zstd -3); "
              f"{os.cpu_count()} cores, veth bridge in network namespaces")
        print(f"{'N':>3} {'multicast s':>12} {'vs N=1':>7} {'unicast s':>10} {'uni/multi':>10}"
              f" {'network-only s':>15} {'vs N=1':>7}")
        first = first_net = None
        for count in counts:
            multi = run_multicast(lan, app, token, base, count)
            uni = run_unicast(lan, token, base, count)
            net = run_network_only(lan, app, token, count)
            first, first_net = first or multi, first_net or net
            print(f"{count:>3} {multi:>12.1f} {multi / first:>6.2f}x {uni:>10.1f} "
                  f"{uni / multi:>9.2f}x {net:>15.1f} {net / first_net:>6.2f}x", flush=True)
    finally:
        kill_leftovers(str(base / "instance"))
        if server is not None:
            server.kill()
        lan.destroy()
        subprocess.run(["rm", "-rf", str(base)])


if __name__ == "__main__":
    main()
