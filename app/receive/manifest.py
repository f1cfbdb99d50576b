"""The one manifest validator, for uploads and replicated copies alike (docs/manifest.md)."""

from __future__ import annotations

import re

from app.receive.paths import PathRefused, clean_path

SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
MANIFEST_FORMAT = "castor-manifest"
FILE_KINDS = ("partclone", "wim", "dd", "table", "gpt-backup", "head")
MIN_CHUNK_BYTES = 1 << 16
MAX_CHUNK_BYTES = 64 << 20


def is_sha256(value: object) -> bool:
    """Tell whether a value is a lower-case hex SHA-256."""
    return isinstance(value, str) and bool(SHA256_RE.match(value))


def manifest_problems(manifest: object) -> list[str]:
    """Return why a manifest is malformed (empty when it is fine)."""
    if not isinstance(manifest, dict):
        return ["the manifest is not a JSON object"]
    if manifest.get("format") != MANIFEST_FORMAT:
        return ["the manifest's format is not castor-manifest"]
    files = manifest.get("files")
    if not isinstance(files, list):
        return ["the manifest has no files list"]
    problems = []
    for entry in files:
        problems.extend(entry_problems(entry, kinds=True))
    paths = [entry.get("path") for entry in files if isinstance(entry, dict)]
    if len(set(paths)) != len(paths):
        problems.append("a path is listed twice")
    return problems


def entry_problems(entry: object, *, kinds: bool = False,
                   allow_top: tuple[str, ...] = ()) -> list[str]:
    """Return why one file entry (path, size_bytes, sha256, chunks) is malformed."""
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        return ["a file entry has no path"]
    path = entry["path"]
    problems = []
    try:
        clean_path(path, allow_top=allow_top)
    except PathRefused as exc:
        problems.append(str(exc))
    size = entry.get("size_bytes")
    if not _count(size):
        problems.append(f"{path}: size_bytes is not a non-negative integer")
    if not is_sha256(entry.get("sha256")):
        problems.append(f"{path}: sha256 is not 64 lower-case hex digits")
    if kinds and entry.get("kind") not in FILE_KINDS:
        problems.append(f"{path}: unknown kind {entry.get('kind')!r}")
    if "chunks" in entry and _count(size):
        problems.extend(chunk_problems(path, size, entry))
    return problems


def chunk_problems(path: str, size: int, entry: dict) -> list[str]:
    """Return why an entry's chunk list cannot describe a file of `size` bytes."""
    chunk_bytes, chunks = entry.get("chunk_bytes"), entry.get("chunks")
    if not _count(chunk_bytes) or not MIN_CHUNK_BYTES <= chunk_bytes <= MAX_CHUNK_BYTES:
        return [f"{path}: chunk_bytes must be between {MIN_CHUNK_BYTES} and {MAX_CHUNK_BYTES}"]
    if not isinstance(chunks, list) or not all(is_sha256(c) for c in chunks):
        return [f"{path}: chunks is not a list of SHA-256 digests"]
    if len(chunks) != -(-size // chunk_bytes):
        return [f"{path}: {len(chunks)} chunk digests for {size} bytes in chunks of "
                f"{chunk_bytes}"]
    return []


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
