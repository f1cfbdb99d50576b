"""File paths inside an image folder: normalised, bounded, and free of reserved names."""

from __future__ import annotations

import re

MAX_PATH_CHARS = 512
MAX_SEGMENT_CHARS = 128
MAX_DEPTH = 6
# Names the engine uses for itself, refused at every level of an uploaded tree.
RESERVED = frozenset({"schema.json", "manifest.json", "state.json"})
RESERVED_SUFFIXES = (".part", ".tmp", ".old", ".swap")
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=@,-]*\Z")


class PathRefused(ValueError):
    """A relative path cannot be used inside an image folder."""


def clean_path(relative: object, *, allow_top: tuple[str, ...] = ()) -> str:
    """Return a safe relative path or raise PathRefused saying why.

    Refused: anything but a string of '/'-separated segments of letters, digits and
    `_.+=@,-`; empty, `.` or `..` segments; dot files; reserved names at any level (names in
    `allow_top` are allowed at the top only); over MAX_DEPTH segments or MAX_PATH_CHARS.
    """
    if not isinstance(relative, str) or not relative:
        raise PathRefused("empty path")
    if len(relative) > MAX_PATH_CHARS:
        raise PathRefused(f"path longer than {MAX_PATH_CHARS} characters")
    segments = relative.split("/")
    if len(segments) > MAX_DEPTH:
        raise PathRefused(f"path deeper than {MAX_DEPTH} levels: {relative!r}")
    for depth, segment in enumerate(segments):
        if segment in ("", ".", ".."):
            raise PathRefused(f"empty, '.' or '..' segment in {relative!r}")
        if segment.startswith("."):
            raise PathRefused(f"dot files are refused: {relative!r}")
        if len(segment) > MAX_SEGMENT_CHARS:
            raise PathRefused(f"a segment is longer than {MAX_SEGMENT_CHARS} characters")
        if not _SEGMENT.match(segment):
            raise PathRefused(f"unsupported characters in {relative!r}")
        lowered = segment.lower()
        top_allowed = depth == 0 and len(segments) == 1 and segment in allow_top
        if (lowered in RESERVED and not top_allowed) or lowered.endswith(RESERVED_SUFFIXES):
            raise PathRefused(f"reserved name: {relative!r}")
    return relative
