"""A Redis lock so only one job replicates a given image to a given server at a time."""

from __future__ import annotations

import secrets

from redis import Redis

# Delete the key only if it still holds our token: never release someone else's lock.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""


class RedisLock:
    """`SET key token NX EX ttl`; released (if still ours) when the holder is done."""

    def __init__(self, connection: Redis, key: str, ttl: int) -> None:
        self.connection, self.key, self.ttl = connection, key, ttl
        self.token = secrets.token_hex(16)
        self.held = False

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; tell whether we got it."""
        self.held = bool(self.connection.set(self.key, self.token, nx=True, ex=self.ttl))
        return self.held

    def extend(self) -> bool:
        """Push the expiry out again while a long transfer runs."""
        return bool(self.connection.eval(_EXTEND, 1, self.key, self.token, self.ttl))

    def release(self) -> None:
        """Let go of the lock if it is still ours."""
        if self.held:
            self.connection.eval(_RELEASE, 1, self.key, self.token)
            self.held = False


def replication_lock_key(namespace: str, image_id: int, server_id: int) -> str:
    """Return the lock key of one image and server."""
    return f"castor:{namespace}:replication:lock:{image_id}:{server_id}"
