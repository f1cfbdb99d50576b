"""Multicast end to end: a bridge, one sender and three receivers in network namespaces.

The server runs inside the sender's namespace (HTTP for the clients' join and reports), the
test drives sessions through the API, the supervisor runs udp-sender in the sender namespace
through MULTICAST_COMMAND_PREFIX, and each client runs `castor-client multicast` inside its
own namespace onto a disk-image file. Every deployed disk is checked file by file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.extensions import db
from app.models import ApiToken, History, Image, MulticastPort, MulticastSession, User
from app.models.profiles import default_profile_for
from tests.conftest import make_app, needs_root
from tests.multicast import imagebuilder as ib
from tests.multicast.helpers import kill_leftovers
from tests.multicast.netns import make_lan, netns_available

ROOT = Path(__file__).resolve().parents[2]
PORT = 8731
pytestmark = [needs_root, pytest.mark.root]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A LAN of four hosts, a built image and the server serving in host 0."""
    if not netns_available():
        pytest.skip("network namespaces are not available")
    base = tmp_path_factory.mktemp("mcast")
    source = base / "source.img"
    sums = ib.make_source_disk(source)
    schema = ib.capture_image(source, base / "storage" / "images" / "lab", "lab")
    lan = make_lan(4)
    server = None
    try:
        app = make_app(base, MULTICAST_COMMAND_PREFIX=lan.prefix(0),
                       MULTICAST_INTERFACE=lan.iface, MULTICAST_STREAM_WAIT=5,
                       MULTICAST_CLIENT_GRACE=30, MULTICAST_PORT_START=9100,
                       MULTICAST_PORT_END=9199)
        with app.app_context():
            user = User(username="admin", is_admin=True)
            user.set_password("correct horse")
            image = Image(name="lab", schema_json=json.dumps(schema), protected=True)
            image.profiles.append(default_profile_for("block", "linux"))
            slow = default_profile_for("block", "linux")
            slow.name = "slow"
            # Slow enough to kill a receiver mid-stream; also exercises the profile's args.
            slow.multicast_sender_args = "--max-bitrate 60m"
            image.profiles.append(slow)
            row, token = ApiToken.issue(user, "mc")
            db.session.add_all([user, image, row])
            db.session.commit()
        config = {k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "STORAGE_PATH",
                                             "SECRET_KEY", "REDIS_URL", "TESTING")}
        (base / "serve.json").write_text(json.dumps(config))
        ready = base / "ready"
        server = subprocess.Popen(
            [*lan.prefix(0), sys.executable, "-m", "tests.multicast.serve",
             str(base / "serve.json"), lan.address(0), str(PORT), str(ready)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(base / "server.log", "wb"))
        for _ in range(100):
            if ready.exists():
                break
            time.sleep(0.1)
        assert ready.exists(), (base / "server.log").read_text()
        yield {"app": app, "lan": lan, "sums": sums, "token": token, "base": base,
               "headers": {"Authorization": f"Bearer {token}"}}
    finally:
        kill_leftovers(str(base / "instance"))
        lan.kill_processes()
        ib.detach_loops_under(base)
        if server is not None:
            server.kill()
            server.wait()
        lan.destroy()


def blank_disk(lab, name: str, mib: int) -> Path:
    """Create an empty disk-image file of the given size."""
    path = lab["base"] / name
    with open(path, "wb") as handle:
        handle.truncate(mib << 20)
    return path


def start_client(lab, host: int, session: str, disk: Path) -> subprocess.Popen:
    """Run `castor-client multicast` inside host's namespace."""
    return subprocess.Popen(
        [*lab["lan"].prefix(host), sys.executable, "-m", "client.main",
         "--server", f"http://{lab['lan'].address(0)}:{PORT}", "--token", lab["token"],
         "multicast", "--session", session, "--disk", str(disk), "--client-id", f"c{host}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def api(lab, method: str, path: str, body: dict | None = None):
    """Call the API in-process (same database as the served app)."""
    client = lab["app"].test_client()
    return getattr(client, method)(f"/api/v1{path}", json=body, headers=lab["headers"])


def create(lab, **body) -> dict:
    """Create a session through the API and return it."""
    answer = api(lab, "post", "/multicast/sessions", {"image": "lab", **body})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def wait_for(predicate, timeout: float, what: str):
    """Poll until predicate returns a truthy value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def session_state(lab, session_id: int) -> dict:
    """Return the session as the API shows it."""
    return api(lab, "get", f"/multicast/sessions/{session_id}").get_json()


def finish_clients(procs: list[subprocess.Popen], timeout: float = 90) -> list[tuple[int, str]]:
    """Wait for client processes; return (exit code, output) of each."""
    results = []
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            outputs = [p.communicate()[0].decode(errors="replace")[-1500:] for p in procs]
            raise AssertionError("clients hung:\n" + "\n---\n".join(outputs)) from None
        results.append((proc.returncode, out.decode(errors="replace")[-3000:]))
    return results


def udp_processes(*markers: str) -> list[int]:
    """Return PIDs of live udp-* processes whose command line contains every marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cmd.startswith("udp-") and all(m in cmd for m in markers) and state != "Z":
            found.append(int(entry.name))
    return found


def test_three_receivers_get_every_file(lab):
    """Three disks of different sizes receive both partitions; every file matches."""
    session = create(lab, name="class-a", expected_clients=3, max_wait_seconds=20)
    assert [s["portbase"] for s in session["streams"]] == [9100, 9102]
    disks = [blank_disk(lab, f"a{i}.img", mib) for i, mib in enumerate((460, 600, 800))]
    procs = [start_client(lab, host, "class-a", disk) for host, disk in enumerate(disks, 1)]
    results = finish_clients(procs)
    assert [code for code, _ in results] == [0, 0, 0], "\n".join(o for _, o in results)
    final = wait_for(lambda: (s := session_state(lab, session["id"]))["state"] != "sending"
                     and s["state"] != "waiting" and s, 30, "the session to end")
    assert final["state"] == "finished", final
    assert sorted(c["state"] for c in final["clients"]) == ["done"] * 3
    for disk in disks:
        assert ib.deployed_checksums(disk) == lab["sums"]
    with lab["app"].app_context():
        rows = db.session.scalars(db.select(History).filter_by(object_type="image",
                                                                action="multicast")).all()
        assert any(r.data["session"] == "class-a" and r.data["state"] == "finished"
                   for r in rows)
        assert db.session.scalar(db.select(db.func.count(MulticastPort.portbase))) == 0


def test_killed_receiver_does_not_stall_the_others_and_late_joiner_is_refused(lab):
    """A receiver killed mid-stream is dropped; the two others finish; joining late is refused."""
    session = create(lab, name="class-b", profile="slow", expected_clients=3,
                     max_wait_seconds=20, retries_until_drop=12)
    disks = [blank_disk(lab, f"b{i}.img", 500) for i in range(3)]
    procs = [start_client(lab, host, "class-b", disk) for host, disk in enumerate(disks, 1)]
    wait_for(lambda: session_state(lab, session["id"])["state"] == "sending", 30, "sending")
    late = api(lab, "post", "/multicast/join",
               {"session": "class-b", "client_id": "late", "disks": [{"size_bytes": 1 << 30}]})
    assert late.status_code == 409
    assert "sending" in late.get_json()["error"]
    victim_ns = lab["lan"].hosts[3]

    def victim_receiver() -> int | None:
        pids = subprocess.run(["ip", "netns", "pids", victim_ns], capture_output=True,
                              text=True).stdout.split()
        return next((int(p) for p in pids if int(p) in udp_processes("udp-receiver")), None)

    pid = wait_for(victim_receiver, 20, "the victim's udp-receiver")
    time.sleep(1.0)  # let it take part in the transfer first
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    results = finish_clients(procs, timeout=120)
    assert [code for code, _ in results[:2]] == [0, 0], results
    assert results[2][0] == 1, results[2]
    assert time.monotonic() - started < 90
    final = wait_for(lambda: (s := session_state(lab, session["id"]))["state"] not in
                     ("waiting", "sending") and s, 40, "the session to end")
    assert final["state"] == "finished", final
    states = {c["client_id"]: c["state"] for c in final["clients"]}
    assert states == {"c1": "done", "c2": "done", "c3": "failed"}
    for disk in disks[:2]:
        assert ib.deployed_checksums(disk) == lab["sums"]


def test_cancel_kills_every_sender(lab):
    """Cancelling a waiting session leaves no udp-sender and frees its ports."""
    session = create(lab, name="class-c", expected_clients=2)
    with lab["app"].app_context():
        wait_for(lambda: (db.session.expire_all(), db.session.get(
            MulticastSession, session["id"]).sender_pid)[1], 20, "the sender to start")
    marker = (f"--portbase {session['streams'][0]['portbase']} ", str(lab["base"]))
    assert udp_processes(*marker)
    answer = api(lab, "post", f"/multicast/sessions/{session['id']}/cancel")
    assert answer.status_code == 200 and answer.get_json()["state"] == "cancelled"
    wait_for(lambda: not udp_processes(*marker), 10, "every udp-sender to be gone")
    with lab["app"].app_context():
        row = db.session.get(MulticastSession, session["id"])
        wait_for(lambda: not _alive(row.supervisor_pid), 10, "the supervisor to stop")
        assert db.session.scalar(db.select(db.func.count(MulticastPort.portbase))) == 0
    assert api(lab, "post", f"/multicast/sessions/{session['id']}/cancel").status_code == 409


def test_restart_cleans_orphaned_senders(lab):
    """When the owning server is gone, cleanup_orphans kills the sender and fails the session."""
    from app.multicast.supervisor import cleanup_orphans, pidfile

    session = create(lab, name="class-d", expected_clients=2)
    app = lab["app"]
    with app.app_context():
        wait_for(lambda: (db.session.expire_all(), db.session.get(
            MulticastSession, session["id"]).sender_pid)[1], 20, "the sender to start")
        path = pidfile(session["id"])
        data = json.loads(path.read_text())
        dead = subprocess.Popen(["true"])
        dead.wait()
        data["server"] = dead.pid  # the owner exited: a restarted server sees this
        path.write_text(json.dumps(data))
    marker = (f"--portbase {session['streams'][0]['portbase']} ", str(lab["base"]))
    assert udp_processes(*marker)
    assert cleanup_orphans(app) >= 1
    wait_for(lambda: not udp_processes(*marker), 10, "the orphaned sender to be gone")
    with app.app_context():
        row = db.session.get(MulticastSession, session["id"])
        assert row.state == "failed" and "interrupted" in row.error
        wait_for(lambda: not _alive(data["supervisor"]), 10, "the supervisor to be gone")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_partition_timeout_fails_the_session_and_stops_the_client(lab):
    """A stream over its time limit is killed, the session fails and the client gives up."""
    session = create(lab, name="class-e", profile="slow", expected_clients=1,
                     partition_timeout_seconds=2)
    proc = start_client(lab, 1, "class-e", blank_disk(lab, "e0.img", 500))
    started = time.monotonic()
    [(code, output)] = finish_clients([proc], timeout=60)
    assert code == 1, output
    assert time.monotonic() - started < 40
    final = session_state(lab, session["id"])
    assert final["state"] == "failed" and "timed out after 2 s" in final["error"], final
    assert final["clients"][0]["state"] == "failed"
    assert not udp_processes(str(lab["base"]), "--portbase")
