"""Pure parts of replication: signatures, the transfer plan, the token bucket, the lock."""

from __future__ import annotations

import hashlib

import pytest

from app.replication.lock import RedisLock
from app.replication.plan import manifest_problems, plan_transfer
from app.replication.signing import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    sign_request,
    verify_request,
)
from app.replication.throttle import TokenBucket, bucket_for_kbps


def _entry(path: str, size: int, seed: str) -> dict:
    return {"path": path, "size_bytes": size, "sha256": hashlib.sha256(seed.encode()).hexdigest()}


def test_signature_round_trip_and_tampering():
    headers = sign_request("k", "a", "PUT", "/x?offset=0", "ab" * 32, now=1000)
    assert verify_request("k", "PUT", "/x?offset=0", headers, now=1100) == headers[NONCE_HEADER]
    with pytest.raises(SignatureError, match="bad signature"):
        verify_request("k", "PUT", "/x?offset=1", headers, now=1000)
    with pytest.raises(SignatureError, match="bad signature"):
        verify_request("k", "POST", "/x?offset=0", headers, now=1000)
    with pytest.raises(SignatureError, match="bad signature"):
        verify_request("other", "PUT", "/x?offset=0", headers, now=1000)
    with pytest.raises(SignatureError, match="stale"):
        verify_request("k", "PUT", "/x?offset=0", headers, now=1301)
    with pytest.raises(SignatureError, match="stale"):
        verify_request("k", "PUT", "/x?offset=0", headers, now=699)
    with pytest.raises(SignatureError, match="missing"):
        verify_request("k", "PUT", "/x?offset=0", {**headers, SIGNATURE_HEADER: ""}, now=1000)
    with pytest.raises(SignatureError, match="no shared secret"):
        verify_request("", "PUT", "/x?offset=0", headers, now=1000)


def test_plan_sends_missing_and_different_files_and_resumes_partials():
    a, b, c = _entry("a", 10, "a"), _entry("b", 20, "b"), _entry("c", 30, "c")
    manifest = {"files": [a, b, c]}
    target = {"manifest": None,
              "files": [a, _entry("b", 20, "changed"), _entry("old", 5, "old")],
              "incoming": [{**c, "complete": False, "received_bytes": 12}]}
    plan = plan_transfer(manifest, [a, b, c], target)
    assert not plan.up_to_date
    assert [(item.path, item.offset) for item in plan.send] == [("b", 0), ("c", 12)]
    assert plan.bytes_to_send == 20 + 18
    assert plan.total_bytes == 60


def test_plan_is_empty_when_target_matches_and_ignores_stale_partials():
    a = _entry("a", 10, "a")
    manifest = {"files": [a]}
    assert plan_transfer(manifest, [a], {"manifest": manifest, "files": [a]}).up_to_date
    # Same files but an extra one on the target: commit again to drop it.
    extra = plan_transfer(manifest, [a], {"manifest": manifest,
                                          "files": [a, _entry("x", 1, "x")]})
    assert not extra.up_to_date and extra.send == []
    # A partial of some other content starts over.
    other = {**_entry("a", 10, "other"), "complete": False, "received_bytes": 5}
    plan = plan_transfer(manifest, [a], {"manifest": None, "files": [], "incoming": [other]})
    assert plan.send[0].offset == 0
    done = {**a, "complete": True}
    assert plan_transfer(manifest, [a], {"manifest": None, "files": [],
                                         "incoming": [done]}).send == []


def test_manifest_problems():
    good = {**_entry("a", 1, "a"), "kind": "dd"}
    assert manifest_problems({"format": "castor-manifest", "files": [good]}) == []
    assert manifest_problems([]) == ["the manifest is not a JSON object"]
    bad = manifest_problems({"format": "castor-manifest",
                             "files": [{"path": "a", "size_bytes": -1, "sha256": "zz",
                                        "kind": "dd"},
                                       {**_entry("manifest.json", 1, "m"), "kind": "dd"},
                                       {**_entry("hd0/../schema.json", 1, "s"), "kind": "x"}]})
    assert len(bad) == 5


class FakeClock:
    """A clock that only moves when the bucket sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_token_bucket_holds_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(1000, clock=clock, sleep=clock.sleep)
    for _ in range(40):
        bucket.consume(250)
    # 10,000 bytes at 1,000 B/s, less the initial burst of 250 bytes.
    assert clock.now == pytest.approx(9.75)
    assert bucket_for_kbps(0) is None
    assert bucket_for_kbps(8000).rate == 1_000_000


def test_lock_is_exclusive_and_released_only_by_its_holder(redis_conn):
    key = "castor:test:replication:lock:unit"
    redis_conn.delete(key)
    first, second = RedisLock(redis_conn, key, 30), RedisLock(redis_conn, key, 30)
    assert first.acquire()
    assert not second.acquire()
    second.release()  # not the holder: must not free the lock
    assert redis_conn.get(key) == first.token.encode()
    assert first.extend()
    first.release()
    assert second.acquire()
    second.release()
    assert redis_conn.get(key) is None
