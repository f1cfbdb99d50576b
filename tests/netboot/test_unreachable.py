"""Bad input at boot: the server named on the command line does not answer."""

from __future__ import annotations

import pytest

from tests.netboot.lab import BRIDGE_IP
from tests.netboot.test_tasks import netboot


@pytest.mark.boot_full  # `make test-boot`: keeps `make test` inside its time budget
def test_unreachable_server_says_so_and_runs_the_fallback_action(environment, lab, tmp_path):
    # The environment's kernel and initramfs started directly, pointed at a closed port.
    args = f"console=ttyS0 castor_server=http://{BRIDGE_IP}:9 castor_action=power_off"
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    run = netboot(lab, [disk], "52:54:00:be:00:04", tmp_path / "unreachable.log",
                  kernel=(environment / "vmlinuz", environment / "initrd.img", args))
    assert f"the Castor server http://{BRIDGE_IP}:9 is unreachable" in run.console
    assert "nothing was written to any disk" in run.console
    assert "power off in" in run.console
    assert disk.read_bytes()[:1 << 20] == bytes(1 << 20)
