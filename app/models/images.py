"""Images, categories and history."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

ENVIRONMENTS = ("linux", "winpe")
IMAGE_TYPES = ("block", "file", "both")
REPLICATION_MODES = ("global", "all", "none", "selective")

image_categories = Table(
    "image_category",
    db.metadata,
    Column("image_id", ForeignKey("image.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("category.id", ondelete="CASCADE"), primary_key=True),
)

image_replication_servers = Table(
    "image_replication_server",
    db.metadata,
    Column("image_id", ForeignKey("image.id", ondelete="CASCADE"), primary_key=True),
    Column("server_id", ForeignKey("com_server.id", ondelete="CASCADE"), primary_key=True),
)


class Category(db.Model):
    """A global tag that images (and modules) can carry."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class Image(db.Model):
    """A captured (or placeholder) image of one machine's disks."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    environment: Mapped[str] = mapped_column(String(8), default="linux")
    image_type: Mapped[str] = mapped_column(String(8), default="block")
    enabled: Mapped[bool] = mapped_column(default=True)
    protected: Mapped[bool] = mapped_column(default=False)
    on_demand: Mapped[bool] = mapped_column(default=True)
    replication_mode: Mapped[str] = mapped_column(String(16), default="global")
    last_upload_id: Mapped[str | None] = mapped_column(String(64), default=None)
    last_upload_at: Mapped[datetime | None] = mapped_column(default=None)
    # Images are many GiB: 64-bit columns (a plain Integer is 32-bit on PostgreSQL).
    size_on_server_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    size_on_client_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    schema_json: Mapped[str | None] = mapped_column(Text, default=None)
    # The com server that replicated the image here ("" = uploaded or made here): only that
    # peer may change or delete it.
    origin: Mapped[str] = mapped_column(String(64), default="", server_default="")
    schema_status: Mapped[str] = mapped_column(String(16), default="none")
    schema_error: Mapped[str] = mapped_column(Text, default="")
    # Set by the integrity check when a stored file no longer matches the manifest; a
    # damaged image is not deployed until it is repaired or uploaded again.
    damaged: Mapped[str] = mapped_column(Text, default="")
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    categories: Mapped[list[Category]] = relationship(secondary=image_categories)
    replication_servers: Mapped[list[ComServer]] = relationship(  # noqa: F821
        secondary=image_replication_servers
    )
    profiles: Mapped[list[ImageProfile]] = relationship(  # noqa: F821
        back_populates="image",
        cascade="all, delete-orphan",
        order_by="ImageProfile.id",
    )

    @property
    def schema(self) -> dict | None:
        """Return the uploaded schema as a dict, or None before the first upload."""
        return json.loads(self.schema_json) if self.schema_json else None

    def to_dict(self) -> dict:
        """Return the image as plain data for the API and history (the API's image shape)."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "environment": self.environment,
            "type": self.image_type,
            "enabled": self.enabled,
            "protected": self.protected,
            "on_demand": self.on_demand,
            "replication_mode": self.replication_mode,
            "categories": sorted(c.name for c in self.categories),
            "size_on_server_bytes": self.size_on_server_bytes,
            "size_on_client_bytes": self.size_on_client_bytes,
            "last_upload_at": _iso(self.last_upload_at),
            "created_at": _iso(self.created_at),
        }


def _iso(value: datetime | None) -> str | None:
    """Format a stored UTC time as ISO 8601 with a Z, or None."""
    return value.isoformat(timespec="seconds") + "Z" if value else None


class History(db.Model):
    """An audit event: who did what to which object, with the object as JSON."""

    # One object's events in time order: the History tab and the search's "last used".
    __table_args__ = (Index("ix_history_object", "object_type", "object_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object_type: Mapped[str] = mapped_column(String(32), index=True)
    object_id: Mapped[int] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    data_json: Mapped[str] = mapped_column(Text, default="{}")

    @property
    def data(self) -> dict:
        """Return the stored object snapshot."""
        return json.loads(self.data_json or "{}")


def record_history(object_type: str, object_id: int, action: str, data: dict,
                   username: str | None = None) -> History:
    """Add an audit row to the session (the caller commits)."""
    if username is None:
        from app.auth import current_username

        username = current_username()
    row = History(object_type=object_type, object_id=object_id, action=action,
                  username=username, data_json=json.dumps(data, default=str, sort_keys=True))
    db.session.add(row)
    return row
