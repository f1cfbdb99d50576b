"""Bench: deploy one image to 1, 2, 4 and 8 machines by multicast vs sequential unicast.

Everything runs for real on one host: a bridge and one network namespace per machine, the
server (HTTP API) inside the sender's namespace, `udp-sender` started by the session
supervisor, and `castor-client multicast` in each receiver namespace writing a disk-image
file. Unicast is the real `castor-client deploy` (HTTP download with SHA-256 check,
decompress, partclone restore), run N times one after another from one namespace.

Each multicast round also reports how the machines got their bytes (multicast vs HTTP, from
the session summary: a receiver that fell behind completes over HTTP) and what the sender put
on the wire (the byte counter of the sender's bridge port; the HTTP server runs in a namespace
of its own so that counter holds multicast only) against the stored bytes, with udp-sender's
own retransmission count.

Run as root: `.venv/bin/python -m bench.multicast [--big-mib 120] [--counts 1,2,4,8]
[--multicast-only]`.
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


def port_tx_bytes(lan, host: int) -> int:
    """Return the bytes host `host` sent into the bridge (its bridge port's RX counter)."""
    out = subprocess.run(["ip", "-n", lan.bridge_ns, "-j", "-s", "link", "show",
                          lan.port(host)], capture_output=True, text=True, check=True).stdout
    return int(json.loads(out)[0]["stats64"]["rx"]["bytes"])


def start_server(lan, base: Path, app) -> subprocess.Popen:
    """Serve the app in the last namespace (not the sender's) and wait until it listens."""
    config = {k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "STORAGE_PATH",
                                         "SECRET_KEY", "REDIS_URL")}
    (base / "serve.json").write_text(json.dumps(config))
    ready = base / "ready"
    server = len(lan.hosts) - 1  # the last namespace serves HTTP; host 0 only sends
    proc = subprocess.Popen(
        [*lan.prefix(server), sys.executable, "-m", "tests.multicast.serve",
         str(base / "serve.json"), lan.address(server), str(PORT), str(ready)], cwd=ROOT,
        stdout=subprocess.DEVNULL,
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
            f"http://{lan.address(len(lan.hosts) - 1)}:{PORT}", "--token", token, *args]


def blank(path: Path, mib: int) -> Path:
    """Create (or reset) an empty disk-image file."""
    path.unlink(missing_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(mib << 20)
    return path


def run_multicast(lan, app, token: str, base: Path, count: int) -> dict:
    """Deploy to `count` receivers in one session; return seconds, byte split and wire bytes."""
    name = f"bench-{count}-{int(time.time())}"
    disks = [blank(base / f"m{i}.img", 480) for i in range(count)]
    wire_before = port_tx_bytes(lan, 0)
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    answer = app.test_client().post(
        "/api/v1/multicast/sessions", headers=headers,
        json={"name": name, "image": "lab", "expected_clients": count, "max_wait_seconds": 30})
    assert answer.status_code == 201, answer.get_json()
    session_id = answer.get_json()["id"]
    procs = [subprocess.Popen(client_argv(lan, i + 1, token, "multicast", "--session", name,
                                          "--disk", str(disk)), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i, disk in enumerate(disks)]
    for proc in procs:
        _, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"multicast client failed: {err.decode()[-2000:]}")
        if os.environ.get("BENCH_DEBUG"):
            print(err.decode()[-3000:])
    seconds = time.monotonic() - started
    for _ in range(600):
        shown = app.test_client().get(f"/api/v1/multicast/sessions/{session_id}",
                                      headers=headers).get_json()
        if shown["state"] not in ("waiting", "sending"):
            break
        time.sleep(0.5)
    with app.app_context():
        from app.extensions import db
        from app.models import MulticastSession

        row = db.session.get(MulticastSession, session_id)
        log = row.log
        retransmits = sum(int(st.get("retransmits") or 0) for st in row.streams)
    summary = shown["summary"]
    return {"seconds": seconds, "multicast": summary["multicast_bytes"],
            "http": summary["http_bytes"], "all_fell_back": summary["all_fell_back"],
            "fell_back": sum(1 for m in summary["machines"] if m["http_bytes"]),
            "wire": port_tx_bytes(lan, 0) - wire_before, "retransmits": retransmits,
            "log": log}


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
    parser.add_argument("--multicast-only", action="store_true",
                        help="skip the unicast and network-only rounds")
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
    manifest = json.loads((base / "storage/images/lab/manifest.json").read_text())
    streamed = sum(f["size_bytes"] for f in manifest["files"] if f["kind"] == "partclone")
    # Host 0 sends, hosts 1..N receive, the last one serves HTTP.
    lan = make_lan(max(counts) + 2, 9000 if args.jumbo else 1500)
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
        load = os.getloadavg()
        print(f"image: 2 partitions (ext4 + NTFS), {streamed / 2**20:.0f} MiB in partition "
              f"streams (zstd -3); {os.cpu_count()} cores, load {load[0]:.1f} {load[1]:.1f} "
              f"{load[2]:.1f}; veth bridge in network namespaces")
        print(f"{'N':>3} {'multicast s':>12} {'vs N=1':>7} {'by multicast':>13} {'by HTTP':>8}"
              f" {'fell back':>9} {'wire/stored':>12} {'re-xmits':>9} {'unicast s':>10}"
              f" {'uni/multi':>10} {'network-only s':>15}")
        first = None
        for count in counts:
            multi = run_multicast(lan, app, token, base, count)
            uni = net = None
            if not args.multicast_only:
                uni = run_unicast(lan, token, base, count)
                net = run_network_only(lan, app, token, count)
            first = first or multi["seconds"]
            total = multi["multicast"] + multi["http"]
            share = multi["multicast"] * 100 / total if total else 0.0
            flag = " (every machine fell back)" if multi["all_fell_back"] else ""
            unicast = "-" if uni is None else f"{uni:.1f}"
            ratio = "-" if uni is None else f"{uni / multi['seconds']:.2f}x"
            network = "-" if net is None else f"{net:.1f}"
            print(f"{count:>3} {multi['seconds']:>12.1f} {multi['seconds'] / first:>6.2f}x "
                  f"{share:>12.1f}% {100 - share:>7.1f}% {multi['fell_back']:>5}/{count:<3}"
                  f" {multi['wire'] / streamed:>11.2f}x {multi['retransmits']:>9} "
                  f"{unicast:>10} {ratio:>10} {network:>15}{flag}", flush=True)
            for line in multi["log"].splitlines():
                if "HTTP" in line and line.startswith(("client", "warning", "stream")):
                    print(f"      {line}")
    finally:
        kill_leftovers(str(base / "instance"))
        if server is not None:
            server.kill()
        lan.destroy()
        subprocess.run(["rm", "-rf", str(base)])


if __name__ == "__main__":
    main()
