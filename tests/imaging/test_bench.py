"""The planner stays fast: a plan well under a millisecond, 128 partitions in a few."""

from __future__ import annotations

from app.imaging.bench import gpt_disk, time_plans
from app.imaging.planner import plan_disk


def test_128_partition_gpt_plan_is_fast_and_complete() -> None:
    disk = gpt_disk(128)
    plan = plan_disk(disk, None, {"size_bytes": disk["size_bytes"] // 2},
                     {"partition_method": "dynamic"})
    assert len(plan["partitions"]) == 128
    assert plan["sfdisk_script"].count("\npart") == 128
    # Measured about 3 ms on a loaded 2-core machine; the bound leaves room for CI noise.
    assert time_plans(disk, disk["size_bytes"] // 2, 20) < 0.05


def test_typical_plans_take_well_under_a_millisecond() -> None:
    disk = gpt_disk(4)
    # About 0.2 ms a plan measured here; 10,000 of them in about 2 s.
    assert time_plans(disk, 2 * disk["size_bytes"], 500) < 0.005
