"""Image replication between com servers: what to send where, and when.

Other features call `queue_replication(image)` after an upload, `propagate_delete(name)`
and `propagate_rename(old, new)`; each enqueues one job per target server.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from app.extensions import db
from app.jobs import enqueue, queue
from app.models import ComServer, Image, Job, ReplicationStatus
from app.models.base import utcnow
from app.replication.identity import after_upload, peer_servers, targets_for

log = logging.getLogger("castor.replication")

REPLICATE_JOB = "jobs.replication.replicate_image"
DELETE_JOB = "jobs.replication.delete_remote"
RENAME_JOB = "jobs.replication.rename_remote"
SWEEP_JOB = "jobs.replication.sweep"


def status_for(image: Image, server: ComServer) -> ReplicationStatus:
    """Return the replication status row of an image on a server, creating it."""
    row = db.session.scalar(
        db.select(ReplicationStatus).filter_by(image_id=image.id, server_id=server.id)
    )
    if row is None:
        row = ReplicationStatus(image_id=image.id, server_id=server.id, state="pending")
        db.session.add(row)
    return row


def mark_pending(image: Image, servers: list[ComServer]) -> None:
    """Mark an image pending on servers (the caller commits)."""
    for server in servers:
        row = status_for(image, server)
        if row.state != "in_progress":
            row.state, row.percent, row.rate_bps, row.error = "pending", 0, 0, ""


def queue_replication(image: Image, force: bool = False) -> list[Job]:
    """Enqueue one replication job per target of the image's mode; return the job rows.

    Without `force`, nothing is enqueued when the settings say replication runs on a
    schedule only; the targets are then marked pending for the next sweep.
    """
    targets = targets_for(image)
    mark_pending(image, targets)
    db.session.commit()
    if not targets or not (force or after_upload()):
        return []
    return [enqueue(REPLICATE_JOB, "replication", "image", image.id, image.id, server.id)
            for server in targets]


def queue_one(image: Image, server: ComServer) -> Job:
    """Enqueue the replication of one image to one server."""
    mark_pending(image, [server])
    db.session.commit()
    return enqueue(REPLICATE_JOB, "replication", "image", image.id, image.id, server.id)


def queue_later(image_id: int, server_id: int, seconds: int) -> Job:
    """Enqueue the replication of one image to one server after a delay (needs the scheduler)."""
    job_id = uuid.uuid4().hex
    row = Job(id=job_id, kind="replication", object_type="image", object_id=image_id,
              message=f"waiting {seconds} s for a running replication to finish")
    db.session.add(row)
    db.session.commit()
    queue().enqueue_in(timedelta(seconds=seconds), REPLICATE_JOB, job_id, image_id, server_id,
                       job_id=job_id, job_timeout=3600)
    return row


def propagate_delete(image_name: str) -> list[Job]:
    """Enqueue the deletion of an image on every peer server; never raises for no peers."""
    try:
        return [enqueue(DELETE_JOB, "replication_delete", "com_server", server.id,
                        image_name, server.id) for server in peer_servers()]
    except Exception:  # the local delete must not fail because Redis is down
        log.exception("could not queue the deletion of %s on peers", image_name)
        return []


def propagate_rename(old: str, new: str) -> list[Job]:
    """Enqueue the rename of an image on every peer server; never raises for no peers."""
    try:
        return [enqueue(RENAME_JOB, "replication_rename", "com_server", server.id,
                        old, new, server.id) for server in peer_servers()]
    except Exception:  # the local rename must not fail because Redis is down
        log.exception("could not queue the rename of %s on peers", old)
        return []


def record_try(row: ReplicationStatus, state: str, error: str = "") -> None:
    """Set a status row's state and error and stamp the try (the caller commits)."""
    row.state, row.error, row.last_try_at = state, error, utcnow()
