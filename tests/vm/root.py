"""A debootstrapped Debian bookworm root, cached as a tarball and rebuilt when missing."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.vm.cache import CACHE, build_lock

ROOT_VERSION = 2
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ["linux-image-amd64", "systemd-sysv", "udev", "xfsprogs", "btrfs-progs",
            "e2fsprogs", "util-linux", "lvm2"]
MARKER = "CASTOR-BOOT"

# Runs once at boot: one line on the serial console with what the test checks, then poweroff.
REPORT_SCRIPT = """#!/bin/sh
root=$(findmnt -n -o SOURCE /)
fstype=$(findmnt -n -o FSTYPE /)
dev_bytes=$(blockdev --getsize64 "$root" 2>/dev/null || echo 0)
fs_bytes=$(stat -f -c '%b %S' / | (read b s; echo $((b * s))))
swaps=$(($(wc -l < /proc/swaps) - 1))
# The initramfs has no fsck (it was built before there was an fstab): systemd checks root.
ran=$(systemctl show -p ExecMainStartTimestampMonotonic --value systemd-fsck-root.service)
code=$(systemctl show -p ExecMainStatus --value systemd-fsck-root.service)
if [ -e /run/initramfs/fsck-root ] || { [ "${ran:-0}" -gt 0 ] && [ "$code" = 0 ]; }; then
  fsck=clean
elif [ "${ran:-0}" -gt 0 ]; then fsck=exit$code; else fsck=unchecked; fi
if [ -d /sys/firmware/efi ]; then fw=uefi; else fw=bios; fi
state=$(systemctl is-system-running 2>/dev/null)
datafs_bytes=0
if findmnt -n /srv/data > /dev/null; then
  datafs_bytes=$(stat -f -c '%b %S' /srv/data | (read b s; echo $((b * s))))
fi
lvs=none
if command -v lvs > /dev/null; then
  lvs=$(lvs --noheadings --units b --nosuffix -o vg_name,lv_name,lv_size 2>/dev/null |
    while read vg lv size; do echo "$vg/$lv:$size"; done | LC_ALL=C sort | paste -sd, -)
fi
echo "@MARKER@ host=$(hostname) root=$root fstype=$fstype rootdev_bytes=$dev_bytes \\
rootfs_bytes=$fs_bytes swaps=$swaps fsck=$fsck firmware=$fw state=$state \\
lvs=${lvs:-none} datafs_bytes=$datafs_bytes" > /dev/ttyS0
systemctl --no-block poweroff
""".replace("@MARKER@", MARKER)

REPORT_UNIT = """[Unit]
Description=Report the boot on the serial console and power off
After=local-fs.target swap.target systemd-hostnamed.service
Requires=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/castor-boot-report

[Install]
WantedBy=multi-user.target
"""


def root_tarball() -> Path:
    """The cached root tarball, built first when it is missing."""
    tarball = CACHE / f"debian-root-v{ROOT_VERSION}.tar.zst"
    if tarball.exists():
        return tarball
    with build_lock("debian-root"):
        if not tarball.exists():
            _build(tarball)
    return tarball


def _build(tarball: Path) -> None:
    """Debootstrap bookworm, add the report unit, and pack the root."""
    work = Path(tempfile.mkdtemp(prefix="debian-root-build-", dir=CACHE))
    try:
        root = work / "root"
        subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                        "bookworm", str(root), MIRROR], check=True, capture_output=True)
        for cache in (root / "var/cache/apt/archives").glob("*.deb"):
            cache.unlink()
        ensure_lvm_in_initramfs(root)
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                        "-I", "zstd -T0 -3", "-cf", str(partial), "-C", str(root), "."],
                       check=True, capture_output=True)
        partial.rename(tarball)
    finally:
        # A failed debootstrap can leave its proc and sys mounts inside the root (and a failed
        # chroot step the host's /dev): detach them before the folder is removed.
        for mount in ("proc", "sys", "dev"):
            subprocess.run(["umount", "-l", str(work / "root" / mount)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def ensure_lvm_in_initramfs(root: Path) -> None:
    """Regenerate the root's initramfs when it lacks lvm (built before lvm2 was installed)."""
    with chroot_mounts(root):
        if not initramfs_has_lvm(root):
            subprocess.run(["chroot", str(root), "update-initramfs", "-u", "-k", "all"],
                           check=True, capture_output=True)
        if not initramfs_has_lvm(root):
            raise RuntimeError("the root's initramfs has no lvm even after update-initramfs")


def initramfs_has_lvm(root: Path) -> bool:
    """Whether the root has an initrd and every one of them holds the lvm tool."""
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    return bool(initrds) and all(_initrd_lists_lvm(root, i.name) for i in initrds)


def _initrd_lists_lvm(root: Path, name: str) -> bool:
    """Whether one initrd of the root lists sbin/lvm (read by the root's own lsinitramfs)."""
    listing = subprocess.run(["chroot", str(root), "lsinitramfs", f"/boot/{name}"],
                             check=True, capture_output=True, text=True).stdout
    return any(line.endswith("sbin/lvm") for line in listing.splitlines())


@contextmanager
def chroot_mounts(root: Path) -> Iterator[None]:
    """Bind-mount the host's /proc, /sys and /dev into a root for tools run in a chroot."""
    mounted: list[Path] = []
    try:
        for name in ("proc", "sys", "dev"):
            target = root / name
            subprocess.run(["mount", "--bind", f"/{name}", str(target)], check=True,
                           capture_output=True)
            mounted.append(target)
        yield
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", "-l", str(target)], check=True, capture_output=True)


def customize_root(root: Path) -> None:
    """Install the report unit and set a neutral hostname (done per disk, after unpacking)."""
    script = root / "usr/local/sbin/castor-boot-report"
    script.write_text(REPORT_SCRIPT)
    script.chmod(0o755)
    (root / "etc/systemd/system/castor-boot-report.service").write_text(REPORT_UNIT)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "castor-boot-report.service"
    link.unlink(missing_ok=True)
    link.symlink_to("/etc/systemd/system/castor-boot-report.service")
    (root / "etc/hostname").write_text("castor-source\n")
    # An empty machine-id makes systemd create one at first boot (each deployed copy its own).
    (root / "etc/machine-id").write_text("")


def extract_root(tarball: Path, target: Path) -> None:
    """Unpack the cached root into a mounted filesystem."""
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-I", "zstd",
                    "-xf", str(tarball), "-C", str(target)], check=True, capture_output=True)


def kernel_files(root: Path) -> tuple[str, str]:
    """Paths (inside the root) of the kernel and initrd of the unpacked root."""
    kernel = sorted((root / "boot").glob("vmlinuz-*"))[-1].name
    initrd = sorted((root / "boot").glob("initrd.img-*"))[-1].name
    return f"/boot/{kernel}", f"/boot/{initrd}"
