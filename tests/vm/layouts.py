"""The OS-disk layouts of the boot matrix: table, partitions, root filesystem and boot loader."""

from __future__ import annotations

from dataclasses import dataclass

GIB_MIB = 1024


@dataclass(frozen=True)
class Part:
    """One partition of a layout: size in MiB (None = to the end) and what it holds."""

    size_mib: int | None
    role: str  # root, esp, swap, data, extended
    fs: str | None = None
    logical: bool = False


@dataclass(frozen=True)
class Layout:
    """A bootable OS disk: firmware, table, partitions, loader, and its deploy targets."""

    name: str
    firmware: str  # bios or uefi
    table: str  # mbr or gpt
    loader: str  # grub-bios, grub-efi or syslinux
    size_mib: int
    parts: tuple[Part, ...]
    smaller_mib: int
    larger_mib: int
    # SYSLINUX: where ldlinux.sys is placed in the root (MiB from its start), as a reinstall
    # late in a machine's life leaves it: above what resize2fs could shrink to.
    ldlinux_at_mib: int | None = None

    @property
    def root(self) -> Part:
        """The partition holding the root filesystem."""
        return next(p for p in self.parts if p.role == "root")

    @property
    def root_number(self) -> int:
        """The partition number of the root filesystem (logicals count from 5)."""
        return numbers(self)[self.parts.index(self.root)]

    @property
    def swap_count(self) -> int:
        """How many swap partitions the layout has."""
        return sum(p.role == "swap" for p in self.parts)


def numbers(layout: Layout) -> list[int]:
    """Partition numbers in layout order (MBR logical partitions are numbered from 5)."""
    result, primary, logical = [], 0, 4
    for part in layout.parts:
        if part.logical:
            logical += 1
            result.append(logical)
        else:
            primary += 1
            result.append(primary)
    return result


ROOT_GIB = 7 * GIB_MIB
LAYOUTS = {layout.name: layout for layout in (
    Layout("bios-grub", "bios", "mbr", "grub-bios", 8 * GIB_MIB,
           (Part(ROOT_GIB, "root", "ext4"), Part(None, "swap", "swap")),
           smaller_mib=5 * GIB_MIB, larger_mib=12 * GIB_MIB),
    Layout("uefi-grub", "uefi", "gpt", "grub-efi", 8 * GIB_MIB,
           (Part(100, "esp", "vfat"), Part(ROOT_GIB, "root", "ext4"),
            Part(None, "swap", "swap")),
           smaller_mib=5 * GIB_MIB, larger_mib=12 * GIB_MIB),
    # ldlinux.sys at 3 GiB of a 7 GiB root holding ~1 GiB: an unguarded shrink moves it,
    # a guarded one stops above it and still fits the smaller disk.
    Layout("bios-syslinux-high", "bios", "mbr", "syslinux", 8 * GIB_MIB,
           (Part(ROOT_GIB, "root", "ext4"), Part(None, "swap", "swap")),
           smaller_mib=5 * GIB_MIB, larger_mib=12 * GIB_MIB, ldlinux_at_mib=3 * GIB_MIB),
    Layout("bios-grub-xfs", "bios", "mbr", "grub-bios", 8 * GIB_MIB,
           (Part(6 * GIB_MIB, "root", "xfs"), Part(512, "swap", "swap")),
           smaller_mib=7 * GIB_MIB, larger_mib=12 * GIB_MIB),
    Layout("bios-grub-logical", "bios", "mbr", "grub-bios", 8 * GIB_MIB,
           (Part(256, "data", "ext4"), Part(None, "extended"),
            Part(6 * GIB_MIB, "root", "ext4", logical=True),
            Part(None, "swap", "swap", logical=True)),
           smaller_mib=5 * GIB_MIB, larger_mib=12 * GIB_MIB),
)}
