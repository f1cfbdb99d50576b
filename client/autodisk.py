"""Automatic disk selection: which local disks a task images when no --disk is given.

Kernel disk order is not stable across boots, and a missing disk must never make the client
image another one, so selection fails closed: candidates are the fixed, writable disks that
are not the medium the environment runs from; a schema disk goes to its *Destination* when
the deploy schema names one, else to the candidate whose serial or WWN matches, else to the
one candidate left that is big enough. Anything else is ambiguous and refused with a message
that says how to choose (`--disk`, or the deploy schema's Destination).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from client.run import ClientError, run

# Device types and name prefixes that are never imaging targets.
SKIPPED_TYPES = {"rom", "loop", "part", "lvm", "crypt", "raid1", "md"}
SKIPPED_PREFIXES = ("ram", "zram", "loop", "sr", "fd", "nbd", "dm-")


class DiskSelectionError(ClientError):
    """No safe choice of disks: nothing was written."""


@dataclass(frozen=True)
class Candidate:
    """A local disk that may be imaged."""

    path: str
    size_bytes: int
    serial: str = ""
    wwn: str = ""
    model: str = ""
    table: str = ""

    def label(self) -> str:
        """Return a one-line description for messages."""
        extra = ", ".join(v for v in (self.model, f"serial {self.serial}" if self.serial else "",
                                      f"{self.size_bytes / 1e9:.1f} GB") if v)
        return f"{self.path} ({extra})"


@dataclass(frozen=True)
class Want:
    """One schema disk to place: its index, an optional Destination and identity hints."""

    index: int
    destination: str = ""
    min_bytes: int | None = None
    serial: str = ""
    wwn: str = ""
    label: str = field(default="", compare=False)


def _number(value) -> int:
    """Return lsblk's size as an int (it prints bytes with -b, strings in some versions)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _flag(value) -> bool:
    """Return an lsblk boolean (true/false, or "1"/"0" in older versions)."""
    return value in (True, 1, "1", "true")


def _mounted(device: dict) -> bool:
    """Tell whether the device or anything on it is mounted (the running system's medium)."""
    points = device.get("mountpoints") or [device.get("mountpoint")]
    if any(points):
        return True
    return any(_mounted(child) for child in device.get("children") or [])


def candidates(lsblk: dict, boot_disks: set[str] = frozenset(), *,
               loops: bool = False) -> list[Candidate]:
    """Return the disks of `lsblk --json -O -b` that may be imaged, in name order.

    `loops` admits loop devices (disk-image files attached on purpose, as in tests).
    """
    found = []
    for device in lsblk.get("blockdevices", []):
        name = device.get("name") or ""
        path = device.get("path") or f"/dev/{name}"
        is_loop = loops and device.get("type") == "loop"
        if ((not is_loop and (device.get("type") in SKIPPED_TYPES
                              or name.startswith(SKIPPED_PREFIXES)))
                or _flag(device.get("rm")) or _flag(device.get("ro"))
                or path in boot_disks or name in boot_disks or _mounted(device)):
            continue
        size = _number(device.get("size"))
        if size <= 0:
            continue
        found.append(Candidate(path=path, size_bytes=size,
                               serial=(device.get("serial") or "").strip(),
                               wwn=(device.get("wwn") or "").strip(),
                               model=(device.get("model") or "").strip(),
                               table=device.get("pttype") or ""))
    return sorted(found, key=lambda c: c.path)


def _too_small(want: Want, disk: Candidate) -> bool:
    """Tell whether a disk is smaller than the schema disk's minimum."""
    return want.min_bytes is not None and disk.size_bytes < want.min_bytes


def _size_message(want: Want, disk: Candidate) -> str:
    """Say that a disk is too small for a schema disk."""
    return (f"{disk.label()} is smaller than the {want.min_bytes / 1e9:.1f} GB the image's "
            f"disk {want.index} needs")


def select_for_deploy(found: list[Candidate], wants: list[Want]) -> list[str]:
    """Return one device path per schema disk, in the schema's order, or refuse."""
    if not found:
        raise DiskSelectionError("no disk to deploy to: no fixed, writable disk was found")
    free = list(found)
    chosen: dict[int, Candidate] = {}
    for want in wants:  # the deploy schema's Destination wins
        if not want.destination:
            continue
        match = [c for c in free if want.destination in (c.path, c.path.rsplit("/", 1)[-1])]
        if not match:
            raise DiskSelectionError(
                f"the deploy schema sends disk {want.index} to {want.destination}, which is "
                f"not one of the disks found: {', '.join(c.label() for c in found)}")
        chosen[want.index] = match[0]
        free.remove(match[0])
    for want in wants:  # then a disk that is the same physical drive
        if want.index in chosen or not (want.serial or want.wwn):
            continue
        match = [c for c in free if (want.wwn and c.wwn == want.wwn)
                 or (want.serial and c.serial == want.serial)]
        if len(match) == 1:
            chosen[want.index] = match[0]
            free.remove(match[0])
    for want in wants:
        if want.index in chosen:
            continue
        fits = [c for c in free if not _too_small(want, c)]
        if not fits:
            detail = "; ".join(_size_message(want, c) for c in free) or "no disk is left"
            raise DiskSelectionError(f"no disk for the image's disk {want.index}: {detail}")
        if len(fits) > 1:
            raise DiskSelectionError(
                f"{len(fits)} disks could take the image's disk {want.index} "
                f"({', '.join(c.label() for c in fits)}); refusing to guess: set its "
                f"Destination in the profile's deploy schema or pass --disk")
        chosen[want.index] = fits[0]
        free.remove(fits[0])
    for want in wants:
        if _too_small(want, chosen[want.index]):
            raise DiskSelectionError(_size_message(want, chosen[want.index]))
    return [chosen[want.index].path for want in wants]


def select_for_upload(found: list[Candidate]) -> list[str]:
    """Return the disks an upload captures: every candidate with a partition table."""
    tables = [c for c in found if c.table]
    if not tables:
        names = ", ".join(c.label() for c in found) or "none"
        raise DiskSelectionError(f"no disk with a partition table to upload (disks: {names})")
    return [c.path for c in tables]


def wants_from_profile(options: dict, image: dict | None) -> list[Want]:
    """Return the schema disks a deploy places, from the profile's deploy schema when set."""
    schema_text = options.get("deploy_schema") if options.get("modify_image_schema") else None
    if schema_text:
        schema = json.loads(schema_text) if isinstance(schema_text, str) else schema_text
        wants = []
        for position, disk in enumerate(schema.get("disks", [])):
            if disk.get("deploy", True) is False:
                continue
            wants.append(Want(index=disk.get("index", position),
                              destination=disk.get("destination") or "",
                              serial=disk.get("serial") or "", wwn=disk.get("wwn") or ""))
        return wants
    minimum = (image or {}).get("size_on_client_bytes")
    return [Want(index=0, min_bytes=minimum or None)]


def boot_disks(cmdline: str) -> set[str]:
    """Return the disks the environment itself booted from (a `castor_bootdev=` hint)."""
    for word in cmdline.split():
        if word.startswith("castor_bootdev="):
            return {word.split("=", 1)[1]}
    return set()


def local_disks(cmdline: str = "", *, loops: bool = False) -> list[Candidate]:
    """Return this machine's candidate disks (lsblk), leaving out the boot medium."""
    answer = json.loads(run(["lsblk", "--json", "-O", "-b"]) or "{}")
    found = candidates(answer, boot_disks(cmdline), loops=loops)
    # lsblk reads the table type from udev's database; without udev, ask libblkid directly.
    return [c if c.table else replace(c, table=probe_table(c.path)) for c in found]


def probe_table(path: str) -> str:
    """Return the partition table type blkid finds on a disk ('' when none)."""
    return run(["blkid", "-p", "-o", "value", "-s", "PTTYPE", path], check=False).strip()
