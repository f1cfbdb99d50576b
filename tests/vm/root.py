"""A debootstrapped Debian bookworm root, cached as a tarball and rebuilt when missing."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.vm.cache import CACHE, build_lock

ROOT_VERSION = 1
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ["linux-image-amd64", "systemd-sysv", "udev", "xfsprogs", "btrfs-progs",
            "e2fsprogs", "util-linux"]
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
echo "@MARKER@ host=$(hostname) root=$root fstype=$fstype rootdev_bytes=$dev_bytes \\
rootfs_bytes=$fs_bytes swaps=$swaps fsck=$fsck firmware=$fw state=$state" > /dev/ttyS0
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
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                        "-I", "zstd -T0 -3", "-cf", str(partial), "-C", str(root), "."],
                       check=True, capture_output=True)
        partial.rename(tarball)
    finally:
        # A failed debootstrap can leave its proc and sys mounts inside the root.
        for mount in ("proc", "sys"):
            subprocess.run(["umount", "-l", str(work / "root" / mount)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


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
