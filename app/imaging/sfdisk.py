"""Render a disk plan as an sfdisk script (the input format of `sfdisk DEVICE`)."""

from __future__ import annotations

import re

from app.imaging.geometry import gpt_first_usable

# Partitions are named `partN`: sfdisk takes the partition number from the trailing digits,
# whatever the device is called (sda, nvme0n1, mmcblk0 or a disk image file).
SAFE_ATTRS = re.compile(r"^[A-Za-z0-9:, ]*$")
GPT_NAME_CHARS = 36


def _quote_name(name: str) -> str:
    """Return a partition name safe inside sfdisk's double quotes (GPT keeps 36 chars)."""
    if name.isprintable() and '"' not in name and "\\" not in name:
        return name[:GPT_NAME_CHARS]
    cleaned = "".join(ch for ch in name if ch.isprintable() and ch not in '"\\')
    return cleaned[:GPT_NAME_CHARS]


def partition_line(part: dict, gpt: bool) -> str:
    """Return the script line of one planned partition."""
    fields = [f"start={part['start_sector']}", f"size={part['size_sectors']}",
              f"type={part['type']}"]
    if gpt:
        if part.get("uuid"):
            fields.append(f"uuid={part['uuid']}")
        name = _quote_name(part.get("name") or "")
        if name:
            fields.append(f'name="{name}"')
        attrs = (part.get("attributes") or "").strip()
        if attrs and SAFE_ATTRS.match(attrs):
            fields.append(f'attrs="{attrs}"')
    elif part.get("bootable"):
        fields.append("bootable")
    return f"part{part['number']} : " + ", ".join(fields)


def render_script(table: str, sector_size: int, partitions: list[dict],
                  disk_id: str | None = None, first_lba: int | None = None) -> str:
    """Return the sfdisk script that writes this table: header, blank line, one line each."""
    gpt = table == "gpt"
    lines = [f"label: {'gpt' if gpt else 'dos'}"]
    if disk_id:
        lines.append(f"label-id: {disk_id}")
    lines.append("unit: sectors")
    if gpt:
        lines.append(f"first-lba: {first_lba or gpt_first_usable(sector_size)}")
    lines.append(f"sector-size: {sector_size}")
    lines.append("")
    ordered = sorted(partitions, key=lambda p: (p["start_sector"], p["role"] != "extended"))
    lines.extend(partition_line(p, gpt) for p in ordered)
    return "\n".join(lines) + "\n"
