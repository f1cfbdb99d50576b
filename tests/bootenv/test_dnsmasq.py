"""`castor boot dnsmasq`: the proxy-DHCP configuration, rendered, parsed and run for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.bootenv import dnsmasq
from app.cli import main


def _config(tmp_path: Path, **kw) -> dnsmasq.ProxyConfig:
    return dnsmasq.ProxyConfig(interface="eth1", subnet="192.168.10.0/24",
                               server_url="http://192.168.10.5:8000/",
                               tftp_root=str(tmp_path / "tftp"), **kw)


def test_proxy_mode_answers_pxe_only_and_hands_out_no_addresses(tmp_path):
    pairs = dnsmasq.parse(dnsmasq.render(_config(tmp_path)))
    options = dict(pairs)
    assert options["port"] == "0"  # no DNS
    assert options["dhcp-range"] == "192.168.10.0,proxy,255.255.255.0"
    assert "enable-tftp" in options and options["tftp-root"] == str(tmp_path / "tftp")
    services = [value for key, value in pairs if key == "pxe-service"]
    assert 'tag:!ipxe,x86PC,"Castor (BIOS)",undionly.kpxe' in services
    assert 'tag:!ipxe,BC_EFI,"Castor (UEFI)",snponly.efi' in services
    assert 'tag:!ipxe,x86-64_EFI,"Castor (UEFI)",snponly.efi' in services
    url = "http://192.168.10.5:8000/boot/ipxe?mac=${net0/mac}&model=${product:uristring}"
    assert f'tag:ipxe,x86PC,"Castor (BIOS)",{url}' in services
    assert options["dhcp-boot"] == f"tag:ipxe,{url}"
    assert not any(key == "dhcp-range" and "proxy" not in value for key, value in pairs)


def test_uefi_loader_choice_and_bad_values(tmp_path):
    text = dnsmasq.render(_config(tmp_path, uefi_loader="ipxe.efi"))
    assert 'tag:!ipxe,BC_EFI,"Castor (UEFI)",ipxe.efi' in text
    with pytest.raises(ValueError, match="UEFI loader"):
        dnsmasq.render(_config(tmp_path, uefi_loader="grubx64.efi"))
    bad = dnsmasq.ProxyConfig(interface="eth1\ndhcp-range=0.0.0.0", subnet="10.0.0.0/8",
                              server_url="http://x", tftp_root="/t")
    with pytest.raises(ValueError, match="interface"):
        dnsmasq.render(bad)
    with pytest.raises(ValueError, match="server URL"):
        dnsmasq.render(dnsmasq.ProxyConfig(interface="eth1", subnet="10.0.0.0/8",
                                           server_url="http://x/,set:evil", tftp_root="/t"))


def test_loaders_are_linked_from_debian_ipxe(tmp_path):
    fake = tmp_path / "ipxe"
    fake.mkdir()
    for name in ("undionly.kpxe", "snponly.efi", "ipxe.efi"):
        (fake / name).write_bytes(b"loader")
    linked = dnsmasq.link_loaders(tmp_path / "tftp", fake)
    assert sorted(p.name for p in linked) == ["ipxe.efi", "snponly.efi", "undionly.kpxe"]
    assert (tmp_path / "tftp" / "undionly.kpxe").resolve() == fake / "undionly.kpxe"
    (fake / "ipxe.efi").unlink()
    with pytest.raises(FileNotFoundError, match="ipxe package"):
        dnsmasq.link_loaders(tmp_path / "tftp2", fake)


def test_cli_writes_the_config(tmp_path):
    if not Path("/usr/lib/ipxe/undionly.kpxe").exists():
        pytest.skip("Debian's ipxe package is not installed")
    out = tmp_path / "castor.conf"
    result = CliRunner().invoke(main, [
        "boot", "dnsmasq", "--interface", "lo", "--subnet", "10.9.0.0/16",
        "--server-url", "http://10.9.0.1:8000", "--tftp-root", str(tmp_path / "tftp"),
        "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "dhcp-range=10.9.0.0,proxy,255.255.0.0" in out.read_text()
    assert (tmp_path / "tftp" / "snponly.efi").is_symlink()


@pytest.mark.root
def test_real_dnsmasq_serves_ipxe_over_tftp_in_a_namespace(tmp_path):
    if os.geteuid() != 0 or not shutil.which("dnsmasq") or not shutil.which("curl"):
        pytest.skip("needs root, dnsmasq and curl")
    if not Path("/usr/lib/ipxe/undionly.kpxe").exists():
        pytest.skip("Debian's ipxe package is not installed")
    ns = f"bootenv-dq{uuid.uuid4().hex[:4]}"

    def inside(*argv, **kw):
        return subprocess.run(["ip", "netns", "exec", ns, *argv], **kw)

    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        inside("ip", "link", "set", "lo", "up", check=True)
        inside("ip", "link", "add", "br0", "type", "bridge", check=True)
        inside("ip", "addr", "add", "10.78.0.1/24", "brd", "+", "dev", "br0", check=True)
        inside("ip", "link", "set", "br0", "up", check=True)
        tftp = tmp_path / "tftp"
        dnsmasq.link_loaders(tftp)
        conf = tmp_path / "castor.conf"
        conf.write_text(dnsmasq.render(dnsmasq.ProxyConfig(
            interface="br0", subnet="10.78.0.0/24", server_url="http://10.78.0.1:8000",
            tftp_root=str(tftp))))
        proc = subprocess.Popen(["ip", "netns", "exec", ns, "dnsmasq", "--keep-in-foreground",
                                 f"--conf-file={conf}", "--log-facility=-", "--user=root",
                                 f"--pid-file={tmp_path / 'pid'}"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            got = None
            for _ in range(10):
                got = inside("curl", "-s", "--max-time", "5", "-o", str(tmp_path / "got"),
                             "tftp://10.78.0.1/undionly.kpxe")
                if got.returncode == 0:
                    break
                time.sleep(0.2)
            assert got.returncode == 0, "TFTP fetch failed"
            assert (tmp_path / "got").read_bytes() == Path(
                "/usr/lib/ipxe/undionly.kpxe").read_bytes()
        finally:
            proc.terminate()
            output = proc.communicate(timeout=10)[0]
        assert "proxy on subnet 10.78.0.0" in output, output
        assert "TFTP root is" in output, output
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
