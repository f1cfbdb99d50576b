"""Signed HTTP calls to a peer com server, streamed and throttled (stdlib http.client)."""

from __future__ import annotations

import hashlib
import http.client
import json
from collections.abc import Callable
from urllib.parse import quote, urlencode, urlsplit

from app.replication.signing import EMPTY_SHA256, sign_request
from app.replication.throttle import TokenBucket

API = "/api/v1/replication"
SEND_BLOCK = 256 * 1024
SLOW_ANSWER_SECONDS = 3600
# A short answer (the storage report) is a few dozen bytes: anything past this is not one.
SMALL_ANSWER_BYTES = 64 * 1024


class RemoteError(Exception):
    """A peer call failed; `retryable` tells whether trying again can help."""

    def __init__(self, message: str, status: int = 0, retryable: bool = False,
                 body: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.body = body or {}


class Peer:
    """One target server: its URL, the shared secret and our name as the sender."""

    def __init__(self, url: str, secret: str, sender: str, timeout: float = 60,
                 bucket: TokenBucket | None = None) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"invalid server URL {url!r}: use http://host:port")
        self.url = url.rstrip("/")
        self.scheme, self.netloc, self.prefix = parts.scheme, parts.netloc, parts.path
        self.secret, self.sender, self.timeout, self.bucket = secret, sender, timeout, bucket
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            factory = (http.client.HTTPSConnection if self.scheme == "https"
                       else http.client.HTTPConnection)
            self.connection = factory(self.netloc, timeout=self.timeout)
        return self.connection

    def close(self) -> None:
        """Close the kept-alive connection."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def call(self, method: str, path: str, query: dict | None = None, body: bytes = b"",
             body_sha256: str | None = None,
             on_sent: Callable[[int], None] | None = None,
             wait: float | None = None, limit: int | None = None) -> dict:
        """Send one signed request and return its JSON answer, or raise RemoteError.

        `wait` overrides the socket timeout for calls whose answer takes long to compute;
        `limit` refuses an answer longer than that many bytes without reading the rest.
        """
        signed_path = API + path + (f"?{urlencode(query)}" if query else "")
        digest = body_sha256 or (hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256)
        headers = sign_request(self.secret, self.sender, method, signed_path, digest)
        headers["Content-Length"] = str(len(body))
        if method in ("POST", "PUT"):
            headers["Content-Type"] = ("application/json" if method == "POST"
                                       else "application/octet-stream")
        wire_path = self.prefix + quote(API + path, safe="/") + (
            f"?{urlencode(query)}" if query else "")
        try:
            connection = self._connect()
            if connection.sock is None:
                connection.connect()
            connection.sock.settimeout(wait or self.timeout)
            connection.putrequest(method, wire_path, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders()
            view = memoryview(body)
            for start in range(0, len(body), SEND_BLOCK):
                block = view[start:start + SEND_BLOCK]
                if self.bucket is not None:
                    self.bucket.consume(len(block))
                connection.send(block)
                if on_sent is not None:
                    on_sent(len(block))
            response = connection.getresponse()
            raw = self._read(response, limit)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise RemoteError(f"{self.url} unreachable: {exc}", retryable=True) from None
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            if response.status < 400:
                raise RemoteError(f"{self.url}: the answer is not a JSON object: "
                                  f"{_snippet(raw)}", status=response.status)
            answer = {"error": raw[:200].decode(errors="replace")}
        if response.status >= 400:
            message = answer.get("error") or f"HTTP {response.status}"
            # Server errors and lost chunks may pass; refusals (auth, bad data, full disk) won't.
            retryable = response.status >= 500 and response.status != 507 or \
                response.status in (409, 422)
            raise RemoteError(f"{self.url}: {message}", status=response.status,
                              retryable=retryable, body=answer)
        return answer

    def _read(self, response: http.client.HTTPResponse, limit: int | None) -> bytes:
        """Read an answer's body, refusing (and dropping the connection) past `limit` bytes."""
        if limit is None:
            return response.read()
        raw = response.read(limit + 1)
        if len(raw) > limit:
            self.close()
            raise RemoteError(f"{self.url}: the answer is longer than {limit} bytes")
        return raw

    def ping(self) -> dict:
        """Check the URL and shared secret."""
        return self.call("GET", "/ping")

    def storage_space(self) -> tuple[int, int]:
        """Ask the peer for the free and total bytes of its image store."""
        answer = self.call("GET", "/storage", limit=SMALL_ANSWER_BYTES)
        free, total = answer.get("free_bytes"), answer.get("total_bytes")
        if not all(type(value) is int and value >= 0 for value in (free, total)) \
                or free > total:
            raise RemoteError(f"{self.url}: the storage report is not two byte counts "
                              f"(free <= total): {_snippet(json.dumps(answer).encode())}")
        return free, total

    def report(self, name: str) -> dict:
        """Fetch what the peer holds of an image."""
        # The peer hashes every file it holds before answering: allow for big images.
        return self.call("GET", f"/images/{name}/manifest", wait=SLOW_ANSWER_SECONDS)

    def put_chunk(self, name: str, path: str, offset: int, size: int, sha256: str,
                  data: bytes, on_sent: Callable[[int], None] | None = None,
                  data_sha256: str | None = None) -> dict:
        """Send bytes offset.. of one file (`data_sha256` saves hashing the chunk again)."""
        query = {"offset": offset, "size": size, "sha256": sha256}
        return self.call("PUT", f"/images/{name}/files/{path}", query, data,
                         data_sha256 or hashlib.sha256(data).hexdigest(), on_sent)

    def open_file(self, name: str, path: str) -> http.client.HTTPResponse:
        """Start reading one file of the peer's copy (to repair ours); the caller closes it."""
        signed_path = API + f"/images/{name}/files/{path}"
        headers = sign_request(self.secret, self.sender, "GET", signed_path, EMPTY_SHA256)
        factory = (http.client.HTTPSConnection if self.scheme == "https"
                   else http.client.HTTPConnection)
        connection = factory(self.netloc, timeout=self.timeout)
        try:
            connection.request("GET", self.prefix + quote(signed_path, safe="/"),
                               headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise RemoteError(f"{self.url} unreachable: {exc}", retryable=True) from None
        if response.status != 200:
            raw = response.read()
            connection.close()
            raise RemoteError(f"{self.url}: {raw[:200].decode(errors='replace')}",
                              status=response.status)
        return response

    def commit(self, name: str, manifest: dict, extra_files: list[dict]) -> dict:
        """Ask the peer to verify and swap in its incoming copy."""
        body = json.dumps({"manifest": manifest, "extra_files": extra_files}).encode()
        return self.call("POST", f"/images/{name}/commit", body=body,
                         wait=SLOW_ANSWER_SECONDS)

    def delete(self, name: str) -> dict:
        """Ask the peer to delete an image."""
        return self.call("DELETE", f"/images/{name}")

    def rename(self, old: str, new: str) -> dict:
        """Ask the peer to rename an image."""
        return self.call("POST", f"/images/{old}/rename",
                         body=json.dumps({"new_name": new}).encode())


def _snippet(raw: bytes) -> str:
    """Return the start of an unexpected answer, printable, for an error message."""
    text = raw[:200].decode(errors="replace")
    return repr(text) if text else "an empty body"
