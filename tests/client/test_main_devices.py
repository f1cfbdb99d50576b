"""The command line's error boundary and opening disk-image files as disks."""

from __future__ import annotations

import subprocess

from client.devices import open_disk, partition_node
from client.main import build_parser, main
from tests.conftest import needs_root


def test_missing_server_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.delenv("CASTOR_SERVER", raising=False)
    monkeypatch.delenv("CASTOR_TOKEN", raising=False)
    assert main(["upload", "--image", "x", "--disk", "/nope"]) == 1
    assert "--server and --token" in capsys.readouterr().err


def test_unreachable_server_exit_1(capsys):
    code = main(["--server", "http://127.0.0.1:9", "--token", "secret-abc", "images"])
    err = capsys.readouterr().err
    assert code == 1 and "unreachable" in err and "secret-abc" not in err


def test_parser_has_subcommands():
    args = build_parser().parse_args(["--server", "s", "--token", "t", "deploy", "--image",
                                      "a", "--disk", "d1", "--disk", "d2"])
    assert args.command == "deploy" and args.disks == ["d1", "d2"]


def test_partition_node_names():
    assert partition_node("/dev/sda", 2) == "/dev/sda2"
    assert partition_node("/dev/nvme0n1", 3) == "/dev/nvme0n1p3"
    assert partition_node("/dev/mmcblk0", 1) == "/dev/mmcblk0p1"


@needs_root
def test_open_disk_image_file_and_partition_loops(tmp_path):
    image = tmp_path / "d.img"
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    subprocess.run(["sfdisk", "-q", str(image)], input="label: dos\n,16M,83\n,,83\n",
                   text=True, check=True)
    with open_disk(str(image)) as disk:
        assert disk.is_image_file and disk.size_bytes == 64 << 20
        assert disk.logical_sector_size == 512
        dev = disk.partition_device(2, 34816, 96256)
        size = subprocess.run(["blockdev", "--getsize64", dev], capture_output=True,
                              text=True, check=True).stdout.strip()
        assert int(size) == 96256 * 512
        with open(dev, "wb") as handle:
            handle.write(b"CASTOR")
        loops = disk._part_loops.copy()
    with open(image, "rb") as handle:
        handle.seek(34816 * 512)
        assert handle.read(6) == b"CASTOR"
    attached = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    assert str(image) not in attached and all(d + ":" not in attached for d in loops.values())
