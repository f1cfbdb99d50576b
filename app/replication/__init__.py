"""Image replication between com servers: what to send where, and when.

Other features call `queue_replication(image)` after an upload; deleting and renaming an
image call `propagate_delete(name)` / `propagate_rename(old, new)` through
`app.replication.propagation`. Each enqueues one job per target server.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from app.extensions import db
from app.jobs import NotQueued, enqueue, queue
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


def propagate_delete(image_name: str, servers: list[ComServer] | None = None) -> list[Job]:
    """Enqueue the deletion of an image on each server (default: every peer); never raises.

    Returns one job row per server; a row RQ did not take is already marked failed.
    """
    return _on_each(servers, f"the deletion of {image_name}", lambda server: enqueue(
        DELETE_JOB, "replication_delete", "com_server", server.id, image_name, server.id,
        message=f"delete {image_name} on {server.display_name}"))


def propagate_rename(old: str, new: str, servers: list[ComServer] | None = None) -> list[Job]:
    """Enqueue the rename of an image on each server (default: every peer); never raises.

    Returns one job row per server; a row RQ did not take is already marked failed.
    """
    return _on_each(servers, f"the rename of {old}", lambda server: enqueue(
        RENAME_JOB, "replication_rename", "com_server", server.id, old, new, server.id,
        message=f"rename {old} to {new} on {server.display_name}"))


def _on_each(servers: list[ComServer] | None, what: str, send) -> list[Job]:
    """Queue one job per server, going on past failures; the local change is already made."""
    try:
        servers = peer_servers() if servers is None else servers
    except Exception:
        log.exception("could not list the servers to queue %s on", what)
        return []
    rows = []
    for server in servers:
        name = server.display_name
        try:
            rows.append(send(server))
        except NotQueued as exc:  # Redis is down: the row says so where failures are shown
            log.error("could not queue %s on %s: %s", what, name, exc)
            rows.append(exc.job)
        except Exception:
            db.session.rollback()
            log.exception("could not queue %s on %s", what, name)
    return rows


def record_try(row: ReplicationStatus, state: str, error: str = "") -> None:
    """Set a status row's state and error and stamp the try (the caller commits)."""
    row.state, row.error, row.last_try_at = state, error, utcnow()
