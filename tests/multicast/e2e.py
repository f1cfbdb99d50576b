"""Helpers of the multicast end-to-end tests (tests/multicast/test_e2e.py): disks, the
clients run in the lab's network namespaces, the API and the checks of deployed disks."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from app.extensions import db
from app.models import MulticastSession
from tests.multicast import imagebuilder as ib

ROOT = Path(__file__).resolve().parents[2]
PORT = 8731


def blank_disk(lab, name: str, mib: int) -> Path:
    """Create an empty disk-image file of the given size."""
    path = lab["base"] / name
    with open(path, "wb") as handle:
        handle.truncate(mib << 20)
    return path


def marked_disk(lab, name: str, mib: int) -> Path:
    """Create a disk-image file with a marker pattern where a deploy writes first: the
    table areas at both ends and the first partitions' start."""
    path = blank_disk(lab, name, mib)
    marker = b"castor: not to be written " * 40326  # about 1 MiB
    with open(path, "r+b") as handle:
        for offset in (0, 1 << 20, (mib - 1) << 20):
            handle.seek(offset)
            handle.write(marker[:1 << 20])
    return path


def sha256_of(path: Path) -> str:
    """Return the SHA-256 of a whole disk-image file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while data := handle.read(8 << 20):
            digest.update(data)
    return digest.hexdigest()


def path_without(lab, tool: str) -> str:
    """Return a PATH holding every program of this one but `tool` (an imaging environment
    that lacks it)."""
    folder = lab["base"] / f"path-without-{tool}"
    if not folder.exists():
        folder.mkdir()
        for directory in os.environ.get("PATH", "").split(os.pathsep):
            if not os.path.isdir(directory):
                continue
            for entry in os.scandir(directory):
                target = folder / entry.name
                if entry.name != tool and not target.exists() and os.access(entry.path,
                                                                            os.X_OK):
                    target.symlink_to(entry.path)
    return str(folder)


def start_client(lab, host: int, session: str, disk: Path, client_id: str | None = None,
                 path: str | None = None) -> subprocess.Popen:
    """Run `castor-client multicast` inside host's namespace (with its own PATH if given)."""
    env = dict(os.environ, PATH=path) if path else None
    return subprocess.Popen(
        [*lab["lan"].prefix(host), sys.executable, "-m", "client.main",
         "--server", f"http://{lab['lan'].address(0)}:{PORT}", "--token", lab["token"],
         "multicast", "--session", session, "--disk", str(disk),
         "--client-id", client_id or f"c{host}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


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


def host_receiver(lab, host: int, *markers: str) -> int | None:
    """Return the PID of the udp-receiver running in a host's namespace, if any."""
    pids = subprocess.run(["ip", "netns", "pids", lab["lan"].hosts[host]], capture_output=True,
                          text=True).stdout.split()
    return next((int(p) for p in pids if int(p) in udp_processes("udp-receiver", *markers)),
                None)


def ended(lab, session_id: int) -> dict:
    """Wait for the session to end and return it with its summary."""
    return wait_for(lambda: (s := session_state(lab, session_id))["state"] not in
                    ("waiting", "sending") and s, 90, "the session to end")


def check_every_machine(lab, final: dict, disks: list[Path], results) -> dict:
    """Assert every client exited 0, is done and holds every file; return splits by id."""
    assert [code for code, _ in results] == [0] * len(results), "\n---\n".join(
        out for _, out in results)
    assert final["state"] == "finished", final
    for disk in disks:
        assert ib.deployed_checksums(disk) == lab["sums"]
    stored = sum(s["size_bytes"] for s in final["streams"])
    splits = {m["client_id"]: m for m in final["summary"]["machines"]}
    for machine in splits.values():
        assert machine["state"] == "done", machine
        assert machine["multicast_bytes"] + machine["http_bytes"] == stored, machine
    return splits


def lab_log(lab, session_id: int) -> str:
    """Return the session's log."""
    with lab["app"].app_context():
        db.session.expire_all()
        return db.session.get(MulticastSession, session_id).log


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def received(lab, session_id: int, client_id: str, stream: int) -> int:
    """Return the bytes a client last reported restored from one stream."""
    clients = session_state(lab, session_id)["clients"]
    member = next((c for c in clients if c["client_id"] == client_id), None)
    return int(((member or {}).get("progress") or {}).get(str(stream), {}).get("bytes", 0))


def assert_file_image_deployed(lab, disk: Path) -> None:
    """Check a disk deployed from the WIM image: the source's labels and ext4 UUID, the
    filesystems filling their partitions, and clean fsck runs."""
    source = {p["number"]: p for p in json.loads(
        (lab["base"] / "storage" / "images" / "wim" / "schema.json").read_text())
        ["disks"][0]["partitions"]}
    for number, part in enumerate(ib.partitions(str(disk)), start=1):
        dev = ib.attach(str(disk), part["start"] * 512, part["size"] * 512)
        try:
            found = dict(line.split("=", 1) for line in ib.sh(
                "blkid", "-p", "-o", "export", dev).splitlines() if "=" in line)
            fs = source[number]["filesystem"]
            assert found["TYPE"] == fs["type"] and found.get("LABEL") == fs["label"], found
            if fs["type"] == "ext4":
                assert found["UUID"] == fs["uuid"], found
                subprocess.run(["e2fsck", "-fn", dev], check=True, capture_output=True)
                head = ib.sh("dumpe2fs", "-h", dev)
                size = (int(head.split("Block count:")[1].split()[0])
                        * int(head.split("Block size:")[1].split()[0]))
                assert size > part["size"] * 512 - (8 << 20), (size, part)
            else:
                subprocess.run(["ntfsfix", "-n", dev], check=True, capture_output=True)
        finally:
            ib.detach(dev)
