"""The byte source of a multicast deploy: udp-receiver first, HTTP for whatever it missed.

A partition stream that ends short, times out, was dropped by the sender, or was already
sent before this machine got to it is completed over HTTP with Range requests from the end
of the last chunk whose SHA-256 matched: the manifest's per-chunk digests are checked on the
multicast bytes as they arrive and on the HTTP bytes alike, and the whole file's SHA-256 as
for a unicast download. The machine then takes the session's next stream if it
is still to come, and finishes by HTTP once the session is over. Every stream's outcome is
logged and reported to the session ("stream 2: multicast 96 %, then HTTP 4 % (...)").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from client.api import Api, ChunkMismatch
from client.pipeline import Pipeline, PipelineError
from client.run import ClientError
from client.sources import ChunkChecker, HttpSource, http_head

log = logging.getLogger("castor.client")
CLIENTS = "/api/v1/multicast/clients"
# Stream states (server side) in which a receiver can still join the stream.
JOINABLE = ("pending", "waiting")
LIVE = ("waiting", "sending")


def receiver_argv(stream: dict, interface: str, info: dict, start_timeout: int) -> list[str]:
    """Return the udp-receiver command line of one stream (its own port pair)."""
    return ["udp-receiver", "--portbase", str(stream["portbase"]), "--interface", interface,
            "--nokbd", "--start-timeout", str(start_timeout),
            # A receiver the sender dropped (too slow to answer) would otherwise wait forever.
            "--receive-timeout", str(info.get("receive_timeout", 120)),
            *info.get("receiver_args", [])]


def split_text(stream: int, size: int, multicast: int, http: int, cause: str) -> str:
    """Return the log line of one stream's outcome ("stream 2: multicast 96 %, then ...")."""
    def pct(part: int) -> str:
        share = part * 100 / size if size else 100.0
        return f"{share:.0f} %" if share >= 1 or part == 0 else f"{share:.1f} %"

    if http == 0:
        text = f"stream {stream}: multicast 100 %"
    elif multicast == 0:
        text = f"stream {stream}: HTTP 100 %"
    else:
        text = f"stream {stream}: multicast {pct(multicast)}, then HTTP {pct(http)}"
    return f"{text} ({cause})" if cause else text


def failure_cause(exc: PipelineError | None, received: int, size: int) -> str:
    """Name why a stream stopped before its end, from udp-receiver's exit and output."""
    text = str(exc or "")
    if received == 0 and ("Receiver error" in text or "exited 255" in text
                          or "timed out" in text.lower()):
        return "no sender started the stream in time"
    if "Receiver timeout" in text or "exited 1" in text:
        return (f"the stream stopped arriving after {received} of {size} bytes "
                "(sender dropped this receiver, or the sender stopped)")
    if exc is not None:
        return f"udp-receiver failed after {received} of {size} bytes: {text[-300:]}"
    return f"the stream ended short: {received} of {size} bytes"


class MulticastSource(HttpSource):
    """Partition streams from a multicast session, completed over HTTP when they fall short."""

    retries_over_http = True

    def __init__(self, api: Api, info: dict, interface: str, member_id: int,
                 cancel: threading.Event, on_stream: Callable[[int], None] | None = None,
                 poll: float = 0.5) -> None:
        super().__init__(api, info["session"]["image"])
        self.info = info
        self.interface = interface
        self.member_id = member_id
        self.cancel = cancel
        self.on_stream = on_stream or (lambda _index: None)
        self.poll = poll
        self.streams = sorted(info["streams"], key=lambda s: s["index"])
        self.position = 0  # streams[position:] are still to come from the sender
        self.outcomes: dict[int, dict] = {}
        self._pending: dict[str, dict] = {}
        # One request at a time: the server updates this machine's row read-modify-write, so
        # a progress report racing a stream outcome would lose the outcome.
        self._lock = threading.Lock()
        self.session_state = info["session"].get("state", "waiting")

    # -- the session's view --------------------------------------------------------------
    def report(self, stream: int, body: dict) -> dict:
        """Send progress on a stream; remember the session's state from the answer."""
        with self._lock:
            answer = self.api.post(f"{CLIENTS}/{self.member_id}/progress",
                                   {"stream": stream, **body})
        self.session_state = answer.get("state", self.session_state)
        if self.session_state == "cancelled":
            self.cancel.set()
        return answer

    def stream_state(self, stream: dict) -> str:
        """Return the server's state of a stream ("over" once the session has ended)."""
        answer = self.report(stream["index"], {"bytes": 0, "total": stream["size_bytes"]})
        if answer.get("state") not in LIVE:
            return "over"
        states = answer.get("streams") or []
        return states[stream["index"]] if stream["index"] < len(states) else "pending"

    def wait_until_joinable(self, stream: dict) -> str:
        """Wait while the sender works on earlier streams; return the stream's state then."""
        while True:
            state = self.stream_state(stream)
            if state != "pending" or self.cancel.is_set():
                return state
            time.sleep(self.poll)

    # -- the byte source -------------------------------------------------------------------
    def head(self, entry: dict) -> Iterator[bytes]:
        """Yield the start of an image file for the preflight: a bounded head over HTTP.

        Not the stream (the session sends it later, and reading it would take it from the
        restore), and not the verified first chunk a unicast deploy checks: every machine of
        the session would download up to 16 MiB per file over HTTP before the session, what
        multicast is there to avoid. The header is checked here; damage past it is found by
        the chunk digests as the stream arrives.
        """
        return http_head(self.api, f"/images/{self.image}/files/{entry['path']}",
                         int(entry.get("size_bytes") or 0))

    def _stream_of(self, entry: dict) -> dict | None:
        for stream in self.streams:
            if (stream["disk"], stream.get("partition"), stream.get("lv")) == (
                    entry["disk"], entry.get("partition"), entry.get("lv")):
                return stream
        return None

    def partition(self, entry: dict) -> Iterator[bytes]:
        """Return one partition's bytes: its stream, completed by HTTP when needed."""
        stream = self._stream_of(entry)
        if stream is None:
            return self._over_http(entry, None, "the session does not send this file")
        order = self.streams.index(stream)
        while self.position < order:
            self._let_pass(self.streams[self.position])
            self.position += 1
        if order < self.position:
            return self._over_http(entry, stream, "its stream was sent before this machine "
                                                  "needed it")
        self.position = order + 1
        return self._receive(entry, stream)

    def _let_pass(self, stream: dict) -> None:
        """Receive and drop a stream deployed nowhere here, so the sender need not wait."""
        if self.session_state not in LIVE or self.wait_until_joinable(stream) not in JOINABLE:
            return
        self.on_stream(stream["index"])
        argv = receiver_argv(stream, self.interface, self.info, self._start_timeout(stream))
        try:
            with Pipeline([argv], cancel=self.cancel) as rx:
                for _ in rx.chunks():
                    pass
        except PipelineError as exc:
            log.info("stream %d (not deployed here) stopped early: %s", stream["index"], exc)

    def _start_timeout(self, stream: dict) -> int:
        if stream["index"] == self.streams[0]["index"]:
            return int(self.info.get("start_timeout", 600))
        # Later streams start within the sender's short wait, or never for this machine.
        return int(self.info.get("next_stream_timeout", 60))

    def _over_http(self, entry: dict, stream: dict | None, cause: str) -> Iterator[bytes]:
        if stream is not None:
            self.on_stream(stream["index"])
        log.info("%s: fetching it over HTTP (%s)", entry["path"], cause)
        self._pending[entry["path"]] = {"stream": stream, "multicast": 0,
                                        "http": entry["size_bytes"], "cause": cause}
        return self.http(entry)

    def _receive(self, entry: dict, stream: dict) -> Iterator[bytes]:
        """Yield the stream's bytes from udp-receiver, then the missing tail over HTTP."""
        size = entry["size_bytes"]
        state = self.wait_until_joinable(stream) if self.session_state in LIVE else "over"
        if self.cancel.is_set():
            raise ClientError("the multicast session was cancelled")
        if state not in JOINABLE:
            cause = ("the session is over" if state == "over" else
                     f"the sender was already past the start of stream {stream['index']}")
            yield from self._over_http(entry, stream, cause)
            return
        self.on_stream(stream["index"])
        checker = ChunkChecker(entry)
        received, failure, cause = 0, None, ""
        argv = receiver_argv(stream, self.interface, self.info, self._start_timeout(stream))
        try:
            with Pipeline([argv], cancel=self.cancel) as rx:
                for data in rx.chunks():
                    data = data[:size - received]
                    received += len(data)
                    if checker.enabled:
                        # Only bytes whose chunk digest matched go on to the restore.
                        yield from checker.feed(data)
                    elif data:
                        yield data
        except PipelineError as exc:
            failure = exc
        except ChunkMismatch as exc:
            cause = f"{exc} (damaged in transit)"
        if self.cancel.is_set():
            raise ClientError("the multicast session was cancelled")
        good = checker.verified if checker.enabled else received
        if received == size and checker.enabled and checker.buffer:
            cause = cause or "the last chunk does not match its SHA-256 (damaged in transit)"
        if good < size:
            cause = cause or failure_cause(failure, received, size)
            log.warning("stream %d: %s; completing it over HTTP from byte %d",
                        stream["index"], cause, good)
            yield from self.http(entry, good)
        self._pending[entry["path"]] = {"stream": stream, "multicast": good,
                                        "http": size - good, "cause": cause}

    def restored(self, entry: dict, again_over_http: bool = False) -> None:
        """Log and report how a verified partition's bytes arrived."""
        outcome = self._pending.pop(entry["path"], None) or {
            "stream": self._stream_of(entry), "multicast": 0, "http": 0, "cause": ""}
        if again_over_http:
            outcome = {**outcome, "multicast": 0, "http": entry["size_bytes"],
                       "cause": "the received bytes did not match the image's SHA-256, so "
                                "the partition was restored again over HTTP"}
        stream = outcome["stream"]
        index = stream["index"] if stream else -1
        text = split_text(index, entry["size_bytes"], outcome["multicast"], outcome["http"],
                          outcome["cause"])
        log.info("%s (%s)", text, entry["path"])
        self.outcomes[index] = outcome
        if stream is None:
            return
        try:
            with self._lock:
                self.api.post(f"{CLIENTS}/{self.member_id}/streams/{index}", {
                    "multicast_bytes": outcome["multicast"], "http_bytes": outcome["http"],
                    "size_bytes": entry["size_bytes"], "cause": outcome["cause"],
                    "text": text})
        except ClientError as exc:
            log.warning("could not report stream %d: %s", index, exc)

    def close(self) -> None:
        """Let the streams nobody here deploys pass, so the sender never waits for us."""
        while self.position < len(self.streams):
            self._let_pass(self.streams[self.position])
            self.position += 1

    def totals(self) -> tuple[int, int]:
        """Return (bytes by multicast, bytes by HTTP) over every restored partition."""
        return (sum(o["multicast"] for o in self.outcomes.values()),
                sum(o["http"] for o in self.outcomes.values()))
