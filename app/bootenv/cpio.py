"""Write a directory tree as a newc cpio archive, the format the kernel unpacks as initramfs.

Written here rather than with GNU cpio so the build needs no extra host tool and the archive
is the same for the same tree: entries in name order, inode numbers counted from 1, hard
links stored as separate files, times clamped to SOURCE_DATE_EPOCH when it is set.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

TRAILER = "TRAILER!!!"


def _pad(length: int) -> bytes:
    """Return the NULs that bring a length up to the next multiple of four."""
    return b"\0" * (-length % 4)


def header(name: str, *, ino: int, mode: int, uid: int, gid: int, nlink: int, mtime: int,
           size: int, rdev: int = 0) -> bytes:
    """Return one newc header, with its name and padding."""
    encoded = name.encode() + b"\0"
    fields = [ino, mode, uid, gid, nlink, mtime, size, 0, 0, os.major(rdev), os.minor(rdev),
              len(encoded), 0]
    head = b"070701" + b"".join(f"{value:08X}".encode() for value in fields) + encoded
    return head + _pad(len(head))


def entries(root: Path) -> list[str]:
    """Return the tree's paths relative to root, parents before children."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def write_tree(root: Path, out: BinaryIO, chunk: int = 1 << 20) -> int:
    """Write every file, directory, link and device node under root; return the entry count."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    names = entries(root)
    for ino, name in enumerate(names, start=1):
        path = root / name
        info = path.lstat()
        mtime = int(info.st_mtime) if epoch is None else min(int(info.st_mtime), int(epoch))
        kind = stat.S_IFMT(info.st_mode)
        data = b""
        size = 0
        if kind == stat.S_IFLNK:
            data = os.readlink(path).encode()
            size = len(data)
        elif kind == stat.S_IFREG:
            size = info.st_size
        out.write(header(name, ino=ino, mode=info.st_mode, uid=info.st_uid, gid=info.st_gid,
                         nlink=2 if kind == stat.S_IFDIR else 1, mtime=mtime, size=size,
                         rdev=info.st_rdev if kind in (stat.S_IFCHR, stat.S_IFBLK) else 0))
        if kind == stat.S_IFREG:
            written = 0
            with open(path, "rb") as f:
                while block := f.read(chunk):
                    out.write(block)
                    written += len(block)
            if written != size:
                raise OSError(f"{path} changed size while it was packed")
        else:
            out.write(data)
        out.write(_pad(size))
    out.write(header(TRAILER, ino=0, mode=0, uid=0, gid=0, nlink=1, mtime=0, size=0))
    return len(names)
