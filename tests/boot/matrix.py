"""The cells of the boot matrix: layout x destination x method x image type."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.vm.layouts import LAYOUTS, Layout

DESTINATIONS = ("smaller", "same", "larger")


@dataclass(frozen=True)
class Cell:
    """One deploy and boot: which layout, onto what size, how, from which image type."""

    layout_name: str
    destination: str
    method: str = "dynamic"
    image_type: str = "block"

    @property
    def layout(self) -> Layout:
        """The layout of the source disk."""
        return LAYOUTS[self.layout_name]

    @property
    def id(self) -> str:
        """A short name for reports and file names."""
        return f"{self.layout_name}-{self.destination}-{self.method}-{self.image_type}"

    @property
    def size_mib(self) -> int:
        """The destination disk's size."""
        layout = self.layout
        return {"smaller": layout.smaller_mib, "same": layout.size_mib,
                "larger": layout.larger_mib}[self.destination]


def all_cells() -> list[Cell]:
    """Every cell: each layout to each destination, Use Original on same size, one WIM set."""
    cells = []
    for name in LAYOUTS:
        cells += [Cell(name, destination) for destination in DESTINATIONS]
        cells.append(Cell(name, "same", "original"))
    cells += [Cell("bios-grub", destination, image_type="file")
              for destination in DESTINATIONS]
    return cells


# The slice `make test` runs; the rest is `make test-boot` (marker boot_full). BIOS+GRUB to
# a smaller and a larger disk is booted in make test by tests/netboot/test_lvm_os.py.
SLICE = {Cell("uefi-grub", "smaller")}


def cell_params(cells: list[Cell]) -> list:
    """pytest params: cells outside the slice carry the boot_full mark."""
    return [pytest.param(cell, id=cell.id, marks=[] if cell in SLICE else [pytest.mark.boot_full])
            for cell in cells]
