"""The RQ job class that runs every job in an app context, and the status wrapper."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from functools import wraps

from flask import Flask
from rq.job import Job as RQJob

from app.extensions import db
from app.models.base import utcnow
from app.models.jobs import Job

log = logging.getLogger("castor.jobs")


class JobFailure(Exception):
    """An expected failure: the message is shown to the user as is."""


class AppJob(RQJob):
    """An RQ job that performs inside the app context of the worker's Castor app."""

    flask_app: Flask | None = None

    def perform(self):  # noqa: D401 - RQ's API
        """Run the job function inside an app context."""
        app = AppJob.flask_app
        if app is None:
            from app import create_app

            app = AppJob.flask_app = create_app()
        with app.app_context():
            try:
                return super().perform()
            finally:
                db.session.remove()


def tracked(func: Callable) -> Callable:
    """Mark the job row running, then finished or failed whatever happens."""

    @wraps(func)
    def wrapper(job_id: str, *args, **kwargs):
        row = db.session.get(Job, job_id)
        if row is None:
            raise RuntimeError(f"job row {job_id} is missing")
        row.status = "running"
        row.started_at = utcnow()
        db.session.commit()
        try:
            result = func(row, *args, **kwargs)
        except JobFailure as exc:
            db.session.rollback()
            row = db.session.get(Job, job_id)
            row.status, row.error = "failed", str(exc)
            row.append_log(f"failed: {exc}")
            result = None
        except Exception as exc:
            db.session.rollback()
            row = db.session.get(Job, job_id)
            row.status, row.error = "failed", f"unexpected error: {exc}"
            row.append_log(traceback.format_exc())
            log.exception("job %s (%s) crashed", job_id, row.kind)
            result = None
        else:
            row.status, row.progress = "finished", 100
        row.finished_at = utcnow()
        db.session.commit()
        return result

    return wrapper


def fail_interrupted_jobs() -> int:
    """Mark jobs left running by a stopped worker as failed; return how many."""
    stale = db.session.scalars(db.select(Job).filter(Job.status == "running")).all()
    for row in stale:
        row.status = "failed"
        row.error = "interrupted: the worker stopped while this job ran; start it again"
        row.finished_at = utcnow()
    db.session.commit()
    return len(stale)
