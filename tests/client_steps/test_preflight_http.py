"""What the preflight reads of the image files over HTTP: bounded heads, never a stream.

Unicast reads each file's first chunk and checks its digest; a multicast receiver only the
header's bytes.

A real HTTP server (werkzeug, Range answered as the Castor server answers it) records the
Range of every request and the bytes it sent, so the tests see what went over the wire.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

import client.multicast_source as multicast_source
from client.api import Api, ChunkMismatch
from client.imagehead import PARTCLONE_HEADER_BYTES
from client.multicast_source import MulticastSource
from client.preflight import read_head
from client.sources import HEAD_LIMIT_BYTES, HttpSource

MIB = 1 << 20


class FileServer:
    """Serves one byte string at every path; keeps (Range header, bytes sent) per request."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.requests: list[tuple[str | None, int]] = []

    @Request.application
    def __call__(self, request: Request) -> Response:
        response = Response(self.data, mimetype="application/octet-stream")
        response = response.make_conditional(request, accept_ranges=True,
                                             complete_length=len(self.data))
        self.requests.append((request.headers.get("Range"), len(response.get_data())))
        return response


@pytest.fixture
def serve():
    """Start a FileServer for the given bytes; yield (Api, server)."""
    servers = []

    def start(data: bytes) -> tuple[Api, FileServer]:
        files = FileServer(data)
        httpd = make_server("127.0.0.1", 0, files, threaded=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return Api(f"http://127.0.0.1:{httpd.server_port}", "token"), files

    yield start
    for httpd in servers:
        httpd.shutdown()


def _entry(data: bytes, compression: str = "none", chunk: int = 16 * MIB,
           digests: bool = True) -> dict:
    entry = {"path": "hd0/part1.ext4.partclone", "kind": "partclone", "disk": 0,
             "partition": 1, "filesystem": "ext4", "compression": compression,
             "size_bytes": len(data), "chunk_bytes": chunk, "chunks": []}
    if digests:
        entry["chunks"] = [hashlib.sha256(data[i:i + chunk]).hexdigest()
                           for i in range(0, len(data), chunk)]
    return entry


def _multicast(api: Api, data: bytes) -> MulticastSource:
    info = {"session": {"image": "img", "state": "waiting"},
            "streams": [{"index": 0, "disk": 0, "partition": 1, "lv": None,
                         "size_bytes": len(data), "portbase": 9000}]}
    return MulticastSource(api, info, "lan0", 1, threading.Event())


def test_unicast_head_is_the_first_chunk_verified(serve):
    """Unicast checks the first chunk (one bounded request, not the file, no read-ahead)."""
    data = os.urandom(40 * MIB)
    api, files = serve(data)
    head = read_head(HttpSource(api, "img").head, _entry(data, chunk=4 * MIB),
                     PARTCLONE_HEADER_BYTES)
    assert head == data[:PARTCLONE_HEADER_BYTES]
    assert files.requests == [(f"bytes=0-{4 * MIB - 1}", 4 * MIB)]


def test_unicast_head_refuses_a_damaged_first_chunk(serve):
    data = bytearray(os.urandom(6 * MIB))
    entry = _entry(bytes(data), chunk=4 * MIB)
    data[3 * MIB] ^= 0xFF  # past the header, inside chunk 0
    api, _files = serve(bytes(data))
    with pytest.raises(ChunkMismatch, match=r"chunk 0 .*SHA-256 mismatch"):
        read_head(HttpSource(api, "img").head, entry, PARTCLONE_HEADER_BYTES)


def test_multicast_head_asks_for_its_first_256_kib_only(serve, monkeypatch):
    """A receiver's preflight reads a bounded head over HTTP and never starts udp-receiver:
    the session has not sent the stream yet, and taking it would steal it from the restore.
    Chunk digests are not its business (a wrong one here must not matter)."""
    data = os.urandom(40 * MIB)
    api, files = serve(data)

    def no_pipeline(*args, **kwargs):
        raise AssertionError("the preflight started a receiver")

    monkeypatch.setattr(multicast_source, "Pipeline", no_pipeline)
    entry = {**_entry(data), "chunks": ["0" * 64] * 3}
    head = read_head(_multicast(api, data).head, entry, PARTCLONE_HEADER_BYTES)
    assert head == data[:PARTCLONE_HEADER_BYTES]
    assert files.requests == [("bytes=0-262143", 256 << 10)]


def test_multicast_head_reads_on_up_to_8_mib_when_the_first_block_is_bigger(serve):
    """An lz4 image with 4 MiB blocks holds its header in a block the first range cuts:
    the second, still bounded, range is asked for, and nothing past 8 MiB."""
    noise = os.urandom(8 * MIB)
    # Each 16 bytes twice: lz4 halves it (an incompressible block would be stored raw and
    # decode from any prefix).
    raw = b"".join(noise[i:i + 16] * 2 for i in range(0, len(noise), 16))
    stored = subprocess.run(["lz4", "-B7", "-c"], input=raw, capture_output=True,
                            check=True).stdout
    assert len(stored) > HEAD_LIMIT_BYTES
    api, files = serve(stored)
    head = read_head(_multicast(api, stored).head, _entry(stored, "lz4"),
                     PARTCLONE_HEADER_BYTES)
    assert head == raw[:PARTCLONE_HEADER_BYTES]
    assert [r for r, _ in files.requests] == ["bytes=0-262143",
                                              f"bytes=262144-{HEAD_LIMIT_BYTES - 1}"]
    assert sum(sent for _, sent in files.requests) == HEAD_LIMIT_BYTES < len(stored)


def test_head_of_a_small_file_stays_inside_it(serve):
    """A file shorter than the first range is asked for up to its last byte, by either
    source (unicast without chunk digests: an older manifest)."""
    data = os.urandom(1000)
    api, files = serve(data)
    assert b"".join(_multicast(api, data).head(_entry(data))) == data
    assert b"".join(HttpSource(api, "img").head(_entry(data, digests=False))) == data
    assert files.requests == [("bytes=0-999", 1000)] * 2
