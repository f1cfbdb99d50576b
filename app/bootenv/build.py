"""Build the Castor imaging environment: a Debian kernel and an initramfs holding the client.

Steps: debootstrap a bookworm root with the packages of `bootenv/packages.txt`, install the
kernel without an initramfs of its own, copy in the client and the init, prune docs, locales
and the kernel modules imaging does not need, then pack the root as a zstd cpio. The
debootstrapped root can be cached (a tarball keyed by the package list) so a change to the
client or the init rebuilds in a minute instead of a download.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from app.bootenv import cpio, inputs, modules

log = logging.getLogger("castor.bootenv")

ROOT_FORMAT = "1"  # bump when the way the root is made changes
KERNEL_NAME = "vmlinuz"
INITRD_NAME = "initrd.img"
VERSION_NAME = "castor-env.json"


class BuildError(RuntimeError):
    """A build step failed; the message says which and why."""


def sh(argv: list[str], *, env: dict | None = None, capture: bool = False) -> str:
    """Run one build command (argv, no shell); raise BuildError with its stderr tail."""
    log.debug("run %s", " ".join(argv))
    proc = subprocess.run(argv, env={**os.environ, **(env or {})}, text=True,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise BuildError(f"{argv[0]} exited {proc.returncode}: {tail}")
    return proc.stdout if capture else ""


def chroot(root: Path, argv: list[str], **kw) -> str:
    """Run a command inside the root being built."""
    env = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C", "INITRD": "No",
           "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return sh(["chroot", str(root), *argv], env=env, **kw)


def debootstrap(root: Path, suite: str, mirror: str) -> None:
    """Make the Debian root with every package of the environment but the kernel."""
    sh(["debootstrap", "--variant=minbase", "--include=" + ",".join(inputs.packages()),
        suite, str(root), mirror])
    # The kernel without initramfs-tools' hook run (INITRD=No): the root is the initramfs.
    chroot(root, ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                  inputs.KERNEL_PACKAGE])
    chroot(root, ["apt-get", "clean"])


def make_root(root: Path, suite: str, mirror: str, cache: Path | None) -> None:
    """Fill root with the Debian system, from the cache when it has this package list."""
    tarball = (cache / f"root-{ROOT_FORMAT}-{inputs.root_hash(suite, mirror)}.tar"
               if cache else None)
    if tarball and tarball.exists():
        log.info("Debian root from cache %s", tarball)
        sh(["tar", "-xf", str(tarball), "-C", str(root), "--numeric-owner"])
        return
    debootstrap(root, suite, mirror)
    if tarball:
        tarball.parent.mkdir(parents=True, exist_ok=True)
        tmp = tarball.with_suffix(".tmp")
        sh(["tar", "-cf", str(tmp), "-C", str(root), "--numeric-owner", "."])
        tmp.replace(tarball)


def package_versions(root: Path) -> dict[str, str]:
    """Return every installed package of the root with its version."""
    out = chroot(root, ["dpkg-query", "-W", "-f=${Package} ${Version}\\n"], capture=True)
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def kernel_version(root: Path) -> str:
    """Return the version of the one kernel installed in the root."""
    versions = sorted(p.name for p in (root / "lib/modules").iterdir())
    if len(versions) != 1:
        raise BuildError(f"expected one kernel in the root, found {versions}")
    return versions[0]


def install_client(root: Path) -> None:
    """Copy the repository's client package and the init into the root."""
    target = root / "usr/lib/python3/dist-packages/client"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(inputs.CLIENT, target, ignore=shutil.ignore_patterns("__pycache__"))
    script = root / "usr/bin/castor-client"
    script.write_text("#!/usr/bin/python3\nimport sys\n\nfrom client.main import main\n\n"
                      "sys.exit(main())\n")
    script.chmod(0o755)
    for name in ("reboot", "poweroff"):  # no service manager: these ask the kernel
        (root / "usr/sbin" / name).unlink(missing_ok=True)
        shutil.copy2(inputs.INPUTS / "power", root / "usr/sbin" / name)
    shutil.copy2(inputs.INPUTS / "init", root / "init")
    (root / "init").chmod(0o755)
    chroot(root, ["python3", "-m", "compileall", "-q", "/usr/lib/python3/dist-packages/client"])


def prune(root: Path) -> None:
    """Remove what imaging never reads: docs, man pages, locales, caches, /boot."""
    for pattern in inputs.prune_globs():
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def git_commit() -> str:
    """Return the repository's commit, with `-dirty` when the build inputs have changes."""
    try:
        commit = sh(["git", "-C", str(inputs.REPO), "rev-parse", "HEAD"], capture=True).strip()
        dirty = sh(["git", "-C", str(inputs.REPO), "status", "--porcelain", "--",
                    "bootenv", "client", "app/bootenv"], capture=True).strip()
    except (BuildError, FileNotFoundError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def pack(root: Path, initrd: Path, level: int) -> None:
    """Pack the root as a newc cpio compressed with zstd, files in a stable order."""
    with open(initrd, "wb") as out:
        # The kernel's zstd reader wants the default window (no --long).
        zstd = subprocess.Popen(["zstd", f"-{level}", "-T0", "-q", "-c"],
                                stdin=subprocess.PIPE, stdout=out)
        try:
            cpio.write_tree(root, zstd.stdin)
        finally:
            zstd.stdin.close()
        if zstd.wait() != 0:
            raise BuildError("zstd failed while packing the initramfs")


def build(output: Path, *, suite: str = inputs.SUITE, mirror: str = inputs.MIRROR,
          cache: Path | None = None, level: int = 12, work: Path | None = None,
          say: Callable[[str], None] = log.info) -> dict:
    """Build vmlinuz, initrd.img and castor-env.json into output; return the version record."""
    started = time.monotonic()
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="castor-bootenv-", dir=work) as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        say(f"Debian {suite} root from {mirror}")
        make_root(root, suite, mirror, cache)
        kver = kernel_version(root)
        versions = package_versions(root)
        shutil.copy2(root / "boot" / f"vmlinuz-{kver}", Path(tmp) / KERNEL_NAME)
        say(f"kernel {kver}: pruning modules")
        kept, total = modules.prune_modules(root / "lib/modules" / kver, inputs.module_rules())
        chroot(root, ["depmod", "-a", kver])
        install_client(root)
        prune(root)
        record = {
            "name": "castor-env", "inputs": inputs.inputs_hash(suite, mirror),
            "commit": git_commit(), "suite": suite, "mirror": mirror, "kernel": kver,
            "modules_kept": kept, "modules_total": total, "packages": versions,
        }
        (root / "etc/castor-env.json").write_text(json.dumps(record, indent=1, sort_keys=True))
        (root / "etc/castor-env-version").write_text(f"{record['inputs']} ({kver})\n")
        console = root / "dev/console"
        if not console.exists():  # the kernel opens it before /init mounts devtmpfs
            os.mknod(console, 0o600 | 0o020000, os.makedev(5, 1))
        say("packing the initramfs (zstd)")
        pack(root, Path(tmp) / INITRD_NAME, level)
        record["sizes"] = {name: (Path(tmp) / name).stat().st_size
                           for name in (KERNEL_NAME, INITRD_NAME)}
        record["build_seconds"] = round(time.monotonic() - started, 1)
        for name in (KERNEL_NAME, INITRD_NAME):
            shutil.move(Path(tmp) / name, output / (name + ".tmp"))
            (output / (name + ".tmp")).replace(output / name)
        (output / VERSION_NAME).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    total_mb = sum(record["sizes"].values()) / 1e6
    say(f"built {output}: {total_mb:.1f} MB in {record['build_seconds']} s")
    return record
