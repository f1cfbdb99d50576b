"""Server-to-server request signatures: HMAC-SHA256 over method, path, time, nonce, body hash.

Pure functions: the nonce store (Redis) and the secret lookup live with the receiving API.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

MAX_SKEW_SECONDS = 300
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

SERVER_HEADER = "X-Castor-Server"
TIMESTAMP_HEADER = "X-Castor-Timestamp"
NONCE_HEADER = "X-Castor-Nonce"
BODY_HASH_HEADER = "X-Castor-Content-SHA256"
SIGNATURE_HEADER = "X-Castor-Signature"


class SignatureError(Exception):
    """A request's signature is missing, stale, malformed or wrong."""


def canonical_string(method: str, path: str, timestamp: str, nonce: str,
                     body_sha256: str) -> bytes:
    """Return the exact bytes both sides sign: one field a line."""
    return "\n".join([method.upper(), path, timestamp, nonce, body_sha256.lower()]).encode()


def compute_signature(secret: str, method: str, path: str, timestamp: str, nonce: str,
                      body_sha256: str) -> str:
    """Return the hex HMAC-SHA256 of the canonical string under the shared secret."""
    message = canonical_string(method, path, timestamp, nonce, body_sha256)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_request(secret: str, sender: str, method: str, path: str,
                 body_sha256: str = EMPTY_SHA256, now: float | None = None) -> dict[str, str]:
    """Return the headers that sign one request (`path` includes any query string)."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16)
    return {
        SERVER_HEADER: sender,
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        BODY_HASH_HEADER: body_sha256,
        SIGNATURE_HEADER: compute_signature(secret, method, path, timestamp, nonce, body_sha256),
    }


def verify_request(secret: str, method: str, path: str, headers, now: float | None = None,
                   max_skew: int = MAX_SKEW_SECONDS) -> str:
    """Check a request's signature headers and freshness; return its nonce or raise.

    The caller still has to refuse a nonce it has seen and to compare the declared body
    hash with the body it actually reads.
    """
    if not secret:
        raise SignatureError("no shared secret is set for this server")
    values = {}
    for name in (TIMESTAMP_HEADER, NONCE_HEADER, BODY_HASH_HEADER, SIGNATURE_HEADER):
        value = headers.get(name)
        if not value:
            raise SignatureError(f"unsigned request: header {name} is missing")
        values[name] = value.strip()
    try:
        timestamp = int(values[TIMESTAMP_HEADER])
    except ValueError:
        raise SignatureError("the timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > max_skew:
        raise SignatureError(
            f"stale request: timestamp is {int(current - timestamp)} s off (limit {max_skew} s)"
        )
    nonce = values[NONCE_HEADER]
    if not 16 <= len(nonce) <= 64 or not nonce.isalnum():
        raise SignatureError("malformed nonce")
    expected = compute_signature(secret, method, path, values[TIMESTAMP_HEADER], nonce,
                                 values[BODY_HASH_HEADER])
    if not hmac.compare_digest(expected, values[SIGNATURE_HEADER].lower()):
        raise SignatureError("bad signature: wrong shared secret or altered request")
    return nonce
