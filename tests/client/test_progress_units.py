"""Pure pieces of the client: progress bar text, reports, selections, capture specs."""

from __future__ import annotations

import io
import logging

from client.capture import block_spec, file_spec, partclone_stage
from client.progress import LogCollector, Progress, format_eta, human_bytes, render_bar
from client.restore import restore_stage
from client.upload import apply_selection
from tests.client.helpers import tiny_schema


def test_human_units_and_eta():
    assert human_bytes(512) == "512 B"
    assert human_bytes(3 * 1024 * 1024) == "3.0 MiB"
    assert format_eta(3725) == "1:02:05"
    assert format_eta(None) == "--:--"


def test_bar_shows_percent_rate_and_eta():
    line = render_bar("hd0 part1", 50, 200, 1024 * 1024, 90, width=10)
    assert "[##--------]" in line and "25.0%" in line and "1.0 MiB/s" in line
    assert "0:01:30" in line


def test_progress_reports_partclone_percent_and_cancel():
    sent = []

    def reporter(body):
        sent.append(body)
        return {"cancel": len(sent) > 1}

    progress = Progress(reporter, stream=io.StringIO(), report_every=0)
    progress.start("upload", "hd0 part2", 1000, disk=0, partition=2)
    progress.tool_line(0, "Elapsed: 00:00:02, Remaining: 00:00:06, Completed:  25.00%, "
                          "Rate:   1.20GB/min,")
    progress.update(300)
    assert sent[-1]["percent"] == 25.0 and sent[-1]["partition"] == 2
    assert sent[-1]["bytes_done"] == 300
    assert progress.cancelled.is_set()


def test_log_collector_keeps_the_tail():
    collector = LogCollector(limit=100)
    logger = logging.getLogger("castor.client.test")
    logger.addHandler(collector)
    try:
        for i in range(20):
            logger.warning("line %d", i)
    finally:
        logger.removeHandler(collector)
    assert collector.size <= 100 and "line 19" in collector.text()
    assert "line 0\n" not in collector.text()


def test_custom_upload_schema_marks_left_out_partitions():
    schema = tiny_schema()
    selection = {"disks": [{"index": 0, "partitions": [{"number": 1, "upload": False,
                                                         "fixed": True}]}]}
    marked = apply_selection(schema, selection)
    part = marked["disks"][0]["partitions"][0]
    assert part["upload"] is False and part["fixed"] is True
    assert apply_selection(tiny_schema(), None)["disks"][0].get("upload") is None


def test_capture_and_restore_commands():
    assert partclone_stage("ext4", "/dev/x") == (
        "partclone", ["partclone.extfs", "-c", "-s", "/dev/x", "-o", "-"])
    assert partclone_stage("ntfs", "/dev/x", ignore_fschk=True)[1][:3] == [
        "partclone.ntfs", "-c", "-I"]
    assert partclone_stage(None, "/dev/x")[0] == "dd"
    spec = block_spec(0, 2, "vfat", "/dev/x", "lz4", 1, 100)
    assert spec.path == "hd0/part2.vfat.partclone.lz4"
    assert spec.stages[1][0] == "lz4"
    wim = file_spec(1, 3, "ext4", "/dev/y", "gzip", 6, 100)
    assert wim.path == "hd1/part3.ext4.wim.gz" and wim.mount_fs == "ext4"
    assert "--pipable" in wim.stages[0] and "--unix-data" in wim.stages[0]
    none = block_spec(0, 1, "ext4", "/dev/x", "none", 3, 10)
    assert len(none.stages) == 1 and none.level is None
    assert restore_stage("partclone", "vfat", "/dev/z") == [
        "partclone.fat", "-r", "-s", "-", "-o", "/dev/z"]
    assert restore_stage("wim", "ntfs", "/dev/z") is None
