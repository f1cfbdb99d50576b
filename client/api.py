"""HTTP client of the server's client API, on the standard library's http.client.

JSON calls, chunked PUT uploads streamed from a generator (nothing staged on the client),
and downloads with Range that resume where a broken connection stopped, handed on one
verified chunk at a time (the manifest's per-chunk SHA-256) so nothing damaged is written.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import queue
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator

from client.run import ClientError

log = logging.getLogger("castor.client")

API_PREFIX = "/api/v1/client"
SEGMENT_BYTES = 32 << 20
NETWORK_ERRORS = (OSError, http.client.HTTPException, socket.timeout)


class ApiError(ClientError):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str, body: dict | None = None) -> None:
        self.status = status
        self.body = body or {}
        super().__init__(f"server refused ({status}): {message}")


class ChunkMismatch(ClientError):
    """A downloaded chunk did not match the manifest's digest; none of it was handed on."""


class Api:
    """A connection to one Castor server, authenticated by an API or task token."""

    def __init__(self, server: str, token: str | None, *, timeout: float = 60.0, retries: int = 3,
                 retry_delay: float = 1.0) -> None:
        parsed = urllib.parse.urlsplit(server if "://" in server else f"http://{server}")
        if parsed.scheme not in ("http", "https"):
            raise ClientError(f"unsupported server URL: {server}")
        self.scheme = parsed.scheme
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port
        self.base_path = parsed.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay

    def _connection(self) -> http.client.HTTPConnection:
        cls = (http.client.HTTPSConnection if self.scheme == "https"
               else http.client.HTTPConnection)
        return cls(self.host, self.port, timeout=self.timeout)

    def url(self, path: str) -> str:
        """Full request path for a client API path (`/uploads` → `/api/v1/client/uploads`)."""
        if not path.startswith("/api/"):
            path = API_PREFIX + path
        return self.base_path + path

    def _headers(self, extra: dict | None = None) -> dict:
        headers = {"Accept": "application/json"}
        if self.token:  # none before a boot ticket is traded for a task token
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    @staticmethod
    def _error(status: int, raw: bytes) -> ApiError:
        try:
            body = json.loads(raw or b"{}")
            message = body.get("error") or raw.decode(errors="replace")
        except ValueError:
            body, message = {}, raw.decode(errors="replace")[:300]
        return ApiError(status, message, body if isinstance(body, dict) else {})

    def request(self, method: str, path: str, body: dict | list | None = None, *,
                retry: bool = True) -> dict:
        """Send a JSON request and return the decoded JSON answer; retry network errors."""
        data = json.dumps(body).encode() if body is not None else None
        headers = self._headers({"Content-Type": "application/json"} if data is not None
                                else None)
        attempts = self.retries if retry else 1
        last: Exception | None = None
        for attempt in range(attempts):
            conn = self._connection()
            try:
                conn.request(method, self.url(path), body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except NETWORK_ERRORS as exc:
                last = exc
                log.warning("%s %s failed (%s), attempt %d/%d", method, path, exc,
                            attempt + 1, attempts)
                time.sleep(self.retry_delay * (attempt + 1))
                continue
            finally:
                conn.close()
            if resp.status >= 400:
                raise self._error(resp.status, raw)
            return json.loads(raw) if raw else {}
        raise ClientError(f"server unreachable after {attempts} attempts: {last}")

    def get(self, path: str) -> dict:
        """GET a JSON resource."""
        return self.request("GET", path)

    def post(self, path: str, body: dict | list | None = None) -> dict:
        """POST JSON and return the JSON answer."""
        return self.request("POST", path, body if body is not None else {})

    def put_json(self, path: str, body: dict) -> dict:
        """PUT a JSON document."""
        return self.request("PUT", path, body)

    def put_stream(self, path: str, chunks: Iterable[bytes],
                   headers: dict | None = None) -> dict:
        """PUT a body with chunked transfer encoding, streaming chunks as they come."""
        conn = self._connection()
        try:
            conn.putrequest("PUT", self.url(path))
            for key, value in self._headers({"Content-Type": "application/octet-stream",
                                             "Transfer-Encoding": "chunked",
                                             **(headers or {})}).items():
                conn.putheader(key, value)
            conn.endheaders()
            for data in chunks:
                if data:
                    conn.send(b"%x\r\n%s\r\n" % (len(data), data))
            conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()
            raw = resp.read()
        except NETWORK_ERRORS as exc:
            raise ClientError(f"upload of {path} broke: {exc}") from exc
        finally:
            conn.close()
        if resp.status >= 400:
            raise self._error(resp.status, raw)
        return json.loads(raw) if raw else {}

    def put_bytes(self, path: str, data: bytes, headers: dict | None = None) -> dict:
        """PUT a body held in memory; network failures are retried (the bytes are kept)."""
        last: Exception | None = None
        for attempt in range(self.retries):
            conn = self._connection()
            try:
                conn.request("PUT", self.url(path), body=data, headers=self._headers(
                    {"Content-Type": "application/octet-stream", **(headers or {})}))
                resp = conn.getresponse()
                raw = resp.read()
            except NETWORK_ERRORS as exc:
                last = exc
                log.warning("PUT %s failed (%s), attempt %d/%d", path, exc, attempt + 1,
                            self.retries)
                time.sleep(self.retry_delay * (attempt + 1))
                continue
            finally:
                conn.close()
            if resp.status >= 400:
                raise self._error(resp.status, raw)
            return json.loads(raw) if raw else {}
        raise ClientError(f"upload of {path} failed after {self.retries} attempts: {last}")

    def put_segments(self, path: str, chunks: Iterable[bytes],
                     segment_bytes: int = SEGMENT_BYTES) -> dict:
        """Upload a stream as segments of a few MiB, each sent while the next is read.

        A sender thread puts segment k while this thread collects segment k+1 from the
        stream, so the producing tools never wait for the server to store a segment.
        Returns the server's answer to the final segment.
        """
        outbox: queue.Queue = queue.Queue(maxsize=1)
        answer: dict = {}
        errors: list[BaseException] = []

        def sender() -> None:
            while (item := outbox.get()) is not None:
                if errors:
                    continue  # drain: the reader raises the first error
                offset, data, final = item
                try:
                    answer.clear()
                    answer.update(self.put_bytes(path, data, {
                        "X-Castor-Offset": str(offset), "X-Castor-Final": "1" if final else "0"}))
                except BaseException as exc:  # noqa: BLE001 - re-raised by the reader
                    errors.append(exc)

        thread = threading.Thread(target=sender, daemon=True)
        thread.start()
        offset, buffer = 0, bytearray()
        try:
            for data in chunks:
                buffer += data
                if len(buffer) >= segment_bytes:
                    if errors:
                        raise errors[0]
                    outbox.put((offset, bytes(buffer), False))
                    offset += len(buffer)
                    buffer = bytearray()
            if errors:
                raise errors[0]
            outbox.put((offset, bytes(buffer), True))
        finally:
            outbox.put(None)
            thread.join()
        if errors:
            raise errors[0]
        return answer

    def download(self, path: str, *, offset: int = 0, size: int | None = None,
                 stop: int | None = None, chunk: int = 1 << 20) -> Iterator[bytes]:
        """Yield a file's bytes; a broken connection resumes with a Range request.

        With `stop`, only the bytes before offset `stop` are asked for (a bounded Range), so
        the server sends no more than that however little of it the caller reads.
        """
        position = offset
        failures = 0
        if stop is not None:
            size = stop
        while size is None or position < size:
            conn = self._connection()
            try:
                wanted = f"bytes={position}-{stop - 1 if stop is not None else ''}"
                ranged = bool(position) or stop is not None
                headers = self._headers({"Range": wanted} if ranged else None)
                conn.request("GET", self.url(path), headers=headers)
                resp = conn.getresponse()
                if resp.status >= 400:
                    raise self._error(resp.status, resp.read())
                if ranged and resp.status != 206:
                    raise ClientError(f"server ignored the Range request for {path}")
                if size is None:
                    length = resp.getheader("Content-Length")
                    size = position + int(length) if length is not None else None
                while True:
                    data = resp.read1(chunk) if hasattr(resp, "read1") else resp.read(chunk)
                    if not data:
                        break
                    position += len(data)
                    failures = 0
                    yield data
                if size is None:
                    return
                if position < size:
                    raise http.client.IncompleteRead(b"", size - position)
            except NETWORK_ERRORS as exc:
                failures += 1
                if failures > self.retries:
                    raise ClientError(
                        f"download of {path} failed at byte {position}: {exc}") from exc
                log.warning("download of %s broke at byte %d (%s); resuming", path, position,
                            exc)
                time.sleep(self.retry_delay * failures)
            finally:
                conn.close()

    def download_verified(self, path: str, entry: dict) -> Iterator[bytes]:
        """Yield a manifest file's bytes, each chunk only once its SHA-256 checked out.

        A thread downloads and checks the next chunk while the caller writes this one.
        Entries without chunk digests (older manifests) stream as they come.
        """
        chunks, chunk_bytes = entry.get("chunks"), entry.get("chunk_bytes")
        stream = self.download(path, size=entry.get("size_bytes"))
        if not chunks or not chunk_bytes:
            yield from stream
            return
        ready: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()

        size = entry.get("size_bytes")

        def want(index: int) -> int:
            return chunk_bytes if size is None else min(chunk_bytes, size - index * chunk_bytes)

        def fetch() -> None:
            try:
                buffer, index = bytearray(), 0
                for data in stream:
                    buffer += data
                    while index < len(chunks) and 0 < want(index) <= len(buffer):
                        take = want(index)
                        _check_chunk(path, index, chunk_bytes, chunks, bytes(buffer[:take]),
                                     ready, stop)
                        del buffer[:take]
                        index += 1
                    if stop.is_set():
                        return
                if buffer and index < len(chunks):
                    _check_chunk(path, index, chunk_bytes, chunks, bytes(buffer), ready, stop)
                    buffer, index = bytearray(), index + 1
                if buffer or index != len(chunks):
                    raise ChunkMismatch(f"{path}: the data does not fill the manifest's "
                                        f"{len(chunks)} chunks")
                ready.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                ready.put(exc)

        thread = threading.Thread(target=fetch, daemon=True)
        thread.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    ready.get(timeout=0.1)
                except queue.Empty:
                    pass

    def checkout(self, task_id: int | None, ok: bool, error: str = "",
                 cancelled: bool = False) -> None:
        """Tell the server a task ended (best effort: a failure is only logged)."""
        if task_id is None:
            return
        try:
            self.post("/checkout", {"task_id": task_id, "ok": ok, "error": error[:4000],
                                    "cancelled": cancelled})
        except ClientError as exc:
            log.warning("checkout failed: %s", exc)


def damaged_chunk(path: str, index: int, chunk_bytes: int) -> ChunkMismatch:
    """Return the error of a downloaded chunk whose SHA-256 is not the manifest's."""
    return ChunkMismatch(f"{path}: chunk {index} (from byte {index * chunk_bytes}) is damaged "
                         "on the server (SHA-256 mismatch); nothing of it was written")


def _check_chunk(path: str, index: int, chunk_bytes: int, chunks: list[str], data: bytes,
                 ready: queue.Queue, stop: threading.Event) -> None:
    """Queue a chunk for writing if its digest matches; raise ChunkMismatch otherwise."""
    if hashlib.sha256(data).hexdigest() != chunks[index]:
        raise damaged_chunk(path, index, chunk_bytes)
    if not stop.is_set():
        ready.put(data)
