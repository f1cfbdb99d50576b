"""Compare WSGI servers for Castor's bodies: `python -m bench.wsgi [--mib 1024]`.

Each server runs the same small WSGI app in its own process: PUT streams `wsgi.input` into a
file (1 MiB reads), GET answers a file through `wsgi.file_wrapper`. Per server it reports the
upload and download rate, the server's bytes written (`/proc/<pid>/io` wchar and write_bytes)
against the bytes received, whether a spooled copy of the body appeared in its $TMPDIR, and
its CPU seconds per GiB served.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SERVERS = ("waitress", "gunicorn", "cheroot")
BLOCK = 1 << 20


def app(environ, start_response):
    """Store a PUT body in $BENCH_DIR/body, serve it back on GET."""
    target = Path(os.environ["BENCH_DIR"]) / "body"
    if environ["REQUEST_METHOD"] == "PUT":
        stream = environ["wsgi.input"]
        left = int(environ.get("CONTENT_LENGTH") or 0)
        with open(target, "wb") as handle:
            while left > 0:
                data = stream.read(min(BLOCK, left))
                if not data:
                    break
                handle.write(data)
                left -= len(data)
        start_response("201 Created", [("Content-Length", "0")])
        return [b""]
    handle = open(target, "rb")  # noqa: SIM115 - closed by the file wrapper
    size = os.fstat(handle.fileno()).st_size
    start_response("200 OK", [("Content-Length", str(size)),
                              ("Content-Type", "application/octet-stream")])
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is None:  # cheroot has none
        return iter(lambda: handle.read(BLOCK), b"")
    return wrapper(handle, BLOCK)


def serve(kind: str, port: int) -> None:
    """Run one server kind on a port with the options Castor would use."""
    if kind == "waitress":
        from waitress import serve as waitress_serve

        waitress_serve(app, host="127.0.0.1", port=port, threads=8, _quiet=True,
                       max_request_body_size=1 << 40, recv_bytes=1 << 18)
    elif kind == "gunicorn":
        from gunicorn.app.base import BaseApplication

        class Bench(BaseApplication):
            def load_config(self):
                for key, value in {"bind": f"127.0.0.1:{port}", "workers": 1,
                                   "worker_class": "gthread", "threads": 8,
                                   "loglevel": "warning"}.items():
                    self.cfg.set(key, value)

            def load(self):
                return app

        Bench().run()
    else:
        from cheroot import wsgi

        server = wsgi.Server(("127.0.0.1", port), app, numthreads=8)
        server.start()


def io_counters(pids: list[int]) -> dict[str, int]:
    """Sum wchar, write_bytes and CPU ticks over processes."""
    total = {"wchar": 0, "write_bytes": 0, "cpu": 0}
    for pid in pids:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            key, value = line.split(": ")
            if key in total:
                total[key] += int(value)
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total["cpu"] += int(fields[11]) + int(fields[12])
    return total


def family(pid: int) -> list[int]:
    """The process and its children (gunicorn's worker)."""
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid, *map(int, kids.split())]


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spooled(tmpdir: Path, pids: list[int]) -> bool:
    """Tell whether a server holds a file (deleted or not) in its $TMPDIR."""
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd).startswith(str(tmpdir)):
                    return True
            except OSError:
                continue
    return any(tmpdir.iterdir())


def measure(kind: str, mib: int, work: Path) -> dict:
    """Upload then download `mib` MiB through one server kind; return the figures."""
    tmpdir = work / f"tmp-{kind}"
    tmpdir.mkdir()
    port = free_port()
    env = dict(os.environ, TMPDIR=str(tmpdir), BENCH_DIR=str(work))
    proc = subprocess.Popen([sys.executable, "-m", "bench.wsgi", "--serve", kind,
                             "--port", str(port)], env=env)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)
        pids = family(proc.pid)
        before = io_counters(pids)
        seen = {"spool": False}
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.05):
                seen["spool"] = seen["spool"] or spooled(tmpdir, pids)

        watcher = threading.Thread(target=watch)
        watcher.start()
        block = os.urandom(BLOCK)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        started = time.monotonic()
        conn.putrequest("PUT", "/body")
        conn.putheader("Content-Length", str(mib * BLOCK))
        conn.endheaders()
        for _ in range(mib):
            conn.send(block)
        conn.getresponse().read()
        upload_s = time.monotonic() - started
        done.set()
        watcher.join()
        os.sync()
        middle = io_counters(pids)
        started = time.monotonic()
        conn.request("GET", "/body")
        resp = conn.getresponse()
        received = 0
        while data := resp.read(BLOCK):
            received += len(data)
        download_s = time.monotonic() - started
        after = io_counters(pids)
        conn.close()
        tick = os.sysconf("SC_CLK_TCK")
        gib = mib / 1024
        return {
            "server": kind, "upload_mib_s": mib / upload_s,
            "wchar_ratio": (middle["wchar"] - before["wchar"]) / (mib * BLOCK),
            "write_bytes_ratio": (middle["write_bytes"] - before["write_bytes"]) / (mib * BLOCK),
            "spooled_copy": seen["spool"],
            "upload_cpu_s_per_gib": (middle["cpu"] - before["cpu"]) / tick / gib,
            "download_mib_s": received / BLOCK / download_s,
            "download_cpu_s_per_gib": (after["cpu"] - middle["cpu"]) / tick / gib,
        }
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    """Measure every server kind and print one line each."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--serve", choices=SERVERS)
    parser.add_argument("--port", type=int)
    parser.add_argument("--only", choices=SERVERS, action="append")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    print("load:", Path("/proc/loadavg").read_text().split()[:3])
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_WORK", "/var/tmp")) as work:
        for kind in args.only or SERVERS:
            row = measure(kind, args.mib, Path(work))
            print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in row.items()), flush=True)
    print("load:", Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    main()
