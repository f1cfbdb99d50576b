"""Run a Castor instance as `castor run` serves it, for the benches: start, watch, stop.

`python -m bench.serve CONFIG_JSON PORT` serves; `Served` starts that in a subprocess and
samples the server's processes (write bytes, CPU, resident memory) while a step runs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """A server subprocess and the figures of its processes."""

    def __init__(self, config: dict, instance_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, CASTOR_INSTANCE_PATH=str(instance_path))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.serve", json.dumps(config), str(self.port)],
            cwd=ROOT, env=env, start_new_session=True)
        for _ in range(300):
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("the Castor server did not start")

    def pids(self) -> list[int]:
        """The server process and its worker."""
        kids = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True,
                              text=True).stdout.split()
        return [self.process.pid, *map(int, kids)]

    def counters(self) -> dict[str, float]:
        """Summed write_bytes, wchar, read_bytes and CPU seconds of the server processes."""
        total = {"write_bytes": 0.0, "wchar": 0.0, "cpu_s": 0.0}
        tick = os.sysconf("SC_CLK_TCK")
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                    key, value = line.split(": ")
                    if key in total:
                        total[key] += int(value)
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total["cpu_s"] += (int(fields[11]) + int(fields[12])) / tick
            except OSError:
                continue
        return total

    def rss_bytes(self) -> int:
        """Resident memory of the server processes now."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def watch(self):
        """Start sampling peak RSS; call the returned function to stop and get the peak."""
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                peak[0] = max(peak[0], self.rss_bytes())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()

        def stop() -> int:
            done.set()
            thread.join()
            return peak[0]

        return stop

    def stop(self) -> None:
        """Stop the server and its worker."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from app import create_app
    from app.server import serve

    serve(create_app(json.loads(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]))
