"""The client's HTTP layer against real sockets: chunked PUT, resumed Range downloads."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading

import pytest

from client.api import Api, ApiError
from client.restore import ChecksumError, verified
from client.run import ClientError

DATA = os.urandom(3 << 20)


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves DATA, breaking the first response halfway; echoes chunked PUT bodies' hash."""

    protocol_version = "HTTP/1.1"
    broken = {"count": 0}
    ranges: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.endswith("/missing"):
            body = json.dumps({"error": "no such file"}).encode()
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        start = 0
        header = self.headers.get("Range")
        self.ranges.append(header or "")
        if header:
            start = int(header.split("=")[1].rstrip("-"))
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(DATA) - start))
        self.end_headers()
        if self.broken["count"] == 0:
            self.broken["count"] += 1
            self.wfile.write(DATA[start:start + (1 << 20)])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection breaks mid-body
            return
        self.wfile.write(DATA[start:])

    def do_PUT(self) -> None:
        assert self.headers["Transfer-Encoding"] == "chunked"
        digest, size = hashlib.sha256(), 0
        while True:
            length = int(self.rfile.readline().strip(), 16)
            if length == 0:
                self.rfile.readline()
                break
            chunk = self.rfile.read(length)
            self.rfile.readline()
            digest.update(chunk)
            size += len(chunk)
        body = json.dumps({"sha256": digest.hexdigest(), "size_bytes": size,
                           "auth": self.headers["Authorization"]}).encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def http_server():
    Handler.broken["count"] = 0
    Handler.ranges = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_download_resumes_with_range(http_server):
    api = Api(http_server, "tok", retry_delay=0.01)
    got = b"".join(api.download("/images/x/files/a", size=len(DATA)))
    assert got == DATA
    assert Handler.ranges[0] == "" and Handler.ranges[1] == "bytes=1048576-"


def test_chunked_put_streams_generator(http_server):
    api = Api(http_server, "secret-token")
    parts = [os.urandom(70000) for _ in range(5)]
    answer = api.put_stream("/uploads/u/files/x", iter(parts))
    assert answer["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert answer["size_bytes"] == 350000
    assert answer["auth"] == "Bearer secret-token"


def test_error_answer_carries_server_message(http_server):
    api = Api(http_server, "tok")
    with pytest.raises(ApiError) as info:
        list(api.download("/images/x/files/missing"))
    assert info.value.status == 404 and "no such file" in str(info.value)


def test_unreachable_server_fails_clearly():
    api = Api("http://127.0.0.1:9", "tok", retries=2, retry_delay=0.01)
    with pytest.raises(ClientError) as info:
        api.get("/images")
    assert "unreachable after 2 attempts" in str(info.value)


def test_verified_stream_detects_corruption():
    data = [b"abc", b"def"]
    good = hashlib.sha256(b"abcdef").hexdigest()
    assert b"".join(verified(iter(data), good, "f")) == b"abcdef"
    with pytest.raises(ChecksumError, match="SHA-256 mismatch"):
        b"".join(verified(iter(data), "0" * 64, "hd0/part1"))
    with pytest.raises(ChecksumError, match="received 6 bytes"):
        b"".join(verified(iter(data), good, "f", expected_size=7))


def _chunked_entry(data: bytes, chunk_bytes: int) -> dict:
    return {"path": "a", "size_bytes": len(data), "chunk_bytes": chunk_bytes,
            "chunks": [hashlib.sha256(data[i:i + chunk_bytes]).hexdigest()
                       for i in range(0, len(data), chunk_bytes)]}


def test_verified_download_hands_on_only_checked_chunks(http_server):
    from client.api import ChunkMismatch

    api = Api(http_server, "tok", retry_delay=0.01)
    chunk = 1 << 20
    entry = _chunked_entry(DATA, chunk)
    assert b"".join(api.download_verified("/images/x/files/a", entry)) == DATA
    # The server's copy of chunk 2 is damaged: chunks 0 and 1 are handed on, nothing after.
    Handler.broken["count"] = 1
    entry["chunks"][2] = hashlib.sha256(b"other bytes").hexdigest()
    written = []
    with pytest.raises(ChunkMismatch, match="chunk 2 .* damaged"):
        for data in api.download_verified("/images/x/files/a", entry):
            written.append(data)
    assert b"".join(written) == DATA[:2 * chunk]
