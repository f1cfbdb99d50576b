"""A token bucket that keeps a sender under a byte rate."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """Allow `rate` bytes a second on average, with bursts up to `burst` bytes."""

    def __init__(self, rate_bytes_per_s: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = float(rate_bytes_per_s)
        # A quarter second of traffic keeps the rate smooth without tiny writes.
        self.capacity = float(burst if burst is not None else max(self.rate / 4, 1.0))
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.stamp = clock()

    def consume(self, amount: int) -> float:
        """Block until `amount` bytes may go out; return the seconds slept."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= amount
        if self.tokens >= 0:
            return 0.0
        # Going into debt lets one block be larger than the bucket; we wait it off.
        wait = -self.tokens / self.rate
        self.sleep(wait)
        return wait


def bucket_for_kbps(max_kbps: int) -> TokenBucket | None:
    """Return a bucket for a server's limit in kilobits per second, or None when unlimited."""
    if not max_kbps or max_kbps <= 0:
        return None
    return TokenBucket(max_kbps * 1000 / 8)
