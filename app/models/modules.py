"""Script, sysprep and file-copy modules and their ordered profile assignments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

RUN_WHEN = ("before_imaging", "before_file_copy", "after_file_copy")


class ScriptModule(db.Model):
    """A bash script the imaging client runs during deploy."""

    __tablename__ = "script_module"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    contents: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SysprepModule(db.Model):
    """A replacement of the text between two tags of unattend.xml."""

    __tablename__ = "sysprep_module"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    opening_tag: Mapped[str] = mapped_column(String(256), default="")
    closing_tag: Mapped[str] = mapped_column(String(256), default="")
    contents: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FileCopyModule(db.Model):
    """Files or folders copied into a deployed partition."""

    __tablename__ = "file_copy_module"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    destination_folder: Mapped[str] = mapped_column(String(256), default="/")
    unzip: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProfileScript(db.Model):
    """A script module assigned to a profile."""

    __tablename__ = "profile_script"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("image_profile.id", ondelete="CASCADE"))
    module_id: Mapped[int] = mapped_column(ForeignKey("script_module.id", ondelete="CASCADE"))
    priority: Mapped[int] = mapped_column(default=0)
    run_when: Mapped[str] = mapped_column(String(24), default="before_imaging")

    module: Mapped[ScriptModule] = relationship()


class ProfileSysprep(db.Model):
    """A sysprep module assigned to a profile."""

    __tablename__ = "profile_sysprep"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("image_profile.id", ondelete="CASCADE"))
    module_id: Mapped[int] = mapped_column(ForeignKey("sysprep_module.id", ondelete="CASCADE"))
    priority: Mapped[int] = mapped_column(default=0)

    module: Mapped[SysprepModule] = relationship()


class ProfileFileCopy(db.Model):
    """A file-copy module assigned to a profile, with its destination partition or vg-lv."""

    __tablename__ = "profile_file_copy"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("image_profile.id", ondelete="CASCADE"))
    module_id: Mapped[int] = mapped_column(ForeignKey("file_copy_module.id", ondelete="CASCADE"))
    priority: Mapped[int] = mapped_column(default=0)
    destination_partition: Mapped[str] = mapped_column(String(128), default="1")

    module: Mapped[FileCopyModule] = relationship()
