"""Multicast end to end: a bridge, one sender and three receivers in network namespaces.

The server runs inside the sender's namespace (HTTP for the clients' join and reports), the
test drives sessions through the API, the supervisor runs udp-sender in the sender namespace
through MULTICAST_COMMAND_PREFIX, and each client runs `castor-client multicast` inside its
own namespace onto a disk-image file. Every deployed disk is checked file by file.

The fault tests (a receiver killed, restarted, losing packets, the sender killed, a stream
over its time limit) check that no machine fails for what HTTP can fix: each completes the
stream it missed over HTTP and ends with the same files. A file (WIM) image of the same
source disk, uploaded by `castor-client upload`, goes through the same sessions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest

from app.extensions import db
from app.models import (
    ApiToken,
    History,
    Image,
    MulticastPort,
    MulticastSession,
    ProfileScript,
    ScriptModule,
    User,
)
from app.models.profiles import default_profile_for
from tests.conftest import make_app, needs_root
from tests.multicast import imagebuilder as ib
from tests.multicast.e2e import (
    PORT,
    ROOT,
    _alive,
    api,
    assert_file_image_deployed,
    blank_disk,
    check_every_machine,
    create,
    ended,
    finish_clients,
    host_receiver,
    lab_log,
    marked_disk,
    path_without,
    received,
    session_state,
    sha256_of,
    start_client,
    udp_processes,
    wait_for,
)
from tests.multicast.helpers import kill_leftovers
from tests.multicast.netns import make_lan, netns_available

MULTICAST = {"MULTICAST_STREAM_WAIT": 5, "MULTICAST_CLIENT_GRACE": 60,
             "MULTICAST_PORT_START": 9100, "MULTICAST_PORT_END": 9199,
             "MULTICAST_INTERFACE": "lan0", "MULTICAST_RECEIVE_TIMEOUT": 12}
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
    settings = {**MULTICAST, "MULTICAST_COMMAND_PREFIX": lan.prefix(0)}
    try:
        app = make_app(base, **settings)
        with app.app_context():
            user = User(username="admin", is_admin=True)
            user.set_password("correct horse")
            image = Image(name="lab", schema_json=json.dumps(schema), protected=True)
            image.profiles.append(default_profile_for("block", "linux"))
            # The same per-disk steps as unicast: scripts before imaging and after file copy.
            for when in ("before_imaging", "after_file_copy"):
                script = ScriptModule(name=f"log-{when}", contents=(
                    f'echo "{when} $CASTOR_DISK" >> {base / "scripts.log"}\n'))
                image.profiles[0].scripts.append(ProfileScript(module=script, run_when=when))
            slow = default_profile_for("block", "linux")
            slow.name = "slow"
            # Slow enough to kill a receiver mid-stream; also exercises the profile's args.
            slow.multicast_sender_args = "--max-bitrate 60m"
            image.profiles.append(slow)
            row, token = ApiToken.issue(user, "mc")
            db.session.add_all([user, image, row])
            db.session.commit()
        config = {k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "STORAGE_PATH",
                                             "SECRET_KEY", "REDIS_URL", "TESTING",
                                             *settings)}
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


@pytest.fixture(scope="module")
def wim_image(lab):
    """The lab's source disk uploaded as file (WIM) image `wim` by the real client."""
    with lab["app"].app_context():
        image = Image(name="wim", image_type="file", environment="linux")
        image.profiles.append(default_profile_for("file", "linux"))
        slow = default_profile_for("file", "linux")
        slow.name = "slow"
        slow.multicast_sender_args = "--max-bitrate 60m"
        image.profiles.append(slow)
        db.session.add(image)
        db.session.commit()
    upload = subprocess.run(
        [*lab["lan"].prefix(1), sys.executable, "-m", "client.main", "--server",
         f"http://{lab['lan'].address(0)}:{PORT}", "--token", lab["token"], "upload",
         "--image", "wim", "--disk", str(lab["base"] / "source.img")],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert upload.returncode == 0, upload.stderr[-3000:]
    folder = lab["base"] / "storage" / "images" / "wim"
    manifest = json.loads((folder / "manifest.json").read_text())
    files = [f for f in manifest["files"] if f["kind"] == "wim"]
    assert [(f["partition"], f["filesystem"]) for f in files] == [(1, "ext4"), (2, "ntfs")]
    # The stream must span several 16 MiB chunks for the HTTP completion to resume mid-file.
    assert all(f["size_bytes"] > 2 * f["chunk_bytes"] for f in files), files
    return manifest


def test_three_receivers_get_every_file(lab):
    """Three disks of different sizes receive both partitions and run the deploy's scripts."""
    session = create(lab, name="class-a", expected_clients=3, max_wait_seconds=20)
    assert [s["portbase"] for s in session["streams"]] == [9100, 9102]
    disks = [blank_disk(lab, f"a{i}.img", mib) for i, mib in enumerate((460, 600, 800))]
    procs = [start_client(lab, host, "class-a", disk) for host, disk in enumerate(disks, 1)]
    results = finish_clients(procs)
    final = ended(lab, session["id"])
    splits = check_every_machine(lab, final, disks, results)
    assert final["summary"]["multicast_bytes"] > 0, splits
    # Multicast runs the per-disk steps unicast runs, before imaging included.
    lines = (lab["base"] / "scripts.log").read_text().splitlines()
    for when in ("before_imaging", "after_file_copy"):
        assert len({line for line in lines if line.startswith(f"{when} /dev/")}) == 3, lines
    with lab["app"].app_context():
        rows = db.session.scalars(db.select(History).filter_by(object_type="image",
                                                                action="multicast")).all()
        row = next(r for r in rows if r.data["session"] == "class-a")
        assert row.data["state"] == "finished"
        assert {m["client_id"] for m in row.data["machines"]} == {"c1", "c2", "c3"}
        assert db.session.scalar(db.select(db.func.count(MulticastPort.portbase))) == 0


def test_refused_receivers_write_nothing_and_do_not_hold_up_the_others(lab):
    """A receiver with too small a disk (refused by the planner when it joins) and one whose
    imaging environment lacks partclone.ntfs (refused by its own preflight) leave their disks
    byte-identical and say why on the session; the sender stops waiting for them, and the
    two others start at once and end verified."""
    session = create(lab, name="class-f", expected_clients=4, max_wait_seconds=120)
    good = [blank_disk(lab, f"f{i}.img", 500) for i in range(2)]
    small, no_tool = marked_disk(lab, "f-small.img", 64), marked_disk(lab, "f-tool.img", 500)
    before = {disk: sha256_of(disk) for disk in (small, no_tool)}
    procs = [start_client(lab, 1, "class-f", good[0]), start_client(lab, 2, "class-f", good[1]),
             # Refused machines never run udp-receiver: two can share host 3.
             start_client(lab, 3, "class-f", small, client_id="small"),
             start_client(lab, 3, "class-f", no_tool, client_id="no-tool",
                          path=path_without(lab, "partclone.ntfs"))]
    # udp-sender alone would wait --max-wait (120 s) for the two that never connect.
    results = finish_clients(procs, timeout=100)
    final = ended(lab, session["id"])
    assert [code for code, _ in results] == [0, 0, 1, 1], "\n---\n".join(
        out for _, out in results)
    assert final["state"] == "finished", final
    started = datetime.fromisoformat(final["started_at"])
    assert (started - datetime.fromisoformat(final["created_at"])).total_seconds() < 60, final
    for disk in good:
        assert ib.deployed_checksums(disk) == lab["sums"]
    for disk, digest in before.items():
        assert sha256_of(disk) == digest, f"{disk.name} was written by a refused deploy"
    machines = {m["client_id"]: m for m in final["summary"]["machines"]}
    assert machines["c1"]["state"] == machines["c2"]["state"] == "done", machines
    assert machines["small"]["state"] == machines["no-tool"]["state"] == "failed"
    too_small = "refused at join, nothing was written: destination disk 0 is too small"
    assert machines["small"]["error"].startswith(too_small), machines["small"]
    no_partclone = ("deploy refused, nothing was written: missing tools in this imaging "
                    "environment: partclone.ntfs")
    assert machines["no-tool"]["error"] == no_partclone, machines["no-tool"]
    assert "destination disk 0 is too small" in results[2][1]
    assert no_partclone in results[3][1]
    log = lab_log(lab, session["id"])
    assert f"client small: failed: {too_small}" in log
    assert f"client no-tool: failed: {no_partclone}" in log
    assert "stream 0: starting with the 2 connected receiver(s)" in log, log


def test_killed_receiver_completes_over_http_and_late_joiner_is_refused(lab):
    """A receiver whose udp-receiver dies mid-stream finishes that stream over HTTP."""
    session = create(lab, name="class-b", profile="slow", expected_clients=3,
                     max_wait_seconds=20, retries_until_drop=12)
    disks = [blank_disk(lab, f"b{i}.img", 500) for i in range(3)]
    procs = [start_client(lab, host, "class-b", disk) for host, disk in enumerate(disks, 1)]
    wait_for(lambda: session_state(lab, session["id"])["state"] == "sending", 30, "sending")
    late = api(lab, "post", "/multicast/join",
               {"session": "class-b", "client_id": "late", "disks": [{"size_bytes": 1 << 30}]})
    assert late.status_code == 409
    assert "sending" in late.get_json()["error"]
    pid = wait_for(lambda: host_receiver(lab, 3), 20, "the victim's udp-receiver")
    time.sleep(3.0)  # let it take part in the transfer first
    os.kill(pid, signal.SIGKILL)
    results = finish_clients(procs, timeout=180)
    final = ended(lab, session["id"])
    splits = check_every_machine(lab, final, disks, results)
    victim = splits["c3"]
    assert victim["http_bytes"] > 0 and victim["fell_back"][0]["stream"] == 0, victim
    text = victim["fell_back"][0]["text"]
    # Bytes short of a whole verified 16 MiB chunk are fetched again over HTTP.
    assert "udp-receiver failed" in text and "HTTP" in text, text
    assert "damaged" not in results[2][1]
    assert "stream 0: multicast" in results[2][1]  # the client's own log says it too
    assert f"client c3: {text}" in lab_log(lab, session["id"])


@pytest.mark.boot_full  # make test-boot
def test_receiver_losing_packets_ends_verified(lab):
    """A receiver losing most of its UDP packets is slowed or dropped, never failed."""
    lab["lan"].starve_udp(3, 8)
    try:
        session = create(lab, name="class-loss", expected_clients=3, max_wait_seconds=20,
                         retries_until_drop=6)
        disks = [blank_disk(lab, f"l{i}.img", 500) for i in range(3)]
        procs = [start_client(lab, host, "class-loss", disk)
                 for host, disk in enumerate(disks, 1)]
        results = finish_clients(procs, timeout=300)
    finally:
        lab["lan"].starve_udp(3, None)
    final = ended(lab, session["id"])
    splits = check_every_machine(lab, final, disks, results)
    print({k: (m["multicast_bytes"], m["http_bytes"]) for k, m in splits.items()})


@pytest.mark.boot_full  # make test-boot
def test_receiver_starved_of_cpu_is_dropped_and_completes_over_http(lab):
    """A receiver frozen for longer than the sender's patience is dropped, then uses HTTP."""
    session = create(lab, name="class-cpu", profile="slow", expected_clients=3,
                     max_wait_seconds=20, retries_until_drop=5)
    disks = [blank_disk(lab, f"p{i}.img", 500) for i in range(3)]
    procs = [start_client(lab, host, "class-cpu", disk) for host, disk in enumerate(disks, 1)]
    pid = wait_for(lambda: host_receiver(lab, 3), 30, "the victim's udp-receiver")
    time.sleep(1.0)
    os.kill(pid, signal.SIGSTOP)
    time.sleep(4.0)
    os.kill(pid, signal.SIGCONT)
    results = finish_clients(procs, timeout=240)
    final = ended(lab, session["id"])
    splits = check_every_machine(lab, final, disks, results)
    assert splits["c3"]["http_bytes"] > 0, splits
    assert "stopped arriving" in splits["c3"]["fell_back"][0]["text"]


@pytest.mark.boot_full  # about 2 minutes: in make test-boot
def test_restarted_client_rejoins_and_ends_verified(lab):
    """A machine killed mid-stream and started again joins again and completes by HTTP."""
    session = create(lab, name="class-r", profile="slow", expected_clients=2,
                     max_wait_seconds=20, retries_until_drop=6)
    disks = [blank_disk(lab, f"r{i}.img", 500) for i in range(2)]
    procs = [start_client(lab, host, "class-r", disk) for host, disk in enumerate(disks, 1)]
    wait_for(lambda: host_receiver(lab, 2), 30, "the victim's udp-receiver")
    time.sleep(1.0)
    lab["lan"].kill_host(2)
    procs[1].wait()
    time.sleep(0.5)
    procs[1] = start_client(lab, 2, "class-r", disks[1])
    results = finish_clients(procs, timeout=180)
    final = ended(lab, session["id"])
    splits = check_every_machine(lab, final, disks, results)
    assert splits["c2"]["http_bytes"] > 0, splits
    assert "client c2: joined again while stream 0 was sending" in lab_log(lab, session["id"])


@pytest.mark.boot_full  # make test-boot
def test_killed_sender_lets_every_machine_finish(lab):
    """The sender of stream 0 dies mid-stream: everyone completes it by HTTP, the session
    goes on with stream 1."""
    session = create(lab, name="class-s", profile="slow", expected_clients=3,
                     max_wait_seconds=20)
    disks = [blank_disk(lab, f"s{i}.img", 500) for i in range(3)]
    procs = [start_client(lab, host, "class-s", disk) for host, disk in enumerate(disks, 1)]
    marker = f"--portbase {session['streams'][0]['portbase']} "
    wait_for(lambda: session_state(lab, session["id"])["state"] == "sending", 30, "sending")
    time.sleep(1.5)
    [sender] = udp_processes("udp-sender", marker, str(lab["base"]))
    os.kill(sender, signal.SIGKILL)
    results = finish_clients(procs, timeout=240)
    final = ended(lab, session["id"])
    splits = check_every_machine(lab, final, disks, results)
    assert "udp-sender of stream 0 exited" in final["error"], final
    assert final["streams"][0]["state"] == "failed"
    assert final["streams"][1]["state"] in ("done", "failed")
    assert all(m["fell_back"] and m["fell_back"][0]["stream"] == 0 for m in splits.values())
    for _code, output in results:
        assert "stopped arriving" in output and "damaged" not in output


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


@pytest.mark.boot_full  # make test-boot
def test_partition_timeout_is_completed_over_http(lab):
    """Streams over their time limit are stopped; the machine completes them by HTTP and the
    session is flagged as one where every machine fell back."""
    session = create(lab, name="class-e", profile="slow", expected_clients=1,
                     partition_timeout_seconds=2)
    disk = blank_disk(lab, "e0.img", 500)
    proc = start_client(lab, 1, "class-e", disk)
    results = finish_clients([proc], timeout=180)
    final = ended(lab, session["id"])
    [machine] = check_every_machine(lab, final, [disk], results).values()
    assert "stream 0 timed out after 2 s" in final["error"], final
    assert final["streams"][0]["state"] == "timed_out"
    assert machine["http_bytes"] > 0
    assert final["summary"]["all_fell_back"] is True
    assert "warning: " in lab_log(lab, session["id"])
    assert not udp_processes(str(lab["base"]), "--portbase")


def test_file_image_reaches_every_receiver(lab, wim_image):
    """A WIM image (ext4 and NTFS, gzip) multicast to two disks of different sizes: each
    gets filesystems made before the apply, with the source's labels and every file."""
    session = create(lab, image="wim", name="class-w", expected_clients=2, max_wait_seconds=20)
    with lab["app"].app_context():
        streams = db.session.get(MulticastSession, session["id"]).streams
        assert [(s["kind"], s["filesystem"]) for s in streams] == [("wim", "ext4"),
                                                                   ("wim", "ntfs")]
    disks = [blank_disk(lab, f"w{i}.img", mib) for i, mib in enumerate((460, 700))]
    procs = [start_client(lab, host, "class-w", disk) for host, disk in enumerate(disks, 1)]
    results = finish_clients(procs)
    final = ended(lab, session["id"])
    splits = check_every_machine(lab, final, disks, results)
    assert all(m["multicast_bytes"] > 0 for m in splits.values()), splits
    for disk in disks:
        assert_file_image_deployed(lab, disk)


@pytest.mark.boot_full  # about 40 s: in make test-boot
def test_file_image_stream_cut_mid_apply_completes_over_http(lab, wim_image):
    """A receiver whose udp-receiver dies while wimlib applies the stream goes on over HTTP
    from the last verified chunk: the apply reads one unbroken stream and ends verified."""
    session = create(lab, image="wim", name="class-wk", profile="slow", expected_clients=2,
                     max_wait_seconds=20, retries_until_drop=12)
    disks = [blank_disk(lab, f"wk{i}.img", 500) for i in range(2)]
    procs = [start_client(lab, host, "class-wk", disk) for host, disk in enumerate(disks, 1)]
    pid = wait_for(lambda: host_receiver(lab, 2), 30, "the victim's udp-receiver")
    # Cut once the apply holds a verified chunk, with more than one chunk still to come.
    wait_for(lambda: received(lab, session["id"], "c2", 0) >= ib.CHUNK_BYTES, 60,
             "the victim to restore its first chunk")
    os.kill(pid, signal.SIGKILL)
    results = finish_clients(procs, timeout=180)
    final = ended(lab, session["id"])
    splits = check_every_machine(lab, final, disks, results)
    victim = splits["c2"]
    [fell_back] = victim["fell_back"]
    assert fell_back["stream"] == 0 and "udp-receiver failed" in fell_back["text"], victim
    assert "multicast" in fell_back["text"] and "then HTTP" in fell_back["text"], victim
    # Stream 1 came by multicast; of stream 0, whole verified chunks did, the rest by HTTP.
    first = victim["multicast_bytes"] - final["streams"][1]["size_bytes"]
    assert first > 0 and first % ib.CHUNK_BYTES == 0, victim
    assert victim["http_bytes"] == final["streams"][0]["size_bytes"] - first, victim
    assert "restored again over HTTP" not in results[1][1]
    for disk in disks:
        assert_file_image_deployed(lab, disk)

