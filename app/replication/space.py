"""The free space of the peers' image stores, as they last reported it over the signed API.

The dashboard never asks a peer itself: a refresh (its button, or the replication sweep)
queues one job per peer, and each job records the answer, or the reason there was none, on
the com server row. The page shows what was recorded and how old it is.
"""

from __future__ import annotations

from datetime import datetime

from app.extensions import db
from app.jobs import NotQueued, enqueue
from app.models import ComServer, Job
from app.models.base import utcnow

SPACE_JOB = "jobs.replication.refresh_space"
KIND = "replication_space"


def peers_to_ask() -> list[ComServer]:
    """Return every other com server (the dashboard lists them all, targets or not)."""
    return list(db.session.scalars(db.select(ComServer).where(ComServer.is_local.is_(False))
                                   .order_by(ComServer.display_name)))


def queue_refresh(servers: list[ComServer] | None = None) -> list[Job]:
    """Queue one storage report job per peer (default: all); rows RQ did not take are failed."""
    rows = []
    for server in peers_to_ask() if servers is None else servers:
        try:
            rows.append(enqueue(SPACE_JOB, KIND, "com_server", server.id, server.id,
                                timeout=120, message=f"free space of {server.display_name}"))
        except NotQueued as exc:
            rows.append(exc.job)
    return rows


def refreshing() -> bool:
    """Tell whether a storage report job is queued or running."""
    return db.session.scalar(db.select(Job.id).where(
        Job.kind == KIND, Job.status.in_(("queued", "running"))).limit(1)) is not None


def record_answer(server: ComServer, free: int, total: int,
                  now: datetime | None = None) -> None:
    """Keep a peer's answer and when it came (the caller commits)."""
    now = now or utcnow()
    server.space_free_bytes, server.space_total_bytes = free, total
    server.space_checked_at = server.space_tried_at = now
    server.space_error = ""


def record_failure(server: ComServer, error: str, now: datetime | None = None) -> None:
    """Note why a peer gave no answer; its last known answer stays (the caller commits).

    The page says whose URL and that it was unreachable: the reason is kept without them.
    """
    url = server.url.rstrip("/")
    for prefix in (f"{url} unreachable: ", f"{url}: "):
        if error.startswith(prefix):
            error = error[len(prefix):]
            break
    server.space_tried_at = now or utcnow()
    server.space_error = error or "no answer"
