"""dnsmasq configuration for a lab whose DHCP server Castor does not own: proxy DHCP + TFTP.

In proxy mode dnsmasq hands out no addresses; it answers only PXE clients with where to boot
from. Firmware PXE gets iPXE over TFTP (`undionly.kpxe` for BIOS, `snponly.efi` or
`ipxe.efi` for UEFI, from Debian's `ipxe` package); iPXE, once running, is sent to Castor's
`/boot/ipxe?mac=${net0/mac}`, which answers the machine's task or the default menu.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

IPXE_DIR = Path("/usr/lib/ipxe")
BIOS_LOADER = "undionly.kpxe"
UEFI_LOADERS = ("snponly.efi", "ipxe.efi")
# PXE client system types (RFC 4578) dnsmasq knows by name: BIOS and the two x86-64 UEFI codes.
UEFI_CSAS = ("BC_EFI", "x86-64_EFI")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._:/?=&%${}\-\[\]@+~]+$")


@dataclass(frozen=True)
class ProxyConfig:
    """What the proxy DHCP configuration needs to know."""

    interface: str
    subnet: str  # the lab network, e.g. 192.168.10.0/24
    server_url: str  # Castor's URL as endpoints reach it
    tftp_root: str
    uefi_loader: str = UEFI_LOADERS[0]


def _checked(value: str, what: str) -> str:
    """Refuse a value that could end a config line or add an option to it."""
    if not _SAFE_VALUE.match(value) or "," in value:
        raise ValueError(f"{what} {value!r} has characters a dnsmasq line cannot hold")
    return value


def boot_url(server_url: str) -> str:
    """Return the URL iPXE clients fetch their script from.

    iPXE expands ${net0/mac} and the SMBIOS product name (URL-encoded), which the server
    compares with the profiles' model match.
    """
    return server_url.rstrip("/") + "/boot/ipxe?mac=${net0/mac}&model=${product:uristring}"


def render(config: ProxyConfig) -> str:
    """Return the dnsmasq configuration text of Castor's proxy DHCP and TFTP."""
    network = ipaddress.ip_network(config.subnet, strict=False)
    if config.uefi_loader not in UEFI_LOADERS:
        raise ValueError(f"the UEFI loader is one of {', '.join(UEFI_LOADERS)}")
    url = _checked(boot_url(config.server_url), "server URL")
    lines = [
        "# Castor network boot: proxy DHCP for PXE clients, TFTP for iPXE (castor boot dnsmasq).",
        "# Addresses stay with the lab's DHCP server; this answers PXE requests only.",
        "port=0",
        f"interface={_checked(config.interface, 'interface')}",
        "bind-interfaces",
        f"dhcp-range={network.network_address},proxy,{network.netmask}",
        "enable-tftp",
        f"tftp-root={_checked(config.tftp_root, 'TFTP folder')}",
        "log-dhcp",
        "# iPXE says so in its user class: send it to Castor over HTTP, others get iPXE first.",
        "dhcp-userclass=set:ipxe,iPXE",
        'pxe-prompt="Castor",0',
        f'pxe-service=tag:!ipxe,x86PC,"Castor (BIOS)",{BIOS_LOADER}',
        f'pxe-service=tag:ipxe,x86PC,"Castor (BIOS)",{url}',
    ]
    for csa in UEFI_CSAS:
        lines += [f'pxe-service=tag:!ipxe,{csa},"Castor (UEFI)",{config.uefi_loader}',
                  f'pxe-service=tag:ipxe,{csa},"Castor (UEFI)",{url}']
    lines.append(f"dhcp-boot=tag:ipxe,{url}")
    return "\n".join(lines) + "\n"


def parse(text: str) -> list[tuple[str, str]]:
    """Return a dnsmasq config's (option, value) pairs in order, comments left out."""
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        pairs.append((key, value))
    return pairs


def link_loaders(tftp_root: Path, ipxe_dir: Path = IPXE_DIR) -> list[Path]:
    """Put Debian's iPXE loaders into the TFTP folder (symlinks, so upgrades reach them)."""
    tftp_root.mkdir(parents=True, exist_ok=True)
    linked = []
    for name in (BIOS_LOADER, *UEFI_LOADERS):
        source = ipxe_dir / name
        if not source.exists():
            raise FileNotFoundError(f"{source} is missing: install Debian's ipxe package")
        target = tftp_root / name
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(source)
        linked.append(target)
    return linked


def interface_subnet(interface: str) -> str:
    """Return the first IPv4 network of an interface (from `ip -j addr`)."""
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", interface],
                         capture_output=True, text=True, check=True).stdout
    for entry in json.loads(out or "[]"):
        for addr in entry.get("addr_info", []):
            if addr.get("family") == "inet":
                return str(ipaddress.ip_interface(f"{addr['local']}/{addr['prefixlen']}").network)
    raise ValueError(f"{interface} has no IPv4 address: pass --subnet")
