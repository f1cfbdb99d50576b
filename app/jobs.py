"""Enqueue background work: commit the job row, then hand the job to RQ by dotted name."""

from __future__ import annotations

import json
import uuid

from flask import current_app
from redis import Redis
from rq import Queue

from app.extensions import db
from app.models.base import utcnow
from app.models.jobs import Job

# Redis unreachable must cost a request seconds, not the minutes of a TCP connect timeout.
CONNECT_TIMEOUT_SECONDS = 5


NOT_QUEUED = "could not queue the job"


class NotQueued(Exception):
    """RQ did not take a job; `job` is its row, already marked failed with the reason."""

    def __init__(self, job: Job, cause: Exception) -> None:
        super().__init__(f"{NOT_QUEUED}: {cause}")
        self.job = job


def never_queued(row: Job) -> bool:
    """Tell whether a job row is one RQ never took (as opposed to one that ran and failed)."""
    return row.status == "failed" and row.error.startswith(NOT_QUEUED)


def redis_connection() -> Redis:
    """Return a Redis connection for the configured REDIS_URL."""
    return Redis.from_url(current_app.config["REDIS_URL"],
                          socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)


def queue() -> Queue:
    """Return the RQ queue Castor's worker listens on."""
    return Queue(current_app.config["RQ_QUEUE"], connection=redis_connection())


def enqueue(func_path: str, kind: str, object_type: str = "", object_id: int | None = None,
            *args, timeout: int = 3600, message: str = "", **kwargs) -> Job:
    """Create a Job row, commit it, then enqueue `func_path(job_id, *args, **kwargs)`.

    When RQ does not take the job (Redis down), the row is marked failed with the reason,
    so no row says "queued" for a job no worker will ever see, and NotQueued is raised.
    The row keeps `args` (plain JSON values) so a failed job can be queued again.
    """
    job_id = uuid.uuid4().hex
    row = Job(id=job_id, kind=kind, object_type=object_type, object_id=object_id,
              message=message, arguments=json.dumps(list(args)))
    db.session.add(row)
    db.session.commit()
    try:
        queue().enqueue(func_path, job_id, *args, job_id=job_id, job_timeout=timeout, **kwargs)
    except Exception as exc:
        failure = NotQueued(row, exc)
        row.status, row.error, row.finished_at = "failed", str(failure), utcnow()
        db.session.commit()
        raise failure from exc
    return row


def latest_job(kind: str, object_type: str, object_id: int) -> Job | None:
    """Return the newest job of a kind for an object."""
    return db.session.scalar(
        db.select(Job)
        .filter_by(kind=kind, object_type=object_type, object_id=object_id)
        .order_by(Job.created_at.desc())
    )
