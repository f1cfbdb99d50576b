"""Read the head of a stored partition image: partclone's header, a WIM's magic, and the fit.

partclone (format 0002) starts every image with a 110-byte header: magic, versions, the
filesystem name, the source *device* size, the filesystem's block count and block size, then
a CRC-32 of the header. `partclone.<fs> -r` compares the device size with the target and
refuses a smaller one unless `-C` is given; the filesystem's own size is what has to fit.
"""

from __future__ import annotations

import struct
import subprocess
import zlib
from dataclasses import dataclass

from client.compress import decompress_stage
from client.run import ClientError

PARTCLONE_MAGIC = b"partclone-image\0"
PARTCLONE_HEADER_BYTES = 0x6E
WIM_MAGICS = (b"MSWIM\0\0\0", b"WLPWM\0\0\0")  # normal and pipable WIM
# partclone's filesystem names in the header, by the blkid type Castor records.
PARTCLONE_FS_NAMES = {"ext2": "EXTFS", "ext3": "EXTFS", "ext4": "EXTFS", "ntfs": "NTFS",
                      "xfs": "XFS", "btrfs": "BTRFS", "exfat": "EXFAT", "hfsplus": "HFS Plus",
                      "f2fs": "F2FS"}
FAT_TYPES = ("vfat", "fat", "fat12", "fat16", "fat32", "msdos")


@dataclass(frozen=True)
class PartcloneHeader:
    """The sizes a partclone image header records."""

    fs_name: str
    device_bytes: int  # the size of the device the image was captured from
    total_blocks: int  # the filesystem's own size, in blocks
    used_blocks: int
    block_size: int

    @property
    def filesystem_bytes(self) -> int:
        """The size of the captured filesystem itself."""
        return self.total_blocks * self.block_size


def parse_partclone_header(data: bytes, label: str = "image") -> PartcloneHeader:
    """Parse (and CRC-check) a partclone format-0002 header; raise ClientError if damaged."""
    if len(data) < PARTCLONE_HEADER_BYTES:
        raise ClientError(f"{label}: too short for a partclone image ({len(data)} bytes): "
                          "the image file is damaged or truncated")
    if data[:16] != PARTCLONE_MAGIC:
        raise ClientError(f"{label}: not a partclone image (no partclone-image magic): "
                          "the image file is damaged")
    version = data[0x1E:0x22]
    if version != b"0002":
        raise ClientError(f"{label}: partclone image format {version!r} is not supported "
                          "(Castor writes format 0002)")
    stored_crc = struct.unpack_from("<I", data, 0x6A)[0]
    if zlib.crc32(data[:0x6A]) ^ 0xFFFFFFFF != stored_crc:
        raise ClientError(f"{label}: the partclone header fails its CRC check: the image "
                          "file is damaged")
    fs_name = data[0x24:0x34].split(b"\0", 1)[0].decode("ascii", errors="replace")
    device, total, used, _bitmap = struct.unpack_from("<QQQQ", data, 0x34)
    (block,) = struct.unpack_from("<I", data, 0x54)
    if not block:
        raise ClientError(f"{label}: the partclone header gives no block size: the image "
                          "file is damaged")
    return PartcloneHeader(fs_name, device, total, used, block)


def check_fs_name(header: PartcloneHeader, fs_type: str | None, label: str) -> None:
    """Refuse an image whose header names another filesystem than the manifest."""
    if fs_type in FAT_TYPES:
        ok = header.fs_name.startswith("FAT")
    else:
        ok = PARTCLONE_FS_NAMES.get(fs_type or "") in (None, header.fs_name)
    if not ok:
        raise ClientError(f"{label}: the image holds {header.fs_name} but the manifest says "
                          f"{fs_type}: the image file does not belong here")


def needs_no_check(header: PartcloneHeader, target_bytes: int, label: str) -> bool:
    """Tell whether the restore needs partclone's `-C`; refuse when the filesystem cannot fit.

    A shrunk filesystem is captured from its full-size partition, so the header's device
    size is larger than a smaller planned partition that holds the filesystem well: then
    `-C` is needed and safe. NTFS keeps a backup boot sector past its last cluster: one
    more block is asked for.
    """
    if header.device_bytes <= target_bytes:
        return False
    need = header.filesystem_bytes + (header.block_size if header.fs_name == "NTFS" else 0)
    if need > target_bytes:
        raise ClientError(
            f"{label}: the image holds a {header.filesystem_bytes}-byte {header.fs_name} "
            f"filesystem (captured from a {header.device_bytes}-byte partition) that does "
            f"not fit the planned {target_bytes}-byte partition")
    return True


def decompress_prefix(data: bytes, compression: str, want: int) -> bytes:
    """Decompress the start of a stored stream (data may stop mid-frame); up to want bytes."""
    stage = decompress_stage(compression)
    if stage is None:
        return data[:want]
    if compression == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, want)
    # zstd and lz4 print what they could decode and then complain of the cut: that is fine.
    try:
        proc = subprocess.run(stage, input=data, capture_output=True, timeout=60, check=False)
    except FileNotFoundError as exc:
        raise ClientError(f"{stage[0]} is not installed") from exc
    return proc.stdout[:want]


def check_wim_head(data: bytes, label: str) -> None:
    """Refuse a file image that does not start like a WIM."""
    if data[:8] not in WIM_MAGICS:
        raise ClientError(f"{label}: not a WIM image (bad magic): the image file is damaged")
