"""`castor boot`: build the imaging environment and write the network boot configuration."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from app.bootenv import inputs


@click.group("boot")
def boot_group() -> None:
    """The imaging environment endpoints network-boot into."""


def _boot_files_path() -> str:
    """Return the configured BOOT_FILES_PATH (the folder /boot/files/ serves)."""
    from app import create_app

    return create_app().config["BOOT_FILES_PATH"]


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
