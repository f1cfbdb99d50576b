"""Start an RQ worker bound to a Castor app."""

from __future__ import annotations

from flask import Flask
from rq import Queue, SimpleWorker, Worker

from app.integrity import schedule_verify
from app.jobs import redis_connection
from app.multicast.supervisor import cleanup_orphans
from jobs.runner import AppJob, fail_interrupted_jobs


def make_worker(app: Flask, simple: bool = False) -> Worker:
    """Return a worker on Castor's queue whose jobs run in this app's context."""
    AppJob.flask_app = app
    with app.app_context():
        connection = redis_connection()
    queue = Queue(app.config["RQ_QUEUE"], connection=connection, job_class=AppJob)
    worker_class = SimpleWorker if simple else Worker
    return worker_class([queue], connection=connection, job_class=AppJob)


def run_worker(app: Flask, burst: bool = False) -> None:
    """Clean up after a previous crash, then process jobs until stopped."""
    with app.app_context():
        fail_interrupted_jobs()
        if not burst:
            schedule_verify()  # the integrity check chain, retiring an older one
    cleanup_orphans(app)  # multicast senders whose owning server died
    make_worker(app).work(burst=burst, with_scheduler=True)
