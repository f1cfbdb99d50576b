"""Enqueue background work: commit the job row, then hand the job to RQ by dotted name."""

from __future__ import annotations

import uuid

from flask import current_app
from redis import Redis
from rq import Queue

from app.extensions import db
from app.models.jobs import Job


def redis_connection() -> Redis:
    """Return a Redis connection for the configured REDIS_URL."""
    return Redis.from_url(current_app.config["REDIS_URL"])


def queue() -> Queue:
    """Return the RQ queue Castor's worker listens on."""
    return Queue(current_app.config["RQ_QUEUE"], connection=redis_connection())


def enqueue(func_path: str, kind: str, object_type: str = "", object_id: int | None = None,
            *args, timeout: int = 3600, **kwargs) -> Job:
    """Create a Job row, commit it, then enqueue `func_path(job_id, *args, **kwargs)`."""
    job_id = uuid.uuid4().hex
    row = Job(id=job_id, kind=kind, object_type=object_type, object_id=object_id)
    db.session.add(row)
    db.session.commit()
    queue().enqueue(func_path, job_id, *args, job_id=job_id, job_timeout=timeout, **kwargs)
    return row


def latest_job(kind: str, object_type: str, object_id: int) -> Job | None:
    """Return the newest job of a kind for an object."""
    return db.session.scalar(
        db.select(Job)
        .filter_by(kind=kind, object_type=object_type, object_id=object_id)
        .order_by(Job.created_at.desc())
    )
