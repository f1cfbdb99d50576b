"""A cached BIOS/MBR Debian disk: /boot on a partition, root, data and swap LVs in one VG."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.client.disks import loop, mounted, partitions, sh
from tests.vm import loaders
from tests.vm.cache import CACHE, cached_image
from tests.vm.lvm import create_volume_group
from tests.vm.osdisks import make_filesystem
from tests.vm.root import ROOT_VERSION, customize_root, extract_root, kernel_files, root_tarball

BUILDER_VERSION = 2
MIB = 1 << 20
GIB_MIB = 1024


@dataclass(frozen=True)
class LogicalVolume:
    """One LV of the disk's VG: its size, filesystem and where the system mounts it."""

    name: str
    size_mib: int
    fs: str  # ext4 or swap
    mountpoint: str | None


@dataclass(frozen=True)
class LvmDisk:
    """A Debian disk on LVM: /boot partition, the VG on the rest, and its deploy targets."""

    name: str
    size_mib: int
    boot_mib: int
    vg: str
    volumes: tuple[LogicalVolume, ...]
    smaller_mib: int
    larger_mib: int
    firmware: str = "bios"

    def volume(self, name: str) -> LogicalVolume:
        """The LV of that name."""
        return next(v for v in self.volumes if v.name == name)

    @property
    def root_device(self) -> str:
        """The root's device-mapper path, as the kernel command line and fstab name it."""
        return f"/dev/mapper/{self.vg}-root"

    @property
    def lvs_report(self) -> str:
        """The `lvs=` field the booted guest reports: vg/lv:bytes, sorted, comma-separated."""
        return ",".join(sorted(f"{self.vg}/{v.name}:{v.size_mib * MIB}" for v in self.volumes))


# The root LV is over the client's 5 GiB shrink threshold, the data LV under it.
LVM_DISK = LvmDisk(
    "bios-grub-lvm", 8 * GIB_MIB, boot_mib=512, vg="castor",
    volumes=(LogicalVolume("root", 6 * GIB_MIB, "ext4", "/"),
             LogicalVolume("data", GIB_MIB, "ext4", "/srv/data"),
             LogicalVolume("swap", 256, "swap", None)),
    smaller_mib=4 * GIB_MIB, larger_mib=10 * GIB_MIB)


def lvm_source_disk(disk: LvmDisk = LVM_DISK) -> Path:
    """The cached LVM source disk, built first when it is missing."""
    folder = CACHE / f"lvmdisk-v{BUILDER_VERSION}-root{ROOT_VERSION}"
    return cached_image(folder / f"{disk.name}.img", f"lvmdisk-{disk.name}",
                        lambda partial: build_lvm_disk(disk, partial, root_tarball()))


def sfdisk_script(disk: LvmDisk) -> str:
    """The sfdisk input: a bootable /boot partition, then one Linux LVM partition."""
    return f"label: dos\nsize={disk.boot_mib}MiB, type=83, bootable\ntype=8e\n"


def build_lvm_disk(disk: LvmDisk, image: Path, tarball: Path) -> None:
    """Create the disk file, its VG and filesystems, the Debian system and GRUB."""
    image.unlink(missing_ok=True)
    sh("truncate", "-s", f"{disk.size_mib}M", str(image))
    sh("sfdisk", "-q", str(image), input=sfdisk_script(disk))
    boot_part, pv_part = partitions(image)
    boot_window = (boot_part["start"] * 512, boot_part["size"] * 512)
    pv_start = pv_part["start"] * 512
    with loop(image, pv_start, pv_part["size"] * 512) as dev:
        on_pv = create_volume_group(dev, disk.vg, [(v.name, v.size_mib) for v in disk.volumes])
    windows = {name: (pv_start + offset, size) for name, (offset, size) in on_pv.items()}
    with loop(image, *boot_window) as dev:
        uuids = {"boot": make_filesystem(dev, "ext4", "boot")}
    for volume in disk.volumes:
        with loop(image, *windows[volume.name]) as dev:
            uuids[volume.name] = make_filesystem(dev, volume.fs, volume.name)
    with loop(image, *windows["root"]) as root_dev, mounted(root_dev, "ext4") as root:
        extract_root(tarball, root)
        customize_root(root)
        write_fstab(disk, root, uuids)
        with loop(image, *boot_window) as boot_dev, mounted(boot_dev, "ext4") as boot:
            move_boot(disk, root, boot)
        with loop(image, *windows["data"]) as data_dev, mounted(data_dev, "ext4") as data:
            # A few MiB of real files, so a copy of the volume has something to lose.
            shutil.copytree(root / "usr/share/doc", data / "doc", symlinks=True)
    loaders.install_grub_bios(image, uuids["boot"], "ext4", grub_dir="/grub")


def move_boot(disk: LvmDisk, root: Path, boot: Path) -> None:
    """Move the root's /boot onto the boot filesystem and write GRUB's menu there."""
    kernel, initrd = kernel_files(root)
    for entry in (root / "boot").iterdir():
        shutil.move(entry, boot / entry.name)
    # /boot is its own filesystem: GRUB reads the kernel from that filesystem's top.
    cmdline = f"root={disk.root_device} ro console=ttyS0,115200 fsck.mode=force"
    loaders.write_grub_config(boot / "grub", kernel.removeprefix("/boot"),
                              initrd.removeprefix("/boot"), cmdline)


def write_fstab(disk: LvmDisk, root: Path, uuids: dict[str, str]) -> None:
    """An /etc/fstab as the Debian installer writes one for LVM: root by its mapper path."""
    lines = [f"{disk.root_device} / ext4 errors=remount-ro 0 1",
             f"UUID={uuids['boot']} /boot ext4 defaults 0 2"]
    for volume in disk.volumes:
        if volume.fs == "swap":
            lines.append(f"UUID={uuids[volume.name]} none swap sw 0 0")
        elif volume.mountpoint != "/":
            lines.append(f"UUID={uuids[volume.name]} {volume.mountpoint} ext4 defaults 0 2")
            (root / volume.mountpoint.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (root / "etc/fstab").write_text("\n".join(lines) + "\n")
