"""Com servers, global settings and per-image replication state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow
from app.vault import EncryptedString

REPLICATION_STATES = ("pending", "in_progress", "replicated", "failed")


class ComServer(db.Model):
    """A server that stores images and serves clients."""

    __tablename__ = "com_server"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(256))
    # Encrypted with the vault key (app.vault): the database alone does not hold it.
    shared_secret: Mapped[str] = mapped_column(EncryptedString(1024), default="")
    role_imaging: Mapped[bool] = mapped_column(default=True)
    role_multicast: Mapped[bool] = mapped_column(default=True)
    role_pxe: Mapped[bool] = mapped_column(default=True)
    storage_path: Mapped[str] = mapped_column(String(256), default="")
    max_imaging_clients: Mapped[int] = mapped_column(default=0)
    max_bandwidth_kbps: Mapped[int] = mapped_column(default=0)
    multicast_interface: Mapped[str] = mapped_column(String(32), default="eth0")
    multicast_port_start: Mapped[int] = mapped_column(default=9000)
    multicast_port_end: Mapped[int] = mapped_column(default=9998)
    replicate_storage: Mapped[bool] = mapped_column(default=True)
    is_local: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The peer's image storage as it last reported it (app.replication.space): the last
    # answer and when it came, and the error of the last try when that one failed.
    space_free_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    space_total_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    space_checked_at: Mapped[datetime | None] = mapped_column(default=None)
    space_tried_at: Mapped[datetime | None] = mapped_column(default=None)
    space_error: Mapped[str] = mapped_column(Text, default="", server_default="")


class ReplicationNonce(db.Model):
    """A nonce of a signed peer request, kept until its timestamp can no longer be fresh."""

    __tablename__ = "replication_nonce"
    __table_args__ = (UniqueConstraint("sender", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Setting(db.Model):
    """A global key/value setting (replication defaults and the like)."""

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")

    @staticmethod
    def get(key: str, default: str = "") -> str:
        """Return the setting's value, or the default when unset."""
        row = db.session.get(Setting, key)
        return row.value if row else default

    @staticmethod
    def put(key: str, value: str) -> None:
        """Set a setting (the caller commits)."""
        row = db.session.get(Setting, key)
        if row is None:
            db.session.add(Setting(key=key, value=value))
        else:
            row.value = value


class ReplicationStatus(db.Model):
    """Where one image stands on one target server."""

    __tablename__ = "replication_status"
    __table_args__ = (UniqueConstraint("image_id", "server_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    server_id: Mapped[int] = mapped_column(ForeignKey("com_server.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    percent: Mapped[int] = mapped_column(default=0)
    rate_bps: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    # The upload id of the copy last replicated, so a sweep can tell stale targets apart.
    upload_id: Mapped[str] = mapped_column(String(64), default="")
    last_try_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    server: Mapped[ComServer] = relationship()
