"""Fixtures of the boot matrix: one server per session, source disks and uploads reused."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.boot.server import CastorServer
from tests.conftest import needs_root
from tests.vm.layouts import LAYOUTS, Layout
from tests.vm.osdisks import copy_sparse, source_disk
from tests.vm.qemu import accel

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
    upload_s: float


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
            started = time.monotonic()
            self.server.client("upload", "--image", name, "--disk", str(source))
            self.done[key] = Uploaded(name, layout, image_type, source,
                                      time.monotonic() - started)
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
    """Record one row of the boot matrix's results, whatever way the cell ends."""
    @contextmanager
    def _record(row: dict) -> Iterator[dict]:
        started = time.monotonic()
        try:
            yield row
            row["passed"] = True
        except BaseException as exc:
            row["passed"] = False
            row["error"] = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise
        finally:
            row["cell_s"] = time.monotonic() - started
            RESULTS.append(row)
            _save(row)
    return _record


def _save(row: dict) -> None:
    """Append a row to the results file named by CASTOR_BOOT_RESULTS, as soon as it is known."""
    target = os.environ.get("CASTOR_BOOT_RESULTS")
    if target:
        with open(target, "a") as handle:
            handle.write(json.dumps({**row, "accel": accel()}) + "\n")


def pytest_terminal_summary(terminalreporter):
    """Print the boot matrix rows measured in this run."""
    if not RESULTS:
        return
    terminalreporter.section("boot matrix")
    for row in RESULTS:
        boots = row.get("boots")
        terminalreporter.write_line(
            f"{row['cell']:48} passed={row['passed']!s:5} boots={boots!s:5} "
            f"boot_s={row.get('boot_s') or 0:6.1f} deploy_s={row.get('deploy_s') or 0:6.1f} "
            f"cell_s={row['cell_s']:6.1f}")
