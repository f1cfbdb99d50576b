"""After *Randomize GUIDs*: point a Linux system's PARTUUID references at the new GUIDs.

`sgdisk -G` gives the disk and every partition a new GUID. Filesystem UUIDs do not change,
so `UUID=` references keep working, but `PARTUUID=` ones (fstab lines, `root=PARTUUID=` on
a kernel command line of extlinux, GRUB or systemd-boot) would point at nothing and the
deployed machine would not find its root. These files are rewritten, old GUID to new.
Windows' BCD also names partitions by GUID on GPT disks: Castor does not rewrite it (see
the README's "Not done yet").
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from client.mount import mounted
from client.run import run

log = logging.getLogger("castor.client")

CONFIG_FILES = ("etc/fstab", "etc/crypttab", "etc/kernel/cmdline", "etc/default/grub",
                "boot/grub/grub.cfg", "boot/extlinux/extlinux.conf",
                "boot/syslinux/syslinux.cfg", "extlinux/extlinux.conf",
                "syslinux/syslinux.cfg", "extlinux.conf", "grub/grub.cfg")
CONFIG_GLOBS = ("boot/loader/entries/*.conf", "loader/entries/*.conf")
MOUNTABLE = ("ext2", "ext3", "ext4", "xfs", "btrfs")


def partition_guids(disk_path: str) -> dict[int, str]:
    """The GUID of every partition of a GPT disk, by number (upper case)."""
    table = json.loads(run(["sfdisk", "--json", disk_path]))["partitiontable"]
    guids = {}
    for entry in table.get("partitions", []):
        number = int(re.search(r"(\d+)$", entry["node"]).group(1))
        if entry.get("uuid"):
            guids[number] = entry["uuid"].upper()
    return guids


def rewrite_text(text: str, changes: dict[str, str]) -> str:
    """Replace every old GUID by its new one, in either letter case."""
    for old, new in changes.items():
        text = text.replace(old.lower(), new.lower()).replace(old.upper(), new.upper())
    return text


def config_files(root: Path) -> list[Path]:
    """The loader and mount configuration files of a mounted system that exist."""
    found = [root / name for name in CONFIG_FILES]
    found += [path for pattern in CONFIG_GLOBS for path in sorted(root.glob(pattern))]
    return [path for path in found if path.is_file() and not path.is_symlink()]


def rewrite_configs(root: Path, changes: dict[str, str]) -> list[str]:
    """Rewrite the PARTUUID references in one mounted system; list the files changed."""
    changed = []
    for path in config_files(root):
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        new = rewrite_text(text, changes)
        if new != text:
            path.write_text(new, encoding="utf-8", errors="surrogateescape")
            changed.append(str(path.relative_to(root)))
    return changed


def follow_new_guids(disk, plan: dict, old: dict[int, str]) -> list[str]:
    """After randomizing, rewrite old partition GUIDs in every restored Linux filesystem."""
    new = partition_guids(disk.path)
    numbers = {p["number"]: p.get("source_partition") for p in plan.get("partitions") or []}
    changes = {old[src]: new[number] for number, src in numbers.items()
               if src in old and number in new and old[src] != new[number]}
    if not changes:
        return []
    changed = []
    for part in plan.get("partitions") or []:
        fs = part.get("filesystem")
        fs_type = fs.get("type") if isinstance(fs, dict) else fs
        if fs_type not in MOUNTABLE or not part.get("source_partition"):
            continue
        dev = disk.partition_device(part["number"], part["start_sector"], part["size_sectors"])
        with mounted(dev, fs_type) as root:
            files = rewrite_configs(root, changes)
        if files:
            log.info("partition %d: new partition GUIDs written into %s", part["number"],
                     ", ".join(files))
            changed += files
    return changed
