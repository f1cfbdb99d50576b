"""Shared helpers of the client tests: images with profiles, minimal schemas."""

from __future__ import annotations

from app.extensions import db
from app.models import Image, default_profile_for


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
