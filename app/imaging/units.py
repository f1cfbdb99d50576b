"""Sizes: byte units, sector rounding and human-readable formatting."""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
TIB = 1024 * GIB
MB = 10**6
GB = 10**9

# Custom sizes in selections use decimal units, as the UI shows them (docs/schema.md).
CUSTOM_UNITS = {"MB": MB, "GB": GB}
ALIGN_BYTES = MIB


def ceil_div(a: int, b: int) -> int:
    """Return a / b rounded up, for non-negative integers."""
    return -(-a // b)


def round_up(value: int, multiple: int) -> int:
    """Return value rounded up to a multiple of `multiple`."""
    return ceil_div(value, multiple) * multiple


def round_down(value: int, multiple: int) -> int:
    """Return value rounded down to a multiple of `multiple`."""
    return value // multiple * multiple


def to_sectors(size_bytes: int, sector_size: int) -> int:
    """Return how many whole sectors hold `size_bytes` (rounded up)."""
    return ceil_div(size_bytes, sector_size)


def align_sectors(sector_size: int) -> int:
    """Return the 1 MiB alignment in sectors (2048 at 512 B, 256 at 4Kn)."""
    return max(1, ALIGN_BYTES // sector_size)


def custom_size_bytes(custom: dict, destination_bytes: int | None) -> int | None:
    """Return the bytes a selection's custom size asks for, None for % without a destination."""
    value, unit = custom["value"], custom["unit"]
    if unit == "%":
        if destination_bytes is None:
            return None
        return int(destination_bytes * value / 100)
    return int(value * CUSTOM_UNITS[unit])


def human(size_bytes: int | None) -> str:
    """Format bytes with binary units, e.g. '20.0 GiB'; 'N/A' for None."""
    if size_bytes is None:
        return "N/A"
    value = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{size_bytes} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover - loop always returns
