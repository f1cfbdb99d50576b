"""Property-based tests of the planner over random schemas and destination sizes."""

from __future__ import annotations

import subprocess
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.imaging.dynamic import waterfill
from app.imaging.minsize import disk_minimum
from app.imaging.planner import PlanError, plan_disk
from tests.conftest import needs_root
from tests.imaging.helpers import assert_table_matches, attached, check_plan, write_with_sfdisk
from tests.imaging.strategies import destination_sizes, schema_disks, selections

PURE = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
FEW = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
REAL = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@st.composite
def cases(draw, table=None, sector_size=None, allow_percent=False):
    """Draw (disk, selection disk or None, destination, options, minimum)."""
    disk = draw(schema_disks(table=table, sector_size=sector_size))
    selection = draw(st.none() | selections(disk, allow_percent))
    image_type = draw(st.sampled_from(["block", "block", "file"]))
    ss = disk["logical_sector_size"]
    if image_type == "file" and sector_size is None:
        ss = draw(st.sampled_from([512, 4096]))
    minimum = disk_minimum(disk, selection, sector_size=ss, image_type=image_type)
    base = minimum if minimum is not None else disk["size_bytes"]
    size = draw(destination_sizes(base, disk["size_bytes"], ss))
    options = {"partition_method": "dynamic", "force_dynamic_exact_match": True,
               "image_type": image_type, "randomize_guids": draw(st.booleans()),
               "dont_expand_volumes": draw(st.booleans())}
    destination = {"size_bytes": size, "logical_sector_size": ss, "physical_sector_size": ss}
    return disk, selection, destination, options, minimum


@PURE
@given(cases())
def test_dynamic_plans_keep_every_invariant(case) -> None:
    disk, selection, destination, options, minimum = case
    if destination["size_bytes"] < minimum:
        with pytest.raises(PlanError, match=f"at least {minimum} bytes"):
            plan_disk(disk, selection, destination, options)
        return
    plan = plan_disk(disk, selection, destination, options)
    assert plan["minimum_bytes"] == minimum
    check_plan(plan, disk, selection, options["image_type"])
    if options["randomize_guids"]:
        assert all(p["uuid"] is None for p in plan["partitions"])
    if options["dont_expand_volumes"] or options["image_type"] == "file":
        assert not any(p["grow"] for p in plan["partitions"])


@FEW
@given(cases(allow_percent=True))
def test_percent_sizes_plan_or_refuse_clearly(case) -> None:
    disk, selection, destination, options, _minimum = case
    try:
        plan = plan_disk(disk, selection, destination, options)
    except PlanError as exc:
        assert "too small" in str(exc) or "%" in str(exc) or "custom size" in str(exc)
        return
    check_plan(plan, disk, selection, options["image_type"])


@FEW
@given(schema_disks())
def test_minimum_never_exceeds_the_source_disk(disk) -> None:
    assert disk_minimum(disk) <= disk["size_bytes"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(1, 10**6)), min_size=1,
                max_size=40), st.integers(0, 5000))
def test_waterfill_matches_the_iterative_definition(items, extra) -> None:
    minimums = [m for m, _w in items]
    weights = [w for _m, w in items]
    available = sum(minimums) + extra
    result = waterfill(available, minimums, weights)
    assert sum(result) == available
    assert all(r >= m for r, m in zip(result, minimums, strict=True))
    # Reference: pin every item whose exact share is below its minimum, until stable.
    pinned: set[int] = set()
    while True:
        free = [i for i in range(len(items)) if i not in pinned]
        left = available - sum(minimums[i] for i in pinned)
        weight = sum(weights[i] for i in free)
        below = {i for i in free if Fraction(left * weights[i], weight) < minimums[i]}
        if not below:
            break
        pinned |= below
    for i in pinned:
        assert result[i] == minimums[i]
    receiver = max(free)
    for i in free:
        if i != receiver:
            assert result[i] == left * weights[i] // weight


@REAL
@given(cases(sector_size=512))
def test_real_sfdisk_writes_every_plan(tmp_path_factory, case) -> None:
    disk, selection, destination, options, minimum = case
    if minimum is None or destination["size_bytes"] < minimum:
        return
    plan = plan_disk(disk, selection, destination, options)
    path = tmp_path_factory.mktemp("sfdisk") / "disk.img"
    subprocess.run(["truncate", "-s", str(destination["size_bytes"]), str(path)], check=True)
    assert_table_matches(plan, write_with_sfdisk(plan, str(path)))


@needs_root
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases(sector_size=4096))
def test_real_sfdisk_on_4kn_loop_devices(tmp_path_factory, case) -> None:
    disk, selection, destination, options, minimum = case
    if minimum is None or destination["size_bytes"] < minimum:
        return
    plan = plan_disk(disk, selection, destination, options)
    path = tmp_path_factory.mktemp("sfdisk4k") / "disk.img"
    subprocess.run(["truncate", "-s", str(destination["size_bytes"]), str(path)], check=True)
    with attached(path, 4096) as dev:
        table = write_with_sfdisk(plan, dev)
    assert_table_matches(plan, table)


@st.composite
def lvm_cases(draw):
    """Draw the LVM example with random LV use, flags and a destination near its minimum."""
    from tests.imaging.helpers import load_schema

    schema = load_schema("schema_lvm.json")
    disk = schema["disks"][0]
    entries = []
    for lv in disk["volume_groups"][0]["logical_volumes"]:
        fs = lv["filesystem"]
        if fs["type"] in ("ext4", "xfs"):
            fs["used_bytes"] = draw(st.integers(0, lv["size_bytes"]))
            fs["min_bytes"] = draw(st.integers(fs["used_bytes"], lv["size_bytes"]))
            fs["image_bytes"] = draw(st.integers(fs["min_bytes"], lv["size_bytes"]))
        entries.append({"name": lv["name"], "deploy": draw(st.booleans()),
                        "fixed": draw(st.booleans())})
    selection = {"index": 0, "volume_groups": [{"name": "vg0", "logical_volumes": entries}]}
    minimum = disk_minimum(disk, selection)
    size = draw(st.integers(max(minimum - 64 * 2**20, 2**30), minimum + 200 * 2**30))
    return disk, selection, {"size_bytes": size // 512 * 512}, minimum


@FEW
@given(lvm_cases())
def test_logical_volumes_fit_their_volume_group(case) -> None:
    from app.imaging.minsize import lv_needs

    disk, selection, destination, minimum = case
    if destination["size_bytes"] < minimum:
        with pytest.raises(PlanError, match="too small"):
            plan_disk(disk, selection, destination, {"partition_method": "dynamic"})
        return
    plan = plan_disk(disk, selection, destination, {"partition_method": "dynamic"})
    check_plan(plan, disk, selection)
    [group] = plan["volume_groups"]
    pv = next(p for p in plan["partitions"] if p["number"] == group["pv_partition"])
    assert group["size_bytes"] + group["metadata_bytes"] <= pv["size_sectors"] * 512
    volumes = group["logical_volumes"]
    needs = dict((lv["name"], need) for lv, need in
                 lv_needs(disk["volume_groups"][0], selection))
    assert [lv["name"] for lv in volumes] == list(needs)
    used = sum(lv["extents"] for lv in volumes)
    # Every extent is shared out when a dynamic LV can take it; otherwise it stays free.
    if any(need.kind == "dynamic" for need in needs.values()):
        assert used == group["extents"]
    assert used <= group["extents"]
    for lv in volumes:
        need = needs[lv["name"]]
        if need.kind == "fixed":
            assert lv["size_bytes"] == -(-need.original_bytes // group["extent_bytes"]) * \
                group["extent_bytes"]
        else:
            assert lv["size_bytes"] >= need.min_bytes
