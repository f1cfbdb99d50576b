"""Fixtures of the boot matrix: one server per session, source disks and uploads reused."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.boot.server import CastorServer
from tests.conftest import needs_root
from tests.vm.layouts import LAYOUTS, Layout
from tests.vm.osdisks import copy_sparse, source_disk

RESULTS: list[dict] = []


def pytest_collection_modifyitems(items):
    """Every boot test needs root, loop devices and the imaging tools."""
    for item in items:
        if "tests/boot/" in str(item.fspath):
            item.add_marker(needs_root)


@dataclass
class Uploaded:
    """An image uploaded from a copy of a layout's source disk."""

    name: str
    layout: Layout
    image_type: str
    source: Path


class Images:
    """Upload each (layout, image type) once per session, from its own copy of the source."""

    def __init__(self, server: CastorServer, tmp: Path) -> None:
        self.server, self.tmp, self.done = server, tmp, {}

    def get(self, layout_name: str, image_type: str = "block") -> Uploaded:
        """The uploaded image of a layout, uploading it on first use."""
        key = (layout_name, image_type)
        if key not in self.done:
            layout = LAYOUTS[layout_name]
            name = f"{layout_name}-{image_type}"
            source = copy_sparse(source_disk(layout), self.tmp / f"{name}-source.img")
            self.server.new_image(name, image_type)
            self.server.client("upload", "--image", name, "--disk", str(source))
            self.done[key] = Uploaded(name, layout, image_type, source)
        return self.done[key]


@pytest.fixture(scope="session")
def castor_server(tmp_path_factory):
    """A Castor server on loopback for the whole session."""
    server = CastorServer(tmp_path_factory.mktemp("boot-server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def boot_images(castor_server, tmp_path_factory) -> Images:
    """Uploaded images, shared by every cell of the session."""
    return Images(castor_server, tmp_path_factory.mktemp("boot-disks"))


@pytest.fixture
def record():
    """Record one row of the boot matrix's results table."""
    def _record(**row) -> None:
        RESULTS.append(row)
    return _record


def pytest_terminal_summary(terminalreporter):
    """Print the boot matrix rows measured in this run (and save them when asked)."""
    if not RESULTS:
        return
    terminalreporter.section("boot matrix")
    for row in RESULTS:
        terminalreporter.write_line(
            f"{row['cell']:48} boots={row['boots']!s:5} boot_s={row['boot_s']:6.1f} "
            f"deploy_s={row.get('deploy_s', 0):6.1f}")
    target = os.environ.get("CASTOR_BOOT_RESULTS")
    if target:
        with open(target, "a") as handle:
            for row in RESULTS:
                handle.write(json.dumps(row) + "\n")
