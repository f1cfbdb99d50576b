"""partclone headers: parsing, CRC, and the rule for restoring onto a smaller partition."""

from __future__ import annotations

import struct
import zlib

import pytest

from client.imagehead import (
    check_fs_name,
    decompress_prefix,
    needs_no_check,
    parse_partclone_header,
)
from client.run import ClientError

MIB = 1 << 20


def header(fs: bytes = b"NTFS", device: int = 6 << 30, blocks: int = 170898,
           block: int = 4096) -> bytes:
    """A partclone 0002 header laid out as partclone 0.3 writes it, CRC included."""
    data = bytearray(0x6A)
    data[0:16] = b"partclone-image\0"
    data[0x10:0x16] = b"0.3.23"
    data[0x1E:0x22] = b"0002"
    data[0x22:0x24] = b"\xde\xc0"
    data[0x24:0x24 + len(fs)] = fs
    struct.pack_into("<QQQQI", data, 0x34, device, blocks, 7982, 7982, block)
    return bytes(data) + struct.pack("<I", zlib.crc32(bytes(data)) ^ 0xFFFFFFFF)


def test_parse_reads_device_and_filesystem_sizes():
    parsed = parse_partclone_header(header())
    assert parsed.fs_name == "NTFS" and parsed.device_bytes == 6 << 30
    assert parsed.filesystem_bytes == 170898 * 4096


@pytest.mark.parametrize("offset", [0, 0x1F, 0x3C, 0x6B])
def test_damaged_header_refused(offset):
    data = bytearray(header())
    data[offset] ^= 0x01
    with pytest.raises(ClientError, match="damaged|not supported"):
        parse_partclone_header(bytes(data))


def test_short_header_refused():
    with pytest.raises(ClientError, match="truncated"):
        parse_partclone_header(header()[:50])


def test_no_check_only_when_the_filesystem_fits():
    parsed = parse_partclone_header(header())
    assert needs_no_check(parsed, 7 << 30, "p") is False  # as large as the source: no -C
    assert needs_no_check(parsed, 1 << 30, "p") is True  # shrunk volume fits: -C
    with pytest.raises(ClientError, match="does not fit"):
        needs_no_check(parsed, 170898 * 4096, "p")  # no room for the backup boot sector


def test_filesystem_name_must_match_manifest():
    check_fs_name(parse_partclone_header(header(b"EXTFS")), "ext4", "p")
    check_fs_name(parse_partclone_header(header(b"FAT16")), "vfat", "p")
    with pytest.raises(ClientError, match="does not belong"):
        check_fs_name(parse_partclone_header(header(b"EXTFS")), "ntfs", "p")


@pytest.mark.parametrize("compression", ["zstd", "gzip", "lz4", "none"])
def test_decompress_prefix_of_a_cut_stream(compression):
    import subprocess

    from client.compress import compress_stage

    raw = header() + bytes(range(256)) * 40000
    stage = compress_stage(compression, 1)
    stored = raw if stage is None else subprocess.run(stage, input=raw, capture_output=True,
                                                      check=True).stdout
    assert decompress_prefix(stored[:len(stored) // 2], compression, 0x6E) == raw[:0x6E]
