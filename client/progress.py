"""Progress of one imaging step: a terminal bar with rate and ETA, and reports to the server."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

from client.probe import parse_partclone_progress

log = logging.getLogger("castor.client")


def human_bytes(value: float) -> str:
    """Format a byte count with a binary unit (`1.5 GiB`)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} TiB"


def format_eta(seconds: float | None) -> str:
    """Format seconds as H:MM:SS (or `--:--` when unknown)."""
    if seconds is None or seconds < 0:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def render_bar(label: str, done: int, total: int | None, rate: float, eta: float | None,
               width: int = 30) -> str:
    """Return one progress line: label, bar, percent, bytes, rate and ETA."""
    fraction = min(1.0, done / total) if total else 0.0
    filled = int(fraction * width)
    bar = "#" * filled + "-" * (width - filled)
    percent = f"{fraction * 100:5.1f}%" if total else "  ?  "
    return (f"{label[:24]:<24} [{bar}] {percent} {human_bytes(done):>10} "
            f"{human_bytes(rate):>10}/s ETA {format_eta(eta)}")


class Progress:
    """Track one step; feed it byte counts and tool lines; it draws and reports."""

    def __init__(self, reporter=None, *, stream: TextIO | None = None,
                 report_every: float = 2.0) -> None:
        self.reporter = reporter  # callable(dict) -> dict | None, e.g. posting /progress
        self.stream = stream if stream is not None else sys.stderr
        self.report_every = report_every
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self.step = ""
        self.label = ""
        self.extra: dict = {}
        self.total: int | None = None
        self.done = 0
        self.tool_percent: float | None = None
        self.started = time.monotonic()
        self._last_report = 0.0
        self._last_draw = 0.0

    def start(self, step: str, label: str, total: int | None, **extra) -> None:
        """Begin a new step (one partition); total is the expected byte count."""
        with self._lock:
            self.step, self.label, self.total, self.extra = step, label, total, extra
            self.done = 0
            self.tool_percent = None
            self.started = time.monotonic()
        self.update(0, force=True)

    def rate(self) -> float:
        """Average bytes per second of the current step."""
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def percent(self) -> float | None:
        """Percent complete from the tool's own report, else from bytes."""
        if self.tool_percent is not None:
            return self.tool_percent
        return 100.0 * self.done / self.total if self.total else None

    def eta(self) -> float | None:
        """Seconds left, from the percent and the elapsed time."""
        pct = self.percent()
        if not pct:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed * (100.0 - pct) / pct

    def update(self, done: int, *, force: bool = False) -> None:
        """Record bytes processed so far; redraw and report when due."""
        self.done = done
        now = time.monotonic()
        if force or now - self._last_draw > 0.25:
            self._last_draw = now
            if self.stream.isatty():
                total = self.total
                shown = done if self.tool_percent is None or not total else int(
                    total * self.tool_percent / 100)
                self.stream.write("\r" + render_bar(self.label, shown, total, self.rate(),
                                                    self.eta()))
                self.stream.flush()
        if force or now - self._last_report > self.report_every:
            self._last_report = now
            self.report()

    def tool_line(self, _stage: int, line: str) -> None:
        """Take a stderr line of a tool (partclone) and use its percent when it has one."""
        parsed = parse_partclone_progress(line)
        if parsed and "percent" in parsed:
            self.tool_percent = parsed["percent"]
        elif line.strip():
            log.debug("tool: %s", line.strip())

    def report(self) -> None:
        """Send the current state to the server (failures are logged, never fatal)."""
        if self.reporter is None:
            return
        body = {"step": self.step, "message": self.label, "bytes_done": self.done,
                "bytes_total": self.total, "rate_bytes_s": int(self.rate()),
                "eta_s": None if self.eta() is None else int(self.eta()),
                "percent": self.percent(), **self.extra}
        try:
            answer = self.reporter(body) or {}
        except Exception as exc:  # progress is best effort; the data path goes on
            log.warning("progress report failed: %s", exc)
            return
        if answer.get("cancel"):
            self.cancelled.set()

    def finish(self) -> None:
        """End the current step: final report and a newline after the bar."""
        self.update(self.done, force=True)
        if self.stream.isatty():
            self.stream.write("\n")
            self.stream.flush()
        log.info("%s: %s in %.1f s", self.label, human_bytes(self.done),
                 time.monotonic() - self.started)


class LogCollector(logging.Handler):
    """Keep the client's log lines of one task so they can be sent to the server."""

    def __init__(self, limit: int = 500_000) -> None:
        super().__init__(logging.INFO)
        self.limit = limit
        self.lines: list[str] = []
        self.size = 0
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Store one formatted record (oldest dropped past the limit)."""
        line = self.format(record) + "\n"
        self.lines.append(line)
        self.size += len(line)
        while self.size > self.limit and self.lines:
            self.size -= len(self.lines.pop(0))

    def text(self) -> str:
        """Everything kept, as one string."""
        return "".join(self.lines)


def send_log(api, task_id: int | None, collector: LogCollector) -> None:
    """Upload the collected log to the task (best effort) and stop collecting."""
    logging.getLogger("castor.client").removeHandler(collector)
    if task_id is None or not collector.lines:
        return
    try:
        api.post("/log", {"task_id": task_id, "text": collector.text()})
    except Exception as exc:  # the log is a courtesy; the task result matters more
        log.warning("could not send the log: %s", exc)
