"""The periodic replication sweep: one self-renewing chain of delayed jobs."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import current_app

from app import storage
from app.extensions import db
from app.jobs import queue, redis_connection
from app.models import Image, Job
from app.replication import SWEEP_JOB, queue_one, status_for
from app.replication.identity import schedule_minutes, targets_for


def sweep_key() -> str:
    """Return the Redis key holding the token of the live sweep chain."""
    return f"castor:{current_app.config['RQ_QUEUE']}:replication:sweep"


def schedule_sweep(token: str | None = None) -> Job | None:
    """Enqueue the next sweep after the configured interval; None when unscheduled.

    Without a token this starts a new chain, which retires any older one: a sweep only
    runs when its token is still the current one.
    """
    if token is None:
        token = uuid.uuid4().hex
        redis_connection().set(sweep_key(), token)
    minutes = schedule_minutes()
    if minutes <= 0:
        return None
    job_id = uuid.uuid4().hex
    row = Job(id=job_id, kind="replication_sweep", message=f"scheduled in {minutes} min")
    db.session.add(row)
    db.session.commit()
    queue().enqueue_in(timedelta(minutes=minutes), SWEEP_JOB, job_id, token, job_id=job_id,
                       job_timeout=600)
    return row


def sweep_is_current(token: str | None) -> bool:
    """Tell whether a sweep with this token belongs to the live chain (None: run once)."""
    if token is None:
        return True
    current = redis_connection().get(sweep_key())
    return current is not None and current.decode() == token


def stale_targets() -> list[tuple[Image, list]]:
    """Return each complete local image with the targets whose copy is missing or older."""
    found = []
    root = current_app.config["STORAGE_PATH"]
    for image in db.session.scalars(db.select(Image).order_by(Image.name)):
        try:
            manifest = storage.read_manifest(storage.image_dir(root, image.name))
        except (storage.StorageError, ValueError):
            continue
        if manifest is None:
            continue
        upload_id = manifest.get("upload_id") or ""
        stale = [server for server in targets_for(image)
                 if (row := status_for(image, server)).state != "replicated"
                 or row.upload_id != upload_id]
        if stale:
            found.append((image, stale))
    return found


def queue_stale() -> int:
    """Enqueue a replication for every stale image and target; return how many."""
    count = 0
    for image, servers in stale_targets():
        for server in servers:
            queue_one(image, server)
            count += 1
    db.session.commit()
    return count
