"""Deploy steps checkable without Windows: Fix Boot Sector on a moved NTFS, Randomize GUIDs."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess

import pytest

from app.imaging.sfdisk import render_script
from client.bootcfg import ntfs_boot_fields
from tests.client.disks import loop, make_disk, mounted, partitions, read_sums, sh
from tests.client_steps.imaging import capture_local, deploy_local, plan_for
from tests.client_steps.winhive import build_hive, hive_value
from tests.conftest import needs_root

pytestmark = [needs_root]
MIB = 1 << 20


def gpt_guids(image) -> dict[int, str]:
    """Partition GUIDs of a GPT disk image, by number."""
    table = json.loads(sh("sfdisk", "--json", str(image)))["partitiontable"]
    return {int(p["node"].rsplit("img", 1)[1]): p["uuid"].upper() for p in table["partitions"]}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A GPT disk: ext4 whose fstab and extlinux.conf name partitions by PARTUUID, NTFS."""
    tmp = tmp_path_factory.mktemp("windows-steps")
    path = tmp / "win-src-deploy-safety.img"
    sums = make_disk(path, 100, "gpt", [(30, "ext4"), (None, "ntfs")], seed=31)
    guids = gpt_guids(path)
    part = partitions(path)[0]
    with loop(path, part["start"] * 512, part["size"] * 512) as dev, mounted(dev, "ext4") as root:
        (root / "etc" / "fstab").write_text(
            f"PARTUUID={guids[1].lower()} / ext4 defaults 0 1\n"
            f"PARTUUID={guids[2].lower()} /win ntfs-3g defaults 0 0\n")
        (root / "boot" / "extlinux").mkdir(parents=True)
        (root / "boot" / "extlinux" / "extlinux.conf").write_text(
            f"LABEL linux\n  APPEND root=PARTUUID={guids[1].lower()} ro\n")
    folder = tmp / "image"
    schema, manifest = capture_local(path, folder)
    return {"path": path, "sums": sums, "guids": guids, "schema": schema,
            "manifest": manifest, "folder": folder}


def test_fix_boot_sector_follows_a_moved_ntfs_partition_on_gpt(source, tmp_path):
    target = tmp_path / "win-target-deploy-safety.img"
    sh("truncate", "-s", "140M", str(target))
    plans = plan_for(source["schema"], str(target), {"force_dynamic_exact_match": True})
    ntfs = plans[0]["partitions"][1]
    old_start = ntfs["start_sector"]
    ntfs["start_sector"] = old_start + 2048  # the planner moved it 1 MiB further on
    plans[0]["sfdisk_script"] = render_script("gpt", 512, plans[0]["partitions"],
                                              plans[0]["disk_id"], None)
    deploy_local(str(target), source["schema"], source["manifest"], source["folder"], plans)
    part = partitions(target)[1]
    assert part["start"] == old_start + 2048
    with loop(target, part["start"] * 512, part["size"] * 512) as dev:
        primary = ntfs_boot_fields(dev)
        backup = ntfs_boot_fields(dev, primary["total_sectors"] * primary["sector_bytes"])
    assert primary["hidden_sectors"] == part["start"]
    assert backup["hidden_sectors"] == part["start"], "the backup boot sector was not fixed"
    assert read_sums(target, 2, "ntfs") == source["sums"][2]


def test_randomized_guids_are_followed_in_fstab_and_loader_config(source, tmp_path):
    target = tmp_path / "rnd-target-deploy-safety.img"
    shutil.copyfile(source["path"], target)  # same size: Original method
    plans = plan_for(source["schema"], str(target), {"randomize_guids": True})
    deploy_local(str(target), source["schema"], source["manifest"], source["folder"], plans,
                 {"randomize_guids": True})
    new = gpt_guids(target)
    assert all(new[n] != source["guids"][n] for n in (1, 2)), "GUIDs were not randomized"
    part = partitions(target)[0]
    with loop(target, part["start"] * 512, part["size"] * 512) as dev, \
            mounted(dev, "ext4", readonly=True) as root:
        fstab = (root / "etc" / "fstab").read_text()
        config = (root / "boot" / "extlinux" / "extlinux.conf").read_text()
    assert f"PARTUUID={new[1].lower()} /" in fstab
    assert f"PARTUUID={new[2].lower()} /win" in fstab
    assert f"root=PARTUUID={new[1].lower()}" in config
    assert source["guids"][1].lower() not in fstab + config


BOOTMGR = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"


def device_blob(offset: int, signature: int) -> bytes:
    """A BCD partition device descriptor of an MBR disk (signature and byte offset)."""
    return (bytes(16) + struct.pack("<IIII", 6, 0, 0x48, 0) + struct.pack("<Q", offset)
            + bytes(16) + struct.pack("<II", 1, signature) + bytes(20))


def hexval(data: bytes) -> str:
    """hivexsh's syntax for a REG_BINARY value."""
    return "hex:3:" + ",".join(f"{b:02x}" for b in data)


def test_update_bcd_follows_a_moved_partition_on_mbr(tmp_path):
    path = tmp_path / "bcd-src-deploy-safety.img"
    make_disk(path, 100, "mbr", [(30, "ext4"), (None, "ntfs")], seed=41)
    table = json.loads(sh("sfdisk", "--json", str(path)))["partitiontable"]
    signature = int(table["id"], 16)
    part = partitions(path)[1]
    old = device_blob(part["start"] * 512, signature)
    store = build_hive(tmp_path / "BCD", {
        f"Objects\\{BOOTMGR}\\Elements\\11000001": [("Element", hexval(old))],
        f"Objects\\{BOOTMGR}\\Elements\\12000004": [("Element", "string:Windows Boot Manager")],
    })
    with loop(path, part["start"] * 512, part["size"] * 512) as dev, mounted(dev, "ntfs") as root:
        (root / "Boot").mkdir()
        shutil.copyfile(store, root / "Boot" / "BCD")
    folder = tmp_path / "image"
    schema, manifest = capture_local(path, folder)
    target = tmp_path / "bcd-target-deploy-safety.img"
    sh("truncate", "-s", "140M", str(target))
    options = {"force_dynamic_exact_match": True, "update_bcd": True}
    plans = plan_for(schema, str(target), options)
    plans[0]["partitions"][1]["start_sector"] += 2048
    plans[0]["sfdisk_script"] = render_script("mbr", 512, plans[0]["partitions"],
                                              plans[0]["disk_id"], None)
    deploy_local(str(target), schema, manifest, folder, plans, options)
    moved = partitions(target)[1]
    assert moved["start"] == part["start"] + 2048
    with loop(target, moved["start"] * 512, moved["size"] * 512) as dev, \
            mounted(dev, "ntfs", readonly=True) as root:
        shutil.copyfile(root / "Boot" / "BCD", tmp_path / "BCD.after")
    element = hive_binary(tmp_path / "BCD.after", f"\\Objects\\{BOOTMGR}\\Elements\\11000001")
    assert element == device_blob(moved["start"] * 512, signature)
    assert hive_value(tmp_path / "BCD.after", f"\\Objects\\{BOOTMGR}\\Elements\\12000004",
                      "Element") == "Windows Boot Manager"


def hive_binary(path, key: str) -> bytes:
    """Read the binary Element value of a key with hivexsh."""
    out = subprocess.run(["hivexsh", str(path)], input=f"cd {key}\nlsval\n", text=True,
                         capture_output=True, check=True).stdout
    hexes = out.split("hex(3):", 1)[1].split()[0]
    return bytes(int(b, 16) for b in hexes.split(","))
