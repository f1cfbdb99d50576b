"""Who this machine is: MAC address, serial, system UUID and model, read from sysfs.

Every reader takes the sysfs root as a parameter so it can be pointed at a copy; values that
firmware vendors leave as placeholders count as unknown.
"""

from __future__ import annotations

import re
from pathlib import Path

PLACEHOLDERS = {
    "", "none", "n/a", "na", "0", "00000000", "default string", "to be filled by o.e.m.",
    "to be filled by oem", "system serial number", "system product name", "not specified",
    "not applicable", "invalid", "unknown", "123456789", "system version", "chassis serial number",
    "base board serial number", "03000200-0400-0500-0006-000700080009",
    "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
}
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def read_value(path: Path) -> str:
    """Return a sysfs attribute's text, or '' when missing, unreadable or a placeholder."""
    try:
        value = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return "" if value.casefold() in PLACEHOLDERS else value


def first_value(folder: Path, names: tuple[str, ...]) -> str:
    """Return the first usable attribute among `names` in a sysfs folder."""
    for name in names:
        value = read_value(folder / name)
        if value:
            return value
    return ""


def interfaces(sys_root: str | Path = "/sys") -> list[dict]:
    """List network interfaces with their MAC, whether they are hardware and whether up."""
    found = []
    net = Path(sys_root) / "class" / "net"
    for entry in sorted(net.iterdir()) if net.is_dir() else []:
        mac = read_value(entry / "address").lower()
        if entry.name == "lo" or not _MAC.match(mac) or mac == "00:00:00:00:00:00":
            continue
        found.append({
            "name": entry.name, "mac": mac,
            "hardware": (entry / "device").exists(),
            "up": read_value(entry / "operstate") == "up",
        })
    return found


def primary_mac(sys_root: str | Path = "/sys") -> str:
    """Return the MAC that identifies the machine: a hardware NIC that is up, first by name."""
    candidates = interfaces(sys_root)
    if not candidates:
        return ""
    candidates.sort(key=lambda nic: (not nic["hardware"], not nic["up"], nic["name"]))
    return candidates[0]["mac"]


def identify(sys_root: str | Path = "/sys") -> dict:
    """Return mac, serial, system_uuid, model and a stable client_id for this machine."""
    dmi = Path(sys_root) / "class" / "dmi" / "id"
    mac = primary_mac(sys_root)
    serial = first_value(dmi, ("product_serial", "board_serial", "chassis_serial"))
    system_uuid = first_value(dmi, ("product_uuid",)).lower()
    if system_uuid and not _UUID.match(system_uuid):
        system_uuid = ""
    model = first_value(dmi, ("product_name", "product_version", "board_name"))
    # The system UUID survives NIC swaps; MAC is the fallback every machine has.
    client_id = system_uuid or (f"serial:{serial}" if serial else f"mac:{mac}" if mac else "")
    return {"mac": mac, "serial": serial, "system_uuid": system_uuid, "model": model,
            "client_id": client_id}


def parse_cmdline(text: str) -> dict[str, str]:
    """Return the `castor_*` settings the boot loader put on the kernel command line."""
    settings = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep and key.startswith("castor_"):
            settings[key[len("castor_"):]] = value
    return settings


def boot_settings(path: str | Path = "/proc/cmdline") -> dict[str, str]:
    """Read the `castor_*` kernel arguments of this boot (empty when not PXE booted)."""
    try:
        return parse_cmdline(Path(path).read_text())
    except OSError:
        return {}
