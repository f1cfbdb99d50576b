"""Partition table geometry: usable sectors of GPT and MBR disks of any sector size."""

from __future__ import annotations

from app.imaging.units import align_sectors, ceil_div

GPT_ENTRIES = 128
GPT_ENTRY_BYTES = 128
# An MBR stores starts and sizes as unsigned 32-bit sector counts.
MBR_LIMIT_SECTORS = 2**32


def gpt_tail_sectors(sector_size: int) -> int:
    """Return the sectors the backup GPT takes at the end (33 at 512 B, 5 at 4Kn)."""
    return 1 + ceil_div(GPT_ENTRIES * GPT_ENTRY_BYTES, sector_size)


def usable_range(table: str, total_sectors: int, sector_size: int) -> tuple[int, int]:
    """Return (first aligned start, last usable sector) for a new table on a disk."""
    first = align_sectors(sector_size)
    if table == "gpt":
        return first, total_sectors - 1 - gpt_tail_sectors(sector_size)
    # MBR: keep every partition addressable by 32-bit LBAs, whatever the disk size.
    return first, min(total_sectors, MBR_LIMIT_SECTORS) - 1


def gpt_first_usable(sector_size: int) -> int:
    """Return the first usable LBA of a GPT (34 at 512 B, 6 at 4Kn)."""
    return 1 + gpt_tail_sectors(sector_size)
