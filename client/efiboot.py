"""The EFI boot entry of an ESP, recorded at upload so a deploy can write it into NVRAM.

A deployed disk has no NVRAM entry on its new machine; unless its loader sits at the
removable-media path, the firmware only starts it through an entry the client writes
(`client.bootcfg.update_nvram`). At upload the entry is taken from this machine's NVRAM
when it booted in EFI mode and has one for this ESP (`efibootmgr -v`), else from the ESP's
own files: the loader a distribution installs under \\EFI\\<vendor>\\.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from client.run import CommandError, run

log = logging.getLogger("castor.client")

ESP_TYPES = {"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "ef"}
EFI_FIRMWARE_DIR = Path("/sys/firmware/efi")
# efibootmgr -v: "Boot0003* debian\tHD(1,GPT,<guid>,0x800,0x32000)/File(\EFI\debian\x.efi)"
VERBOSE_ENTRY = re.compile(
    r"^Boot([0-9A-Fa-f]{4})\*?\s+(?P<label>[^\t]*?)\s*\t.*?"
    r"HD\(\d+,GPT,(?P<guid>[0-9A-Fa-f-]{36}),[^)]*\)/File\((?P<loader>[^)]+)\)", re.I)
BOOT_ORDER = re.compile(r"^BootOrder:\s*([0-9A-Fa-f,]+)", re.M)
# Loaders a distribution installs, best first (shim before the GRUB it chains to).
PREFERRED = ("shimx64.efi", "grubx64.efi", "bootmgfw.efi", "systemd-bootx64.efi")
LABELS = {"microsoft": "Windows Boot Manager", "systemd": "Linux Boot Manager"}


def is_esp(part: dict) -> bool:
    """Tell whether a schema partition is an EFI system partition."""
    return str(part.get("type", "")).upper() in ESP_TYPES or part.get("type") == "ef"


def entries_from_nvram(text: str, part_guid: str) -> list[dict]:
    """Return the NVRAM boot entries (in BootOrder) that start a loader on this partition."""
    order = BOOT_ORDER.search(text)
    rank = {n.upper(): i for i, n in enumerate(order.group(1).split(","))} if order else {}
    found = []
    for line in text.splitlines():
        match = VERBOSE_ENTRY.match(line.strip())
        if match and match.group("guid").upper() == part_guid.upper():
            found.append((rank.get(match.group(1).upper(), len(rank)),
                          {"label": match.group("label").strip(),
                           "loader": match.group("loader")}))
    return [entry for _rank, entry in sorted(found, key=lambda item: item[0])]


def entry_from_listing(listing: str) -> dict | None:
    """Pick the loader of a recursive ESP listing (`mdir -/ -b`): vendor folders only.

    \\EFI\\BOOT\\ is the removable-media fallback, which firmware finds without an entry.
    """
    candidates = []
    for line in listing.splitlines():
        path = line.strip().removeprefix("::")
        parts = [p for p in path.split("/") if p]
        if len(parts) < 3 or parts[0].upper() != "EFI" or parts[1].upper() == "BOOT":
            continue
        name = parts[-1].lower()
        if not name.endswith(".efi") or name not in PREFERRED:
            continue
        candidates.append((PREFERRED.index(name), len(parts), parts))
    if not candidates:
        return None
    _rank, _depth, parts = min(candidates)
    vendor = parts[1]
    return {"label": LABELS.get(vendor.lower(), vendor),
            "loader": "\\" + "\\".join(parts)}


def efi_boot_entry(dev: str, part: dict, firmware_dir: Path = EFI_FIRMWARE_DIR) -> dict | None:
    """Return the boot entry {label, loader} of the ESP on `dev`, or None when it has none."""
    guid = part.get("uuid") or ""
    if guid and firmware_dir.exists():
        try:
            entries = entries_from_nvram(run(["efibootmgr", "-v"]), guid)
        except CommandError as exc:
            log.warning("efibootmgr -v failed, reading the ESP instead: %s", exc)
            entries = []
        if entries:
            return entries[0]
    try:
        listing = run(["mdir", "-/", "-b", "-i", dev, "::/EFI"])
    except CommandError as exc:
        log.warning("cannot list the ESP on %s: %s", dev, exc)
        return None
    return entry_from_listing(listing)
