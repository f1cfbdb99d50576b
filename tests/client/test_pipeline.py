"""Tests of the pipeline helper on real processes."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from client.compress import compress_stage, decompress_stage
from client.pipeline import Pipeline, PipelineError, run_pipeline


def test_roundtrip_through_zstd_keeps_bytes() -> None:
    data = os.urandom(3 << 20) + b"x" * (5 << 20)
    packed = bytearray()
    run_pipeline([compress_stage("zstd", 3)], source=[data[i:i + 65536]
                 for i in range(0, len(data), 65536)], sink=packed.extend)
    out = bytearray()
    run_pipeline([decompress_stage("zstd")], source=[bytes(packed)], sink=out.extend)
    assert hashlib.sha256(out).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("algo", ["gzip", "lz4", "zstd"])
def test_three_stage_chain(algo: str) -> None:
    data = b"castor " * 200000
    out = bytearray()
    run_pipeline([["cat"], compress_stage(algo, 1), decompress_stage(algo)],
                 source=[data], sink=out.extend)
    assert bytes(out) == data


def test_failure_of_middle_stage_is_named_pipefail() -> None:
    with pytest.raises(PipelineError) as info:
        run_pipeline([["printf", "abc"], ["sh", "-c", "echo broken >&2; exit 3"], ["cat"]])
    assert "exited 3" in str(info.value)
    assert "broken" in str(info.value)


def test_missing_tool_reported() -> None:
    with pytest.raises(PipelineError) as info:
        run_pipeline([["cat"], ["no-such-tool-castor"]])
    assert "could not start" in str(info.value)


def test_large_stderr_does_not_deadlock() -> None:
    lines: list[str] = []
    total = run_pipeline(
        [["sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo line$i >&2; i=$((i+1)); done;"
                      " head -c 1000000 /dev/zero"]],
        on_stderr_line=lambda i, line: lines.append(line))
    assert total == 1000000
    assert lines[-1] == "line19999"


def test_carriage_return_progress_lines_split() -> None:
    lines: list[str] = []
    run_pipeline([["sh", "-c", "printf 'a 10%%\\rb 20%%\\rc 30%%\\n' >&2"]],
                 on_stderr_line=lambda i, line: lines.append(line))
    assert lines == ["a 10%", "b 20%", "c 30%"]


def test_cancel_kills_every_stage() -> None:
    cancel = threading.Event()
    started = time.monotonic()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(PipelineError) as info:
        run_pipeline([["sleep", "30"], ["cat"]], cancel=cancel)
    assert "cancelled" in str(info.value)
    assert time.monotonic() - started < 5


def test_timeout_kills() -> None:
    with pytest.raises(PipelineError) as info:
        run_pipeline([["sleep", "30"]], timeout=0.3)
    assert "timed out" in str(info.value)


def test_sink_error_kills_chain_and_propagates() -> None:
    def sink(data: bytes) -> None:
        raise RuntimeError("network gone")

    pipe = Pipeline([["cat", "/dev/zero"]])
    with pytest.raises(RuntimeError), pipe:
        for data in pipe.chunks():
            sink(data)
    assert pipe.procs[0].returncode is not None


def test_source_error_fails_pipeline() -> None:
    def source():
        yield b"abc"
        raise OSError("download broke")

    with pytest.raises(PipelineError) as info:
        run_pipeline([["cat"]], source=source())
    assert "download broke" in str(info.value)
