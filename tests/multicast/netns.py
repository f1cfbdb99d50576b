"""A private multicast LAN: a bridge in its own namespace and one namespace per host."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass, field

SUBNET = "10.231.0"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


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
            outer = f"v{self.tag[-4:]}{index}"
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

    def kill_processes(self) -> None:
        """Kill every process still running inside the host namespaces."""
        for host in self.hosts:
            pids = subprocess.run(["ip", "netns", "pids", host], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-9", pid], capture_output=True)

    def destroy(self) -> None:
        """Delete every namespace of this LAN (their links go with them)."""
        for name in [*self.hosts, self.bridge_ns]:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        self.hosts.clear()


def make_lan(count: int, mtu: int = 1500) -> Lan:
    """Create a LAN of `count` hosts with a unique tag."""
    return Lan(tag=f"cm{uuid.uuid4().hex[:5]}").create(count, mtu)
