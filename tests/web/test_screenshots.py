"""The screenshot script writes one PNG per page and width, at the width asked."""

from __future__ import annotations

import struct

import pytest

from tests import screenshots

pytestmark = pytest.mark.browser


def test_screenshots_are_pngs_at_1280_and_390(tmp_path, chromium):
    paths = screenshots.take(tmp_path, chromium)
    assert sorted(p.name for p in paths) == sorted(
        f"{name}-{width}.png" for name, _ in screenshots.PAGES for width in screenshots.WIDTHS)
    for path in paths:
        head = path.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        width = struct.unpack(">I", head[16:20])[0]
        assert width == int(path.stem.rsplit("-", 1)[1])
