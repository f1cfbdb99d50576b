"""Computer name, sysprep edits, scripts and file copies into real filesystems."""

from __future__ import annotations

import codecs
import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from client import customize
from client.mount import mounted
from client.run import ClientError
from tests.client_steps.conftest import sh
from tests.client_steps.winhive import build_hive, empty_hive, hive_value
from tests.conftest import needs_root

UNATTEND = """<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <settings pass="specialize">
    <component name="Microsoft-Windows-Shell-Setup">
      <ComputerName>OLD-NAME</ComputerName>
      <TimeZone>Pacific Standard Time</TimeZone>
      <RegisteredOwner>Nobody</RegisteredOwner>
    </component>
  </settings>
  <settings pass="oobeSystem"><component><ComputerName /></component></settings>
</unattend>
"""

NAME_KEY = "ControlSet001\\Control\\ComputerName\\ComputerName"
TCPIP_KEY = "ControlSet001\\Services\\Tcpip\\Parameters"
needs_hivex = pytest.mark.skipif(not shutil.which("hivexsh"), reason="needs libhivex-bin")


def windows_tree(root: Path) -> tuple[Path, Path]:
    """Lay out a Windows volume with a UTF-8 and a UTF-16 unattend.xml in Windows' casing."""
    panther = root / "Windows" / "Panther" / "Unattend.xml"
    sysprep = root / "WINDOWS" / "System32" / "Sysprep" / "unattend.xml"
    for path in (panther, sysprep):
        path.parent.mkdir(parents=True)
    panther.write_text(UNATTEND, encoding="utf-8")
    sysprep.write_bytes(codecs.BOM_UTF16_LE + UNATTEND.encode("utf-16-le"))
    return panther, sysprep


def test_set_computer_name_in_unattend_files(tmp_path):
    panther, sysprep = windows_tree(tmp_path)
    changed = customize.set_computer_name(tmp_path, "LAB-PC-042")
    assert sorted(changed) == sorted([str(panther), str(sysprep)])
    text = panther.read_text(encoding="utf-8")
    assert text.count("<ComputerName>LAB-PC-042</ComputerName>") == 2
    assert "OLD-NAME" not in text and "<TimeZone>Pacific Standard Time</TimeZone>" in text
    raw = sysprep.read_bytes()
    assert raw.startswith(codecs.BOM_UTF16_LE)
    assert raw.decode("utf-16") == text  # same edit, same encoding as before
    # Nothing changes twice.
    assert customize.set_computer_name(tmp_path, "LAB-PC-042") == []


def test_set_computer_name_on_linux(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hostname").write_text("template\n")
    (etc / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\ttemplate.lan template\n"
                               "::1\tlocalhost ip6-localhost\n")
    changed = customize.set_computer_name(tmp_path, "web-07")
    assert changed == [str(etc / "hostname"), str(etc / "hosts")]
    assert (etc / "hostname").read_text() == "web-07\n"
    assert (etc / "hosts").read_text() == (
        "127.0.0.1\tlocalhost\n127.0.1.1\tweb-07\n::1\tlocalhost ip6-localhost\n")


def test_set_computer_name_adds_hosts_line_and_leaves_symlinks(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hosts").write_text("127.0.0.1 localhost")
    outside = tmp_path / "outside"
    outside.write_text("client\n")
    (etc / "hostname").symlink_to(outside)
    assert customize.set_computer_name(tmp_path, "db1") == [str(etc / "hosts")]
    assert (etc / "hosts").read_text() == "127.0.0.1 localhost\n127.0.1.1\tdb1\n"
    assert outside.read_text() == "client\n"


def windows_registry(root: Path) -> Path:
    """Lay out a Windows volume without an answer file but with a SYSTEM hive."""
    config = root / "WINDOWS" / "system32" / "config"
    config.mkdir(parents=True)
    return build_hive(config / "SYSTEM", {
        "Select": [("Current", "dword:0x1"), ("Default", "dword:0x1")],
        NAME_KEY: [("ComputerName", "string:OLDNAME"), ("@", "string:mnmsrvc")],
        TCPIP_KEY: [("Hostname", "string:oldname"), ("NV Hostname", "string:oldname"),
                    ("Domain", "string:lab.local")],
        "ControlSet002\\Control\\ComputerName\\ComputerName": [("ComputerName", "string:STALE")],
    })


@needs_hivex
def test_set_computer_name_in_the_registry_without_an_answer_file(tmp_path):
    hive = windows_registry(tmp_path)
    assert customize.set_computer_name(tmp_path, "lab-pc-7") == [str(hive)]
    assert hive_value(hive, "\\" + NAME_KEY, "ComputerName") == "LAB-PC-7"
    assert hive_value(hive, "\\" + TCPIP_KEY, "Hostname") == "lab-pc-7"
    assert hive_value(hive, "\\" + TCPIP_KEY, "NV Hostname") == "lab-pc-7"
    # Every other value stays as it was.
    assert hive_value(hive, "\\" + NAME_KEY, "@") == "mnmsrvc"
    assert hive_value(hive, "\\" + TCPIP_KEY, "Domain") == "lab.local"
    assert hive_value(hive, "\\ControlSet002\\Control\\ComputerName\\ComputerName",
                      "ComputerName") == "STALE"
    subprocess.run(["hivexml", str(hive)], check=True, capture_output=True)


@needs_hivex
def test_answer_file_and_registry_both_get_the_name(tmp_path):
    hive = windows_registry(tmp_path)
    panther = tmp_path / "WINDOWS" / "Panther"
    panther.mkdir()
    (panther / "unattend.xml").write_text(UNATTEND, encoding="utf-8")
    assert customize.set_computer_name(tmp_path, "PC2") == [
        str(panther / "unattend.xml"), str(hive)]
    assert hive_value(hive, "\\" + NAME_KEY, "ComputerName") == "PC2"
    assert "<ComputerName>PC2</ComputerName>" in (panther / "unattend.xml").read_text()


@needs_hivex
def test_a_hive_without_the_values_is_left_unchanged(tmp_path):
    config = tmp_path / "Windows" / "System32" / "config"
    config.mkdir(parents=True)
    hive = config / "SYSTEM"
    hive.write_bytes(empty_hive())
    assert customize.set_computer_name(tmp_path, "PC3") == []
    assert hive.read_bytes() == empty_hive()


@pytest.mark.parametrize("name", ["", "-bad", "has space", "a" * 64, "x<y"])
def test_set_computer_name_refuses_bad_names(tmp_path, name):
    with pytest.raises(ClientError, match="invalid computer name"):
        customize.set_computer_name(tmp_path, name)


def test_set_computer_name_respects_the_windows_limit(tmp_path):
    panther, _ = windows_tree(tmp_path)
    with pytest.raises(ClientError, match="longer than Windows allows"):
        customize.set_computer_name(tmp_path, "a-sixteen-chars0")
    assert "OLD-NAME" in panther.read_text(encoding="utf-8")


def test_existing_case_reuses_folders(tmp_path):
    (tmp_path / "WINDOWS" / "Setup").mkdir(parents=True)
    found = customize.existing_case(tmp_path, customize.clean_destination("C:\\windows\\setup\\x"))
    assert found == tmp_path / "WINDOWS" / "Setup" / "x"


def test_apply_sysprep_in_priority_order(tmp_path):
    panther, sysprep = windows_tree(tmp_path)
    modules = [
        {"name": "late", "opening_tag": "<TimeZone>", "closing_tag": "</TimeZone>",
         "contents": "W. Europe Standard Time", "priority": 5},
        {"name": "early", "opening_tag": "<TimeZone>", "closing_tag": "</TimeZone>",
         "contents": "UTC", "priority": 1},
        {"name": "owner", "opening_tag": "<RegisteredOwner>", "closing_tag": "</RegisteredOwner>",
         "contents": r"Lab \1 & Co", "priority": 3},
        {"name": "absent", "opening_tag": "<ProductKey>", "closing_tag": "</ProductKey>",
         "contents": "XXXXX", "priority": 0},
    ]
    changed = customize.apply_sysprep(tmp_path, modules)
    assert sorted(changed) == sorted([str(panther), str(sysprep)])
    for text in (panther.read_text(encoding="utf-8"), sysprep.read_bytes().decode("utf-16")):
        assert "<TimeZone>W. Europe Standard Time</TimeZone>" in text
        assert r"<RegisteredOwner>Lab \1 & Co</RegisteredOwner>" in text
        assert "ProductKey" not in text


def test_run_scripts_order_env_and_cwd(tmp_path):
    out = tmp_path / "out.txt"
    body = ("set -eu\n"
            'echo "$CASTOR_SCRIPT|$CASTOR_RUN_WHEN|$CASTOR_DISK|$CASTOR_COMPUTER_NAME|$PWD" '
            '>> "$OUT"\n')
    scripts = [
        {"name": "third", "contents": body, "priority": 9, "run_when": "before_file_copy"},
        {"name": "first", "contents": body.replace("\n", "\r\n"), "priority": 1,
         "run_when": "before_file_copy"},
        {"name": "other-stage", "contents": body, "priority": 0, "run_when": "after_file_copy"},
        {"name": "second", "contents": body, "priority": 5, "run_when": "before_file_copy"},
    ]
    env = {**customize.script_env(disk="/dev/sda", partition=2, mount_point="/mnt",
                                  image="win11", computer_name="PC1"), "OUT": str(out)}
    customize.run_scripts(scripts, "before_file_copy", env, cwd=tmp_path)
    assert out.read_text().splitlines() == [
        f"{name}|before_file_copy|/dev/sda|PC1|{tmp_path}" for name in ("first", "second", "third")]


def test_run_scripts_stops_at_a_failing_script(tmp_path):
    out = tmp_path / "out.txt"
    scripts = [{"name": "breaks", "contents": "echo nope >&2; exit 3", "priority": 1,
                "run_when": "before_imaging"},
               {"name": "never", "contents": f"touch {out}", "priority": 2,
                "run_when": "before_imaging"}]
    with pytest.raises(ClientError, match=r"script 'breaks' \(before_imaging\).*exit 3.*nope"):
        customize.run_scripts(scripts, "before_imaging", {})
    assert not out.exists()


def test_clean_destination():
    assert str(customize.clean_destination("C:\\Windows\\Setup\\Scripts")) == \
        "Windows/Setup/Scripts"
    assert str(customize.clean_destination("/")) == "."
    with pytest.raises(ClientError, match=r"'\.\.'"):
        customize.clean_destination("/../etc")


def module_source(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Make a file-copy module folder with a nested file and a zip; return expected files."""
    source = tmp_path / "module"
    (source / "drivers").mkdir(parents=True)
    (source / "setup.cmd").write_text("echo setup\r\n")
    (source / "drivers" / "net.inf").write_bytes(b"[Version]\r\n" * 300)
    with zipfile.ZipFile(source / "tools.zip", "w") as archive:
        archive.writestr("bin/tool.exe", b"MZ" + bytes(5000))
        archive.writestr("readme.txt", "tools")
    expected = {"setup.cmd": "echo setup\r\n", "drivers/net.inf": "[Version]\r\n" * 300}
    unzipped = {**expected, "bin/tool.exe": "MZ" + "\0" * 5000, "readme.txt": "tools"}
    return source, {"plain": expected, "unzipped": unzipped}


def digest(data: bytes) -> str:
    """Return the SHA-256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


@needs_root
@pytest.mark.root
@pytest.mark.parametrize("fs_type", ["ext4", "ntfs", "vfat"])
def test_copy_files_into_a_partition(mkfs, tmp_path, fs_type):
    dev = mkfs(fs_type, 64)
    source, expected = module_source(tmp_path)
    customize.copy_files(dev, fs_type, source, "C:\\Windows\\Setup", unzip=True)
    customize.copy_files(dev, fs_type, source / "setup.cmd", "/single", unzip=False)
    customize.copy_files(dev, fs_type, source, "/raw", unzip=False)

    def read(path: str) -> bytes:
        if fs_type == "vfat":
            out = tmp_path / "read.out"
            sh("mcopy", "-o", "-n", "-i", dev, f"::/{path}", str(out))
            return out.read_bytes()
        return (root / path).read_bytes()

    with mounted(dev, fs_type, readonly=True) if fs_type != "vfat" else _nothing() as root:
        for name, text in expected["unzipped"].items():
            assert digest(read(f"Windows/Setup/{name}")) == digest(text.encode()), name
        assert read("single/setup.cmd") == b"echo setup\r\n"
        assert read("raw/tools.zip")[:2] == b"PK"  # unzip off: the archive is copied as is
        for name, text in expected["plain"].items():
            assert read(f"raw/{name}") == text.encode()
    if fs_type == "ntfs":
        customize.copy_files(dev, fs_type, source / "setup.cmd", "\\WINDOWS\\SETUP", False)
        with mounted(dev, fs_type, readonly=True) as again:
            assert [p.name for p in again.iterdir() if p.name.lower() == "windows"] == [
                "Windows"]
            assert (again / "Windows" / "Setup" / "setup.cmd").is_file()


class _nothing:
    """A context manager that yields None (vfat is read with mtools, not mounted)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
