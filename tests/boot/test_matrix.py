"""The boot matrix: upload real Debian disks, deploy them to other disks, boot them in VMs."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.boot.booting import boot_disk, check_booted
from tests.boot.matrix import Cell, all_cells, cell_params
from tests.vm.layouts import LAYOUTS

# The source boots after its upload (make test-boot; make test boots an uploaded source in
# tests/netboot/test_lvm_os.py).
SOURCE_PARAMS = [pytest.param(name, id=name, marks=[pytest.mark.boot_full]) for name in LAYOUTS]


@pytest.mark.parametrize("layout_name", SOURCE_PARAMS)
def test_source_still_boots_after_upload(boot_images, layout_name, tmp_path, record):
    row = {"cell": f"{layout_name}-source-after-upload", "layout": layout_name,
           "destination": "source", "method": "-", "image_type": "block",
           "size_mib": LAYOUTS[layout_name].size_mib}
    with record(row):
        uploaded = boot_images.get(layout_name)
        row["upload_s"] = uploaded.upload_s
        run = boot_disk(uploaded.source, uploaded.layout, tmp_path / "console.log")
        row.update(boots=bool(run.marker), boot_s=run.seconds, failure=run.failure,
                   guest=run.fields)
        check_booted(run, uploaded.source, uploaded.layout, hostname="castor-source")


@pytest.mark.parametrize("cell", cell_params(all_cells()))
def test_deployed_disk_boots(boot_images, castor_server, cell: Cell, tmp_path, record):
    row = {"cell": cell.id, "layout": cell.layout_name, "destination": cell.destination,
           "method": cell.method, "image_type": cell.image_type, "size_mib": cell.size_mib}
    with record(row):
        uploaded = boot_images.get(cell.layout_name, cell.image_type)
        castor_server.set_profile(uploaded.name, partition_method=cell.method)
        target = tmp_path / f"{cell.id}.img"
        subprocess.run(["truncate", "-s", f"{cell.size_mib}M", str(target)], check=True)
        hostname = f"deployed-{cell.destination}"
        started = time.monotonic()
        castor_server.client("deploy", "--image", uploaded.name, "--disk", str(target),
                             "--computer-name", hostname)
        row["deploy_s"] = time.monotonic() - started
        run = boot_disk(target, cell.layout, tmp_path / "console.log")
        row.update(boots=bool(run.marker), boot_s=run.seconds, failure=run.failure,
                   guest=run.fields)
        check_booted(run, target, cell.layout, hostname=hostname)
    # A passed cell's disk is not needed any more (a failed one stays to be looked at).
    target.unlink()
