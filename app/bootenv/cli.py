"""`castor boot`: build the imaging environment and write the network boot configuration."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from app.bootenv import dnsmasq as dnsmasq_config
from app.bootenv import inputs


@click.group("boot")
def boot_group() -> None:
    """The imaging environment endpoints network-boot into."""


def _config() -> dict:
    """Return the server's configuration (paths and URL)."""
    from app import create_app

    return create_app().config


def _boot_files_path() -> str:
    """Return the configured BOOT_FILES_PATH (the folder /boot/files/ serves)."""
    return _config()["BOOT_FILES_PATH"]


@boot_group.command("build")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              help="where the boot files go (default: BOOT_FILES_PATH)")
@click.option("--suite", default=inputs.SUITE, show_default=True, help="Debian suite")
@click.option("--mirror", default=inputs.MIRROR, show_default=True,
              help="Debian mirror (a snapshot.debian.org URL pins every package)")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              help="keep the debootstrapped root here and reuse it")
@click.option("--level", default=12, show_default=True, help="zstd level of the initramfs")
def boot_build(output: Path | None, suite: str, mirror: str, cache: Path | None,
               level: int) -> None:
    """Build vmlinuz and initrd.img (and castor-env.json) from Debian packages."""
    from app.bootenv.build import BuildError, build

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    target = output or Path(_boot_files_path())
    try:
        build(target, suite=suite, mirror=mirror, cache=cache, level=level, say=click.echo)
    except BuildError as exc:
        raise click.ClickException(str(exc)) from exc


@boot_group.command("dnsmasq")
@click.option("--interface", required=True, help="the lab-facing network interface")
@click.option("--subnet", help="the lab network (default: the interface's IPv4 network)")
@click.option("--server-url", help="Castor's URL as endpoints reach it (default: SERVER_URL)")
@click.option("--tftp-root", type=click.Path(file_okay=False, path_type=Path),
              help="TFTP folder (default: TFTP_PATH); Debian's iPXE loaders are linked in")
@click.option("--uefi-loader", type=click.Choice(dnsmasq_config.UEFI_LOADERS),
              default=dnsmasq_config.UEFI_LOADERS[0], show_default=True,
              help="snponly.efi uses the firmware's NIC driver; ipxe.efi its own")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="file to write (default: standard output)")
def boot_dnsmasq(interface: str, subnet: str | None, server_url: str | None,
                 tftp_root: Path | None, uefi_loader: str, output: Path | None) -> None:
    """Write a proxy-DHCP + TFTP dnsmasq configuration that network-boots into Castor."""
    config = None if (server_url and tftp_root) else _config()
    root = tftp_root or Path(config["TFTP_PATH"])
    try:
        text = dnsmasq_config.render(dnsmasq_config.ProxyConfig(
            interface=interface, subnet=subnet or dnsmasq_config.interface_subnet(interface),
            server_url=server_url or config["SERVER_URL"], tftp_root=str(root.resolve()),
            uefi_loader=uefi_loader))
        dnsmasq_config.link_loaders(root)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    if output:
        output.write_text(text)
        click.echo(f"wrote {output}; run: dnsmasq --conf-file={output} --keep-in-foreground",
                   err=True)
    else:
        click.echo(text, nl=False)
