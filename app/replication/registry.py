"""Keep the receiving server's image rows in step with the image folders it receives."""

from __future__ import annotations

import json
from pathlib import Path

from app import storage
from app.extensions import db
from app.models import Image, default_profile_for, record_history
from app.models.base import utcnow


def record_replicated_image(storage_path: str | Path, name: str, manifest: dict,
                            sender: str) -> Image:
    """Create or update the image row for a folder that replication just completed."""
    folder = storage.image_dir(storage_path, name)
    image = db.session.scalar(db.select(Image).filter_by(name=name))
    if image is None:
        image_type = manifest.get("image_type") or "block"
        # A replica must not fan out again from here, or two servers would ping-pong.
        image = Image(name=name, image_type=image_type, replication_mode="none",
                      environment="winpe" if image_type == "both" else "linux", origin=sender)
        image.profiles.append(default_profile_for(image.image_type, image.environment))
        db.session.add(image)
    schema_file = folder / storage.SCHEMA
    if schema_file.is_file():
        try:
            image.schema_json = json.dumps(json.loads(schema_file.read_text()))
        except ValueError:
            pass  # the folder is complete and verified; a bad schema is the uploader's to fix
    image.last_upload_id = manifest.get("upload_id") or image.last_upload_id
    image.last_upload_at = utcnow()
    image.size_on_server_bytes = storage.folder_size(folder)
    db.session.flush()
    record_history("image", image.id, "replicated", {"from": sender, "name": name},
                   username=f"server:{sender}")
    db.session.commit()
    return image


def forget_replicated_image(name: str, sender: str) -> None:
    """Remove the row of an image whose deletion a peer propagated."""
    image = db.session.scalar(db.select(Image).filter_by(name=name))
    if image is not None:
        record_history("image", image.id, "deleted", {"from": sender, "name": name},
                       username=f"server:{sender}")
        db.session.delete(image)
        db.session.commit()


def rename_replicated_image(old: str, new: str, sender: str) -> None:
    """Rename the row of an image whose rename a peer propagated."""
    image = db.session.scalar(db.select(Image).filter_by(name=old))
    if image is not None and db.session.scalar(db.select(Image).filter_by(name=new)) is None:
        image.name = new
        record_history("image", image.id, "renamed", {"from": sender, "old": old, "new": new},
                       username=f"server:{sender}")
        db.session.commit()
