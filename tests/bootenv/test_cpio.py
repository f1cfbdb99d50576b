"""The initramfs archive writer: newc headers, padding, links and device nodes."""

from __future__ import annotations

import io
import os
import stat

import pytest

from app.bootenv import cpio


def read_newc(data: bytes) -> list[dict]:
    """Parse a newc archive into entries (an independent reader of the format)."""
    found, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701", f"bad magic at {pos}"
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, size = fields[11], fields[6]
        name_start = pos + 110
        name = data[name_start:name_start + namesize - 1].decode()
        pos = name_start + namesize
        pos += -pos % 4
        body = data[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == cpio.TRAILER:
            assert pos == len(data)
            return found
        found.append({"name": name, "mode": fields[1], "size": size, "body": body,
                      "rdev": (fields[9], fields[10]), "ino": fields[0]})


def test_tree_round_trips(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("castor\n")
    (root / "init").write_bytes(b"#!/bin/sh\n")
    (root / "init").chmod(0o755)
    (root / "bin").symlink_to("usr/bin")
    (root / "empty").write_bytes(b"")
    out = io.BytesIO()
    assert cpio.write_tree(root, out) == 5
    entries = {e["name"]: e for e in read_newc(out.getvalue())}
    assert list(entries) == ["bin", "empty", "etc", "etc/hostname", "init"]
    assert entries["etc/hostname"]["body"] == b"castor\n"
    assert stat.S_ISDIR(entries["etc"]["mode"])
    assert stat.S_ISLNK(entries["bin"]["mode"]) and entries["bin"]["body"] == b"usr/bin"
    assert stat.S_IMODE(entries["init"]["mode"]) == 0o755
    assert len({e["ino"] for e in entries.values()}) == 5


def test_same_tree_same_bytes(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    (root / "a").write_text("x" * 1001)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first, second = io.BytesIO(), io.BytesIO()
    cpio.write_tree(root, first)
    os.utime(root / "a", (1800000000, 1800000000))
    cpio.write_tree(root, second)
    assert first.getvalue() == second.getvalue()


@pytest.mark.root
def test_console_device_node(tmp_path):
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True)
    os.mknod(root / "dev" / "console", 0o600 | stat.S_IFCHR, os.makedev(5, 1))
    out = io.BytesIO()
    cpio.write_tree(root, out)
    console = {e["name"]: e for e in read_newc(out.getvalue())}["dev/console"]
    assert stat.S_ISCHR(console["mode"]) and console["rdev"] == (5, 1)
