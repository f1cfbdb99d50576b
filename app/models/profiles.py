"""Image profiles: how an image uploads and deploys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

MODEL_MATCH_CRITERIA = ("disabled", "equals", "starts_with", "ends_with", "contains")
TASK_COMPLETED_ACTIONS = ("reboot", "power_off", "exit_to_shell")
COMPRESSION_ALGORITHMS = ("none", "gzip", "lz4", "zstd")
COMPRESSION_LEVELS = {"none": (0, 0, 0), "gzip": (1, 9, 6), "lz4": (1, 9, 1), "zstd": (1, 19, 3)}
PARTITION_METHODS = ("original", "dynamic", "standard", "custom_script")

# Option columns copied by clone and exposed by the API, in the seed's order.
OPTION_FIELDS = (
    "description", "model_match", "model_match_criteria",
    "pxe_kernel", "pxe_boot_image", "kernel_args",
    "web_cancel", "task_completed_action",
    "remove_gpt_structures", "dont_shrink_volumes", "dont_shrink_lvm",
    "skip_hibernation_check", "skip_bitlocker_check",
    "compression_algorithm", "compression_level",
    "upload_schema_only", "use_custom_upload_schema", "custom_upload_schema",
    "change_computer_name", "set_bootmgr_first", "dont_expand_volumes", "update_bcd",
    "randomize_guids", "fix_boot_sector", "dont_update_nvram",
    "partition_method", "custom_partition_script", "force_dynamic_exact_match",
    "modify_image_schema", "deploy_schema",
    "multicast_sender_args", "multicast_receiver_args",
)


class ImageProfile(db.Model):
    """One configuration of an image's upload and deploy options."""

    __tablename__ = "image_profile"
    __table_args__ = (UniqueConstraint("image_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    model_match: Mapped[str] = mapped_column(String(128), default="")
    model_match_criteria: Mapped[str] = mapped_column(String(16), default="disabled")
    # PXE boot options (Linux environment only)
    pxe_kernel: Mapped[str] = mapped_column(String(128), default="")
    pxe_boot_image: Mapped[str] = mapped_column(String(128), default="")
    kernel_args: Mapped[str] = mapped_column(String(512), default="")
    # Task options
    web_cancel: Mapped[bool] = mapped_column(default=False)
    task_completed_action: Mapped[str] = mapped_column(String(16), default="reboot")
    # Upload options
    remove_gpt_structures: Mapped[bool] = mapped_column(default=False)
    dont_shrink_volumes: Mapped[bool] = mapped_column(default=False)
    dont_shrink_lvm: Mapped[bool] = mapped_column(default=False)
    skip_hibernation_check: Mapped[bool] = mapped_column(default=False)
    skip_bitlocker_check: Mapped[bool] = mapped_column(default=False)
    compression_algorithm: Mapped[str] = mapped_column(String(8), default="zstd")
    compression_level: Mapped[int] = mapped_column(default=3)
    upload_schema_only: Mapped[bool] = mapped_column(default=False)
    use_custom_upload_schema: Mapped[bool] = mapped_column(default=False)
    custom_upload_schema: Mapped[str | None] = mapped_column(Text, default=None)
    # Deploy options
    change_computer_name: Mapped[bool] = mapped_column(default=True)
    set_bootmgr_first: Mapped[bool] = mapped_column(default=False)
    dont_expand_volumes: Mapped[bool] = mapped_column(default=False)
    update_bcd: Mapped[bool] = mapped_column(default=False)
    randomize_guids: Mapped[bool] = mapped_column(default=False)
    fix_boot_sector: Mapped[bool] = mapped_column(default=True)
    dont_update_nvram: Mapped[bool] = mapped_column(default=False)
    partition_method: Mapped[str] = mapped_column(String(16), default="dynamic")
    custom_partition_script: Mapped[str] = mapped_column(Text, default="")
    force_dynamic_exact_match: Mapped[bool] = mapped_column(default=False)
    modify_image_schema: Mapped[bool] = mapped_column(default=False)
    deploy_schema: Mapped[str | None] = mapped_column(Text, default=None)
    # Multicast options
    multicast_sender_args: Mapped[str] = mapped_column(String(512), default="")
    multicast_receiver_args: Mapped[str] = mapped_column(String(512), default="")
    # Computed by the schema processing job: {"disks": [{"index": 0, "minimum_bytes": N|None}]}
    minimum_sizes_json: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    image: Mapped[Image] = relationship(back_populates="profiles")  # noqa: F821
    scripts: Mapped[list[ProfileScript]] = relationship(  # noqa: F821
        cascade="all, delete-orphan", order_by="ProfileScript.priority"
    )
    syspreps: Mapped[list[ProfileSysprep]] = relationship(  # noqa: F821
        cascade="all, delete-orphan", order_by="ProfileSysprep.priority"
    )
    file_copies: Mapped[list[ProfileFileCopy]] = relationship(  # noqa: F821
        cascade="all, delete-orphan", order_by="ProfileFileCopy.priority"
    )

    def to_dict(self) -> dict:
        """Return the profile and every option as plain data."""
        data = {"id": self.id, "image_id": self.image_id, "name": self.name}
        data.update({field: getattr(self, field) for field in OPTION_FIELDS})
        return data


def default_profile_for(image_type: str, environment: str) -> ImageProfile:
    """Return a new default profile with the defaults fitting the image type."""
    profile = ImageProfile(name="default", description="Created with the image")
    for field in OPTION_FIELDS:
        column = ImageProfile.__table__.c[field]
        if column.default is not None:
            setattr(profile, field, column.default.arg)
    if image_type == "file":
        profile.compression_algorithm = "gzip"
        profile.compression_level = 6
    return profile
