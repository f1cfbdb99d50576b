"""Compressor and decompressor stages for the imaging pipeline."""

from __future__ import annotations

from client.run import ClientError

ALGORITHMS = ("none", "gzip", "lz4", "zstd")
SUFFIXES = {"none": "", "gzip": ".gz", "lz4": ".lz4", "zstd": ".zst"}
LEVELS = {"gzip": (1, 9), "lz4": (1, 12), "zstd": (1, 19)}


def _check(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ClientError(f"unknown compression {algorithm!r} (use one of {', '.join(ALGORITHMS)})")


def clamp_level(algorithm: str, level: int | None) -> int | None:
    """Bring a profile's level into the range the algorithm accepts (None for 'none')."""
    _check(algorithm)
    if algorithm == "none":
        return None
    low, high = LEVELS[algorithm]
    if level is None:
        return {"gzip": 6, "lz4": 1, "zstd": 3}[algorithm]
    return max(low, min(high, int(level)))


def compress_stage(algorithm: str, level: int | None) -> list[str] | None:
    """Return the argv that compresses stdin to stdout, or None for no compression."""
    lvl = clamp_level(algorithm, level)
    if algorithm == "zstd":
        # -T0 uses every core; --rsyncable is avoided on purpose (1.4-3x slower).
        return ["zstd", "-q", "-c", "-T0", f"-{lvl}"]
    if algorithm == "gzip":
        return ["pigz", "-c", f"-{lvl}"]
    if algorithm == "lz4":
        return ["lz4", "-q", "-c", f"-{lvl}"]
    return None


def decompress_stage(algorithm: str) -> list[str] | None:
    """Return the argv that decompresses stdin to stdout, or None for no compression."""
    _check(algorithm)
    if algorithm == "zstd":
        return ["zstd", "-q", "-d", "-c", "-T0"]
    if algorithm == "gzip":
        return ["pigz", "-d", "-c"]
    if algorithm == "lz4":
        return ["lz4", "-q", "-d", "-c"]
    return None


def suffix(algorithm: str) -> str:
    """File name suffix of a stored stream compressed with algorithm."""
    _check(algorithm)
    return SUFFIXES[algorithm]
