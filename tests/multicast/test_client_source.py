"""The multicast byte source's pure parts: chunk checks, outcome lines, failure causes."""

from __future__ import annotations

import hashlib

import pytest

from client.api import ChunkMismatch
from client.multicast_source import failure_cause, split_text
from client.pipeline import PipelineError
from client.sources import ChunkChecker, checked


def _entry(data: bytes, chunk: int) -> dict:
    return {"path": "hd0/part1.img", "size_bytes": len(data), "chunk_bytes": chunk,
            "chunks": [hashlib.sha256(data[i:i + chunk]).hexdigest()
                       for i in range(0, len(data), chunk)]}


def test_chunk_checker_passes_only_verified_chunks() -> None:
    data = bytes(range(256)) * 40  # 10240 bytes: chunks of 4096, 4096, 2048
    checker = ChunkChecker(_entry(data, 4096))
    out = list(checker.feed(data[:5000]))
    assert out == [data[:4096]] and checker.verified == 4096
    out = list(checker.feed(data[5000:]))
    assert b"".join(out) == data[4096:] and checker.verified == len(data)


def test_chunk_checker_stops_at_a_damaged_chunk() -> None:
    data = bytes(range(256)) * 40
    damaged = data[:4100] + b"X" + data[4101:]
    checker = ChunkChecker(_entry(data, 4096))
    with pytest.raises(ChunkMismatch, match="chunk 1 \\(from byte 4096\\)"):
        list(checker.feed(damaged))
    assert checker.verified == 4096  # an HTTP completion resumes here


def test_resumed_download_is_checked_from_its_chunk() -> None:
    data = bytes(range(256)) * 40
    entry = _entry(data, 4096)
    assert b"".join(checked([data[4096:]], ChunkChecker(entry, 4096))) == data[4096:]
    with pytest.raises(ChunkMismatch):
        list(checked([data[4096:-1]], ChunkChecker(entry, 4096)))
    with pytest.raises(ValueError):
        ChunkChecker(entry, 100)


def test_outcome_lines() -> None:
    assert split_text(2, 1000, 960, 40, "dropped") == (
        "stream 2: multicast 96 %, then HTTP 4 % (dropped)")
    assert split_text(0, 1000, 1000, 0, "") == "stream 0: multicast 100 %"
    assert split_text(1, 1000, 0, 1000, "the session is over") == (
        "stream 1: HTTP 100 % (the session is over)")


def test_failure_causes_name_the_stream_not_the_image() -> None:
    timeout = PipelineError([(["udp-receiver"], 1, "Receiver timeout\nTransfer complete.")])
    assert "stopped arriving after 500 of 1000 bytes" in failure_cause(timeout, 500, 1000)
    never = PipelineError([(["udp-receiver"], 255, "Receiver error")])
    assert failure_cause(never, 0, 1000) == "no sender started the stream in time"
    assert "ended short" in failure_cause(None, 10, 1000)
    assert "damaged" not in failure_cause(timeout, 500, 1000)
