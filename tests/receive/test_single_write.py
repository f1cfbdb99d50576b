"""A request body is written once, into its staging file, as it arrives: no spooled copy."""

from __future__ import annotations

import hashlib
import http.client
import os
import time

from tests.receive.helpers import (
    BASE,
    io_counter,
    open_files_under,
    open_upload,
    upload_server,
    worker_pids,
)

MIB = 1 << 20


def test_upload_body_streams_into_staging_without_a_spooled_copy(tmp_path):
    instance, token = upload_server(tmp_path / "server")
    spool = tmp_path / "tmpdir"
    spool.mkdir()
    os.environ["TMPDIR"] = str(spool)  # the server inherits it
    try:
        instance.start()
    finally:
        del os.environ["TMPDIR"]
    try:
        upload_id = open_upload(instance, token)
        pids = worker_pids(instance)
        size = 48 * MIB
        block = os.urandom(MIB)
        digest = hashlib.sha256()
        before = {key: io_counter(pids, key) for key in ("wchar", "write_bytes")}
        conn = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=60)
        conn.putrequest("PUT", f"{BASE}/uploads/{upload_id}/files/hd0/p1.img")
        for name, value in {"Authorization": f"Bearer {token}", "Content-Length": str(size),
                            "X-Castor-Size": str(size)}.items():
            conn.putheader(name, value)
        conn.endheaders()
        for _ in range(size // MIB // 2):
            conn.send(block)
            digest.update(block)
        # Half the body is on its way: it is in the staging file, and nowhere else.
        staging = instance.storage / "staging" / upload_id

        def staged() -> int:
            return sum(p.stat().st_size for p in staging.rglob("p1.img*"))

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and staged() < size // 2 - 4 * MIB:
            time.sleep(0.05)
        assert open_files_under(pids, spool) == []
        assert list(spool.iterdir()) == []
        assert staged() >= size // 2 - 4 * MIB
        for _ in range(size // MIB // 2):
            conn.send(block)
            digest.update(block)
        response = conn.getresponse()
        answer = response.read()
        conn.close()
        assert response.status == 201, answer
        assert digest.hexdigest().encode() in answer
        # Every received byte was written once by the server (plus a little bookkeeping).
        for key, value in before.items():
            written = io_counter(pids, key) - value
            assert written <= 1.05 * size, (key, written / size)
        assert io_counter(pids, "write_bytes") - before["write_bytes"] >= 0.95 * size
    finally:
        instance.kill()
