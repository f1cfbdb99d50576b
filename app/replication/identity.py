"""Who this server is, and which com servers it replicates to."""

from __future__ import annotations

from flask import current_app

from app.extensions import db
from app.models import ComServer, Image, Setting

MODE_SETTING = "replication_default_mode"
SERVERS_SETTING = "replication_default_servers"
AFTER_UPLOAD_SETTING = "replication_after_upload"
SCHEDULE_SETTING = "replication_schedule_minutes"
DEFAULT_MODES = ("all", "none", "selective")


def local_server_name() -> str:
    """Return the name this server signs with: its local com server row, else SERVER_URL."""
    local = db.session.scalar(db.select(ComServer).filter_by(is_local=True))
    return local.display_name if local else current_app.config["SERVER_URL"]


def peer_servers() -> list[ComServer]:
    """Return every other com server that takes replicated storage."""
    return list(db.session.scalars(
        db.select(ComServer).filter_by(is_local=False, replicate_storage=True)
        .order_by(ComServer.display_name)
    ))


def default_mode() -> str:
    """Return the global replication mode (all, none or selective)."""
    mode = Setting.get(MODE_SETTING, "all")
    return mode if mode in DEFAULT_MODES else "all"


def default_server_ids() -> list[int]:
    """Return the ids of the servers chosen for the global Selective mode."""
    return [int(part) for part in Setting.get(SERVERS_SETTING, "").split(",") if part.isdigit()]


def effective_mode(image: Image) -> str:
    """Return the mode that applies to an image, resolving Global Default."""
    return default_mode() if image.replication_mode == "global" else image.replication_mode


def choose_targets(mode: str, peers: list[ComServer], selected_ids: set[int]) -> list[ComServer]:
    """Pick the target servers for a mode out of the peers (pure)."""
    if mode == "all":
        return list(peers)
    if mode == "selective":
        return [server for server in peers if server.id in selected_ids]
    return []


def targets_for(image: Image) -> list[ComServer]:
    """Return the servers an image must be replicated to."""
    mode = effective_mode(image)
    if image.replication_mode == "selective":
        chosen = {server.id for server in image.replication_servers}
    else:
        chosen = set(default_server_ids())
    return choose_targets(mode, peer_servers(), chosen)


def after_upload() -> bool:
    """Tell whether replication starts as soon as an upload completes."""
    return Setting.get(AFTER_UPLOAD_SETTING, "1") == "1"


def schedule_minutes() -> int:
    """Return the minutes between scheduled sweeps (0 means no schedule)."""
    value = Setting.get(SCHEDULE_SETTING, "0")
    return int(value) if value.isdigit() else 0
