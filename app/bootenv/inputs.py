"""The imaging environment's build inputs: the `bootenv/` folder, the client, the build code.

Everything that goes into the boot files is read from the repository, so one hash over these
files names a build: the test cache and the version file both use it.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INPUTS = REPO / "bootenv"
CLIENT = REPO / "client"
BUILD_CODE = Path(__file__).resolve().parent
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
KERNEL_PACKAGE = "linux-image-amd64"


@dataclass(frozen=True)
class ModuleRules:
    """Which kernel module paths (relative to kernel/) the environment keeps."""

    keep: tuple[str, ...]
    drop: tuple[str, ...]

    def wanted(self, relative: str) -> bool:
        """Tell whether a module path like `drivers/ata/ahci.ko` is kept by the rules."""
        if any(relative.startswith(prefix) for prefix in self.drop):
            return False
        return any(relative.startswith(prefix) for prefix in self.keep)


def list_lines(path: Path) -> list[str]:
    """Return a list file's entries: one a line, blank lines and # comments left out."""
    lines = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def packages(folder: Path = INPUTS) -> list[str]:
    """Return the Debian packages of the environment (kernel aside)."""
    return list_lines(folder / "packages.txt")


def module_rules(folder: Path = INPUTS) -> ModuleRules:
    """Return the kernel module keep/drop rules of modules.txt."""
    entries = list_lines(folder / "modules.txt")
    return ModuleRules(keep=tuple(e for e in entries if not e.startswith("-")),
                       drop=tuple(e[1:] for e in entries if e.startswith("-")))


def prune_globs(folder: Path = INPUTS) -> list[str]:
    """Return the globs of paths removed from the root before packing."""
    return list_lines(folder / "prune.txt")


def _source_files() -> list[tuple[str, Path]]:
    """Return every file that goes into a build with its name in the hash, in a stable order."""
    found = []
    for label, base, pattern in (("bootenv", INPUTS, "*"), ("client", CLIENT, "*.py"),
                                 ("app/bootenv", BUILD_CODE, "*.py")):
        for path in base.rglob(pattern):
            if path.is_file() and "__pycache__" not in path.parts and not (
                    label == "app/bootenv" and fnmatch.fnmatch(path.name, "dnsmasq*")):
                found.append((f"{label}/{path.relative_to(base)}", path))
    return sorted(found)


def inputs_hash(suite: str = SUITE, mirror: str = MIRROR) -> str:
    """Return a short SHA-256 over the build inputs and the Debian source they are built from."""
    digest = hashlib.sha256(f"{suite}\n{mirror}\n".encode())
    for name, path in _source_files():
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def root_hash(suite: str = SUITE, mirror: str = MIRROR) -> str:
    """Return a short SHA-256 naming the Debian root alone (packages, suite, mirror)."""
    text = "\n".join([suite, mirror, KERNEL_PACKAGE, *packages()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
