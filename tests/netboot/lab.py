"""A lab network in namespaces: a bridge, the lab's own DHCP server, Castor's proxy DHCP + TFTP
and a real Castor server, and one tap per VM.

Layout: namespace `bootenv-<id>` holds the bridge (10.77.0.1/24), Castor (waitress) and the
dnsmasq that `castor boot dnsmasq` configures (proxy mode: no addresses); namespace
`bootenv-<id>-lab` is the lab's DHCP server, joined to the bridge by a veth pair, which hands
out the addresses — as in a lab whose DHCP server Castor does not own.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from app.bootenv import dnsmasq

ROOT = Path(__file__).resolve().parents[2]
BRIDGE_IP = "10.77.0.1"
LAB_DHCP_IP = "10.77.0.2"


def sh(*argv: str, ns: str | None = None, check: bool = True) -> str:
    """Run a command (in a namespace when given) and return its output."""
    full = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    proc = subprocess.run(full, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(full)}: {proc.stderr.strip()}")
    return proc.stdout


class Lab:
    """The namespaces, daemons and server of one netboot test session."""

    def __init__(self, tmp: Path, app_config: dict) -> None:
        self.id = secrets.token_hex(2)
        self.ns = f"bootenv-{self.id}"
        self.lab_ns = f"bootenv-{self.id}-lab"
        self.tmp = tmp
        self.app_config = app_config
        self.procs: list[subprocess.Popen] = []
        self.taps: list[str] = []
        self.server_url = ""

    def start(self) -> Lab:
        """Create the network, start both DHCP servers and Castor."""
        sh("ip", "netns", "add", self.ns)
        sh("ip", "netns", "add", self.lab_ns)
        sh("ip", "link", "set", "lo", "up", ns=self.ns)
        sh("ip", "link", "set", "lo", "up", ns=self.lab_ns)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=self.ns)
        sh("ip", "addr", "add", f"{BRIDGE_IP}/24", "brd", "+", "dev", "br0", ns=self.ns)
        sh("ip", "link", "set", "br0", "up", ns=self.ns)
        veth, peer = f"bootenv{self.id}a", f"bootenv{self.id}b"
        sh("ip", "link", "add", veth, "netns", self.ns, "type", "veth", "peer", "name", peer,
           "netns", self.lab_ns)
        sh("ip", "link", "set", veth, "master", "br0", "up", ns=self.ns)
        sh("ip", "addr", "add", f"{LAB_DHCP_IP}/24", "brd", "+", "dev", peer, ns=self.lab_ns)
        sh("ip", "link", "set", peer, "up", ns=self.lab_ns)
        self._lab_dhcp(peer)
        self._server()
        self._proxy()
        return self

    def _daemon(self, argv: list[str], ns: str | None, log: str) -> subprocess.Popen:
        """Start a process (in a namespace), its output in a log file, and remember it."""
        out = open(self.tmp / log, "w")
        prefix = ["ip", "netns", "exec", ns] if ns else []
        proc = subprocess.Popen([*prefix, *argv], stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def _lab_dhcp(self, interface: str) -> None:
        """The lab's DHCP server: addresses only, no boot information."""
        self._daemon(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
                      f"--interface={interface}", "--bind-interfaces", "--log-dhcp",
                      "--log-facility=-",
                      "--dhcp-range=10.77.0.100,10.77.0.199,255.255.255.0,1h",
                      f"--dhcp-leasefile={self.tmp / 'lab.leases'}",
                      f"--pid-file={self.tmp / 'lab-dnsmasq.pid'}"], self.lab_ns,
                     "lab-dnsmasq.log")

    def _server(self) -> None:
        """Castor itself, on the bridge address, sharing the test app's database."""
        config = {key: value for key, value in self.app_config.items()
                  if isinstance(value, str | int | bool | float) and key.isupper()}
        config["BIND_HOST"] = BRIDGE_IP
        config["SERVER_URL"] = f"http://{BRIDGE_IP}:{{port}}"
        path = self.tmp / "server.json"
        path.write_text(json.dumps(config))
        proc = self._daemon([sys.executable, "-m", "tests.netboot.serve", self.ns, str(path)],
                            None, "server.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = (self.tmp / "server.log").read_text()
            if "PORT " in text:
                port = text.split("PORT ", 1)[1].split()[0]
                self.server_url = f"http://{BRIDGE_IP}:{port}"
                return
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("the Castor server did not start: " + text[-2000:])

    def _proxy(self) -> None:
        """Castor's proxy DHCP + TFTP, configured as `castor boot dnsmasq` writes it."""
        tftp = Path(self.app_config["TFTP_PATH"])
        dnsmasq.link_loaders(tftp)
        text = dnsmasq.render(dnsmasq.ProxyConfig(
            interface="br0", subnet=f"{BRIDGE_IP}/24", server_url=self.server_url,
            tftp_root=str(tftp)))
        conf = self.tmp / "castor-dnsmasq.conf"
        conf.write_text(text)
        # root: the test's TFTP folder sits in a private temporary folder.
        self._daemon(["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}",
                      "--log-facility=-", "--user=root",
                      f"--pid-file={self.tmp / 'castor-dnsmasq.pid'}"], self.ns,
                     "castor-dnsmasq.log")

    def tap(self) -> str:
        """Return a new tap device on the bridge, for one VM."""
        name = f"bootenv{self.id}t{len(self.taps)}"
        sh("ip", "tuntap", "add", "dev", name, "mode", "tap", ns=self.ns)
        sh("ip", "link", "set", name, "master", "br0", "up", ns=self.ns)
        self.taps.append(name)
        return name

    def qemu_wrapper(self) -> Path:
        """Return a script that runs qemu inside the namespace (where the taps are)."""
        path = self.tmp / "qemu-in-netns"
        path.write_text(f"#!/bin/sh\nexec ip netns exec {self.ns} qemu-system-x86_64 \"$@\"\n")
        path.chmod(0o755)
        return path

    def log(self, name: str) -> str:
        """Return one daemon's log so far."""
        path = self.tmp / name
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop every daemon started here and remove the namespaces."""
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        for ns in (self.ns, self.lab_ns):
            sh("ip", "netns", "del", ns, check=False)
