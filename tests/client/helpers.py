"""Shared helpers of the client tests: images with profiles, minimal schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.extensions import db
from app.models import Image, default_profile_for

ROOT = Path(__file__).resolve().parents[2]


def make_image(app, name: str = "lab", image_type: str = "block", **fields) -> int:
    """Create an image with its default profile; return its id."""
    with app.app_context():
        image = Image(name=name, image_type=image_type, environment="linux", **fields)
        image.profiles.append(default_profile_for(image_type, "linux"))
        db.session.add(image)
        db.session.commit()
        return image.id


def tiny_schema(image_type: str = "block") -> dict:
    """A valid one-disk, one-partition schema v1."""
    return {
        "format": "castor-schema", "version": 1, "image_type": image_type,
        "disks": [{
            "index": 0, "name": "sda", "size_bytes": 64 << 20, "logical_sector_size": 512,
            "physical_sector_size": 512, "table": "mbr", "disk_id": "0x12345678",
            "boot_partition": None, "first_usable_sector": 1,
            "last_usable_sector": (64 << 20) // 512 - 1, "table_area_sectors": 2048,
            "partitions": [{
                "number": 1, "start_sector": 2048, "size_sectors": 100000, "type": "83",
                "uuid": None, "name": "", "attributes": "", "bootable": False,
                "role": "primary", "efi_boot": None, "lvm_vg": None,
                "filesystem": {"type": "ext4", "uuid": "u", "label": "", "volume_bytes":
                               51200000, "used_bytes": 1000000, "min_bytes": 51200000,
                               "shrunk": False, "block_size": 4096}}],
            "volume_groups": []}],
    }


def client_argv(server: dict, *args: str) -> list[str]:
    """argv of the real command line client against the test server."""
    return [sys.executable, "-m", "client.main", "--server", server["url"], "--token",
            server["token"], *args]


def castor(server: dict, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """Run the client and check its exit status."""
    proc = subprocess.run(client_argv(server, *args), cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def set_profile(server: dict, image: str, **options) -> None:
    """Change options of an image's default profile."""
    with server["app"].app_context():
        image_row = db.session.scalar(db.select(Image).filter_by(name=image))
        for key, value in options.items():
            setattr(image_row.profiles[0], key, value)
        db.session.commit()


def set_protected(server: dict, image: str, value: bool) -> None:
    """Protect or unprotect an image."""
    with server["app"].app_context():
        db.session.scalar(db.select(Image).filter_by(name=image)).protected = value
        db.session.commit()


def manifest(server: dict, image: str) -> dict:
    """The stored manifest of an image."""
    return json.loads((server["storage"] / "images" / image / "manifest.json").read_text())
