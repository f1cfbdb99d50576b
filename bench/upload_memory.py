"""One big upload's server-side cost: `python -m bench.upload_memory [--gib 10]`.

Streams a file of GIB GiB to a Castor server (as `castor run` serves) in the client's
32 MiB segments and reports the server's peak resident memory, its bytes written against
the bytes received, and the throughput.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.deploys import prepare  # noqa: E402
from bench.serve import Served  # noqa: E402
from client.api import Api  # noqa: E402

MIB = 1 << 20


def main() -> None:
    """Upload, then print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=10)
    args = parser.parse_args()
    total = int(args.gib * 1024) * MIB
    with tempfile.TemporaryDirectory(prefix="castor-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        config, token = prepare(work, 1)
        served = Served(config, work / "instance")
        try:
            print("load:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
            api = Api(served.url, token)
            upload_id = api.post("/uploads", {"image": "bench"})["upload_id"]
            block = os.urandom(MIB)
            before = served.counters()
            stop = served.watch()
            started = time.perf_counter()
            answer = api.put_segments(f"/uploads/{upload_id}/files/hd0/big.img",
                                      (block for _ in range(total // MIB)))
            seconds = time.perf_counter() - started
            peak = stop()
            after = served.counters()
            assert answer["size_bytes"] == total, answer
            print(f"{total / MIB:.0f} MiB in {seconds:.1f} s ({total / MIB / seconds:.0f} MiB/s); "
                  f"server peak RSS {peak / MIB:.0f} MiB; wrote "
                  f"{(after['write_bytes'] - before['write_bytes']) / total:.3f}x "
                  f"(wchar {(after['wchar'] - before['wchar']) / total:.3f}x) of the bytes "
                  f"received; {after['cpu_s'] - before['cpu_s']:.1f} CPU s")
            print("load:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
        finally:
            served.stop()


if __name__ == "__main__":
    main()
