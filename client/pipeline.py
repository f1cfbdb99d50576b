"""Run `tool | compressor | ...` chains with pipefail semantics and no deadlock.

Each stage is an argv list; stage N's stdout feeds stage N+1's stdin through an OS pipe. The
parent writes the optional source into the first stage from a thread, reads every stage's
stderr from its own thread (so a chatty tool never blocks on a full stderr pipe), and reads
the last stage's stdout. Any failed stage, a timeout or a cancel kills the whole chain.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, BinaryIO

from client.run import ClientError, CommandError, redact, tail

log = logging.getLogger("castor.client")

Source = Iterable[bytes] | BinaryIO | IO[bytes] | None
Sink = Callable[[bytes], None] | BinaryIO | IO[bytes] | None


PIPE_BYTES = 1 << 20


def _widen_pipe(stream: IO[bytes]) -> None:
    """Give a pipe 1 MiB of buffer (Linux) so a briefly slow reader does not stall the tool."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (OSError, ValueError, ImportError):
        pass  # a smaller pipe only costs speed


class PipelineError(CommandError):
    """One or more stages of a pipeline failed; the message names each with its stderr."""

    def __init__(self, failures: list[tuple[list[str], int | None, str]], reason: str = "") -> None:
        self.failures = failures
        self.reason = reason
        if failures:
            argv, code, err = failures[0]
        else:
            argv, code, err = ["pipeline"], None, reason
        super().__init__(argv, code, err)
        parts = []
        for f_argv, f_code, f_err in failures:
            status = "could not start" if f_code is None else f"exited {f_code}"
            line = f"{redact(' '.join(f_argv))} {status}"
            if tail(f_err):
                line += f": {tail(f_err, 4)}"
            parts.append(line)
        message = "; ".join(parts) if parts else "pipeline failed"
        if reason:
            message = f"{reason}: {message}" if parts else reason
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


class Pipeline:
    """A running chain of processes; use as a context manager, read `chunks()`, then `wait()`."""

    def __init__(self, stages: list[list[str]], *, source: Source = None,
                 on_stderr_line: Callable[[int, str], None] | None = None,
                 timeout: float | None = None, cancel: threading.Event | None = None,
                 stdout: int | IO[bytes] | None = None) -> None:
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        self.stages = [[str(a) for a in stage] for stage in stages]
        self.source = source
        self.on_stderr_line = on_stderr_line
        self.timeout = timeout
        self.cancel = cancel
        self._final_stdout = stdout
        self.procs: list[subprocess.Popen] = []
        self._stderr: list[list[str]] = []
        self._threads: list[threading.Thread] = []
        self._feed_error: list[BaseException] = []
        self._killed_reason = ""
        self._deadline = time.monotonic() + timeout if timeout else None
        self._watch_stop = threading.Event()
        self._waited = False
        self._start()

    def _start(self) -> None:
        stdin: int | IO[bytes] | None = subprocess.PIPE if self.source is not None else (
            subprocess.DEVNULL)
        prev_stdout: IO[bytes] | None = None
        try:
            for i, argv in enumerate(self.stages):
                last = i == len(self.stages) - 1
                out = (self._final_stdout if self._final_stdout is not None
                       else subprocess.PIPE) if last else subprocess.PIPE
                log.debug("pipeline stage %d: %s", i, redact(" ".join(argv)))
                try:
                    proc = subprocess.Popen(argv, stdin=prev_stdout if i else stdin,
                                            stdout=out, stderr=subprocess.PIPE,
                                            start_new_session=True)
                except OSError as exc:
                    raise PipelineError([(argv, None, f"{argv[0]}: {exc.strerror}")]) from exc
                # Close the parent's copy so the upstream stage sees EPIPE when we die and
                # the downstream stage sees EOF when upstream exits.
                if prev_stdout is not None:
                    prev_stdout.close()
                self.procs.append(proc)
                self._stderr.append([])
                prev_stdout = proc.stdout if not last else None
                if proc.stdout is not None:
                    _widen_pipe(proc.stdout)
        except BaseException:
            self.kill("could not start")
            self._reap()
            raise
        if self.source is not None and self.procs[0].stdin is not None:
            _widen_pipe(self.procs[0].stdin)
        for i, proc in enumerate(self.procs):
            t = threading.Thread(target=self._read_stderr, args=(i, proc), daemon=True)
            t.start()
            self._threads.append(t)
        if self.source is not None:
            t = threading.Thread(target=self._feed, daemon=True)
            t.start()
            self._threads.append(t)
        if self._deadline is not None or self.cancel is not None:
            threading.Thread(target=self._watch, daemon=True).start()

    def _read_stderr(self, index: int, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        buf = b""
        # partclone rewrites its progress line with \r: split on both line endings.
        while True:
            data = proc.stderr.read1(65536) if hasattr(proc.stderr, "read1") else (
                proc.stderr.read(65536))
            if not data:
                break
            buf += data
            while True:
                cut = min((p for p in (buf.find(b"\n"), buf.find(b"\r")) if p >= 0), default=-1)
                if cut < 0:
                    break
                self._stderr_line(index, buf[:cut].decode(errors="replace"))
                buf = buf[cut + 1:]
        if buf:
            self._stderr_line(index, buf.decode(errors="replace"))
        proc.stderr.close()

    def _stderr_line(self, index: int, line: str) -> None:
        if not line.strip():
            return
        lines = self._stderr[index]
        lines.append(line)
        if len(lines) > 200:
            del lines[:100]
        if self.on_stderr_line is not None:
            try:
                self.on_stderr_line(index, line)
            except Exception:  # a progress callback must never break the data path
                log.exception("stderr callback failed")

    def _feed(self) -> None:
        stdin = self.procs[0].stdin
        assert stdin is not None
        try:
            if hasattr(self.source, "read"):
                while True:
                    data = self.source.read(1 << 20)  # type: ignore[union-attr]
                    if not data:
                        break
                    stdin.write(data)
            else:
                for data in self.source:  # type: ignore[union-attr]
                    if data:
                        stdin.write(data)
        except BrokenPipeError:
            pass  # the stage died; its exit status tells why
        except BaseException as exc:  # noqa: BLE001 - reported by wait()
            self._feed_error.append(exc)
            self.kill(f"source failed: {exc}")
        finally:
            try:
                stdin.close()
            except BrokenPipeError:
                pass

    def _watch(self) -> None:
        while not self._watch_stop.wait(0.1):
            if self.cancel is not None and self.cancel.is_set():
                self.kill("cancelled")
                return
            if self._deadline is not None and time.monotonic() > self._deadline:
                self.kill(f"timed out after {self.timeout} s")
                return
            if all(p.poll() is not None for p in self.procs):
                return

    def kill(self, reason: str = "killed") -> None:
        """Kill every stage (their whole process groups) and remember why."""
        if not self._killed_reason:
            self._killed_reason = reason
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    proc.kill()

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the last stage's stdout in chunks until EOF."""
        out = self.procs[-1].stdout
        if out is None:
            return
        while True:
            data = out.read1(size) if hasattr(out, "read1") else out.read(size)
            if not data:
                return
            yield data

    def _reap(self) -> None:
        for proc in self.procs:
            proc.wait()
        for t in self._threads:
            t.join(timeout=5)
        for proc in self.procs:
            for stream in (proc.stdout, proc.stdin):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass

    def wait(self) -> None:
        """Wait for every stage; raise PipelineError if any failed, was killed or timed out."""
        if self._waited:
            return
        self._waited = True
        last_out = self.procs[-1].stdout
        if last_out is not None:
            # Unread output would block the last stage forever: drain it.
            while last_out.read(1 << 16):
                pass
        self._reap()
        self._watch_stop.set()
        failures = []
        for argv, proc, err in zip(self.stages, self.procs, self._stderr, strict=True):
            if proc.returncode != 0:
                failures.append((argv, proc.returncode, "\n".join(err)))
        if self._feed_error and not self._killed_reason:
            self._killed_reason = f"source failed: {self._feed_error[0]}"
        if failures or self._killed_reason:
            if self._feed_error and isinstance(self._feed_error[0], ClientError):
                raise self._feed_error[0]
            raise PipelineError(failures, self._killed_reason)

    def stderr_text(self, index: int) -> str:
        """Return the kept stderr lines of one stage."""
        return "\n".join(self._stderr[index])

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.kill(f"aborted: {exc_type.__name__}")
            self._reap()
            self._watch_stop.set()
            return
        self.wait()


def run_pipeline(stages: list[list[str]], *, source: Source = None, sink: Sink = None,
                 on_stderr_line: Callable[[int, str], None] | None = None,
                 timeout: float | None = None,
                 cancel: threading.Event | None = None) -> int:
    """Run a pipeline to completion, handing its output to sink; return bytes produced."""
    total = 0
    with Pipeline(stages, source=source, on_stderr_line=on_stderr_line, timeout=timeout,
                  cancel=cancel) as pipe:
        write = sink if callable(sink) else (sink.write if sink is not None else None)
        for data in pipe.chunks():
            total += len(data)
            if write is not None:
                write(data)
    return total
