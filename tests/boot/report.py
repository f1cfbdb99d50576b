"""Turn the boot matrix's results file (JSON lines) into the Markdown table of docs/.

    CASTOR_BOOT_RESULTS=results.jsonl make test-boot
    python -m tests.boot.report results.jsonl > table.md

The last row of a cell wins (a cell run again replaces its earlier result).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.vm.layouts import LAYOUTS

DESTINATION_ORDER = {"source": 0, "smaller": 1, "same": 2, "larger": 3}
HEADER = ("| Layout | Destination | Method | Image | Boots | All checks | Boot s | Deploy s |\n"
          "|---|---|---|---|---|---|---:|---:|")


def load(path: Path) -> list[dict]:
    """The rows of a results file, one per cell (the latest run of each)."""
    rows: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[row["cell"]] = row
    layout_order = {name: i for i, name in enumerate(LAYOUTS)}
    return sorted(rows.values(), key=lambda r: (
        r["image_type"] != "block", layout_order.get(r["layout"], 99),
        DESTINATION_ORDER.get(r["destination"], 9), r["method"]))


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def table(rows: list[dict]) -> str:
    """The Markdown table of the rows."""
    lines = [HEADER]
    for row in rows:
        destination = row["destination"]
        if destination == "source":
            where = "source, after upload"
            method = "-"
        else:
            where = f"{destination} ({row['size_mib'] / 1024:g} GiB)"
            method = "Use Original" if row["method"] == "original" else "default (dynamic)"
        boots = "yes" if row.get("boots") else "no"
        checks = "pass" if row.get("passed") else f"FAIL: {row.get('error', '')[:80]}"
        image = "file (WIM)" if row["image_type"] == "file" else "block"
        lines.append(f"| {row['layout']} | {where} | {method} | {image} | {boots} | {checks} "
                     f"| {_seconds(row.get('boot_s'))} | {_seconds(row.get('deploy_s'))} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Print the table of the results file named on the command line."""
    rows = load(Path(argv[1]))
    sys.stdout.write(table(rows))
    passed = sum(bool(r.get("passed")) for r in rows)
    accel = sorted({r.get("accel", "?") for r in rows})
    sys.stdout.write(f"\n{passed} of {len(rows)} cells pass (accelerator: {', '.join(accel)}).\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
