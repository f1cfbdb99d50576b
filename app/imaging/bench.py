"""Planner benchmark: `python -m app.imaging.bench` prints the time a plan takes."""

from __future__ import annotations

import time

from app.imaging.planner import plan_disk
from app.imaging.schema import normalise_schema
from app.imaging.units import GIB, MIB

GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def gpt_disk(partitions: int, each_bytes: int = 8 * GIB) -> dict:
    """Return a normalised GPT disk of `partitions` shrunk ext4 partitions, 1 MiB aligned."""
    sectors = each_bytes // 512
    parts = []
    for k in range(partitions):
        used = (k % 7 + 1) * GIB // 2
        parts.append({"number": k + 1, "start_sector": 2048 + k * sectors, "size_sectors": sectors,
                      "type": GPT_LINUX, "uuid": None, "name": f"part{k + 1}",
                      "filesystem": {"type": "ext4", "volume_bytes": each_bytes,
                                     "used_bytes": used, "min_bytes": used, "shrunk": True,
                                     "image_bytes": used + 600 * MIB}})
    size = (2048 + partitions * sectors + 33) * 512
    schema = {"format": "castor-schema", "version": 1,
              "disks": [{"index": 0, "size_bytes": size, "logical_sector_size": 512,
                         "table": "gpt", "partitions": parts}]}
    return normalise_schema(schema)["disks"][0]


def time_plans(disk: dict, destination_bytes: int, count: int) -> float:
    """Return the mean seconds of `count` dynamic plans of a disk."""
    destination = {"size_bytes": destination_bytes, "logical_sector_size": 512}
    options = {"partition_method": "dynamic", "force_dynamic_exact_match": True}
    start = time.perf_counter()
    for _ in range(count):
        plan_disk(disk, None, destination, options)
    return (time.perf_counter() - start) / count


def main() -> None:
    """Print the plan time of a 128-partition GPT disk and of 10,000 four-partition plans."""
    big = gpt_disk(128)
    mean = time_plans(big, big["size_bytes"] // 2, 200)
    print(f"128-partition GPT disk: {mean * 1000:.3f} ms a plan")
    small = gpt_disk(4)
    total = time_plans(small, 2 * small["size_bytes"], 10_000) * 10_000
    print(f"10,000 plans of a 4-partition disk: {total:.2f} s ({total / 10:.3f} ms a plan)")


if __name__ == "__main__":
    main()
