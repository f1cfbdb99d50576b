"""A private multicast LAN: a bridge in its own namespace and one namespace per host."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass, field

SUBNET = "10.231.0"


def _ip(*args: str) -> None:
    _run(["ip", *args])


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def netns_available() -> bool:
    """Tell whether we may create network namespaces here."""
    if shutil.which("ip") is None:
        return False
    name = f"castor-probe-{uuid.uuid4().hex[:6]}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True)
    if probe.returncode != 0:
        return False
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    return True


@dataclass
class Lan:
    """Namespaces joined by one bridge; `hosts[i]` has address SUBNET.(i+1) on `iface`."""

    tag: str
    hosts: list[str] = field(default_factory=list)
    iface: str = "lan0"

    @property
    def bridge_ns(self) -> str:
        """Name of the namespace holding the bridge."""
        return f"{self.tag}-br"

    def address(self, index: int) -> str:
        """Return the address of host `index`."""
        return f"{SUBNET}.{index + 1}"

    def prefix(self, index: int) -> list[str]:
        """Return the argv prefix that runs a command inside host `index`."""
        return ["ip", "netns", "exec", self.hosts[index]]

    def create(self, count: int, mtu: int = 1500) -> Lan:
        """Create the bridge namespace and `count` host namespaces (links of the given MTU)."""
        _ip("netns", "add", self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        _ip("-n", self.bridge_ns, "link", "set", "lo", "up")
        for index in range(count):
            host = f"{self.tag}-h{index}"
            _ip("netns", "add", host)
            self.hosts.append(host)
            outer = self.port(index)
            # Both ends are born in the bridge namespace, then one moves to the host.
            _ip("-n", self.bridge_ns, "link", "add", outer, "type", "veth", "peer", "name",
                self.iface)
            _ip("-n", self.bridge_ns, "link", "set", self.iface, "netns", host)
            _ip("-n", self.bridge_ns, "link", "set", outer, "mtu", str(mtu))
            _ip("-n", host, "link", "set", self.iface, "mtu", str(mtu))
            _ip("-n", self.bridge_ns, "link", "set", outer, "master", "br0")
            _ip("-n", self.bridge_ns, "link", "set", outer, "up")
            _ip("-n", host, "link", "set", "lo", "up")
            # udpcast finds no usable interface without a broadcast address.
            _ip("-n", host, "addr", "add", f"{self.address(index)}/24", "brd", "+", "dev",
                self.iface)
            _ip("-n", host, "link", "set", self.iface, "up")
            _ip("-n", host, "route", "add", "224.0.0.0/4", "dev", self.iface)
        return self

    def port(self, index: int) -> str:
        """Return the name of host `index`'s link on the bridge (in the bridge namespace)."""
        return f"v{self.tag[-4:]}{index}"

    def starve_udp(self, index: int, mbit: float | None) -> None:
        """Squeeze the UDP packets to and from host `index` through `mbit` Mbit/s (None: undo).

        An htb class with a 5-packet queue drops whatever UDP exceeds the rate, so the host
        loses multicast packets while its TCP (HTTP) traffic passes at full speed. (This
        kernel has no netem or tc actions; htb and u32 are what it offers.) Applied inside the
        host namespace for what it sends and on its bridge port for what it gets.
        """
        for namespace, dev in ((self.hosts[index], self.iface),
                               (self.bridge_ns, self.port(index))):
            tc = ["tc", "-n", namespace]
            subprocess.run([*tc, "qdisc", "del", "dev", dev, "root"], capture_output=True)
            if mbit is None:
                continue
            _run([*tc, "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default",
                  "10", "r2q", "1000"])
            _run([*tc, "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb",
                  "rate", "10gbit"])
            _run([*tc, "class", "add", "dev", dev, "parent", "1:", "classid", "1:20", "htb",
                  "rate", f"{mbit}mbit", "ceil", f"{mbit}mbit"])
            _run([*tc, "qdisc", "add", "dev", dev, "parent", "1:20", "pfifo", "limit", "5"])
            _run([*tc, "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "u32",
                  "match", "ip", "protocol", "17", "0xff", "flowid", "1:20"])

    def kill_host(self, index: int) -> None:
        """Kill every process running inside host `index`'s namespace."""
        pids = subprocess.run(["ip", "netns", "pids", self.hosts[index]], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            subprocess.run(["kill", "-9", pid], capture_output=True)

    def kill_processes(self) -> None:
        """Kill every process still running inside the host namespaces."""
        for index in range(len(self.hosts)):
            self.kill_host(index)

    def destroy(self) -> None:
        """Delete every namespace of this LAN (their links go with them)."""
        for name in [*self.hosts, self.bridge_ns]:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        self.hosts.clear()


def make_lan(count: int, mtu: int = 1500) -> Lan:
    """Create a LAN of `count` hosts with a unique tag."""
    return Lan(tag=f"mcp{uuid.uuid4().hex[:5]}").create(count, mtu)
