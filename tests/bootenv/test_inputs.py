"""Build inputs: list files, module pruning rules with dependencies, the inputs hash."""

from __future__ import annotations

from app.bootenv import inputs, modules
from app.bootenv.inputs import ModuleRules

DEP = """kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko
kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko
kernel/drivers/ata/libata.ko: kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/scsi_mod.ko:
kernel/drivers/gpu/drm/i915/i915.ko: kernel/drivers/gpu/drm/drm.ko
kernel/drivers/gpu/drm/drm.ko:
kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko: kernel/net/wireless/cfg80211.ko
kernel/net/wireless/cfg80211.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko
kernel/drivers/net/net_failover.ko:
"""


def test_rules_keep_storage_and_wired_network_with_dependencies():
    rules = ModuleRules(keep=("drivers/ata/", "drivers/net/"), drop=("drivers/net/wireless/",))
    keep = modules.modules_to_keep(modules.parse_modules_dep(DEP), rules)
    assert keep == {"kernel/drivers/ata/ahci.ko", "kernel/drivers/ata/libahci.ko",
                    "kernel/drivers/ata/libata.ko", "kernel/drivers/scsi/scsi_mod.ko",
                    "kernel/drivers/net/virtio_net.ko", "kernel/drivers/net/net_failover.ko"}


def test_prune_deletes_files_and_empty_folders(tmp_path):
    deps = modules.parse_modules_dep(DEP)
    for module in deps:
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / module).write_bytes(b"\x7fELF")
    (tmp_path / "modules.dep").write_text(DEP)
    kept, total = modules.prune_modules(tmp_path, ModuleRules(keep=("drivers/ata/",), drop=()))
    assert (kept, total) == (4, 10)
    assert not (tmp_path / "kernel/drivers/gpu").exists()
    assert (tmp_path / "kernel/drivers/scsi/scsi_mod.ko").exists()


def test_repository_lists_hold_what_the_client_drives():
    wanted = set(inputs.packages())
    for tool in ("partclone", "wimtools", "ntfs-3g", "udpcast", "efibootmgr", "libhivex-bin",
                 "lvm2", "isc-dhcp-client", "whiptail", "python3", "gdisk", "mtools"):
        assert tool in wanted
    rules = inputs.module_rules()
    assert rules.wanted("drivers/nvme/host/nvme.ko") and rules.wanted("fs/xfs/xfs.ko")
    assert not rules.wanted("drivers/net/wireless/intel/iwlwifi/iwlwifi.ko")
    assert not rules.wanted("sound/core/snd.ko")


def test_inputs_hash_follows_the_inputs(tmp_path, monkeypatch):
    before = inputs.inputs_hash()
    assert before == inputs.inputs_hash()
    assert inputs.inputs_hash(mirror="http://snapshot.debian.org/x") != before
    copy = tmp_path / "bootenv"
    copy.mkdir()
    for path in inputs.INPUTS.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(inputs, "INPUTS", copy)
    assert inputs.inputs_hash() == before
    (copy / "init").write_text("#!/bin/sh\necho changed\n")
    assert inputs.inputs_hash() != before
