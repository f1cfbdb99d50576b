"""The scheduled integrity check: re-hash every stored image at a bounded rate, re-arm."""

from __future__ import annotations

from flask import current_app

from app.integrity import chain_is_current, check_all, pacer, schedule_verify
from app.models import Job
from jobs.runner import tracked


@tracked
def verify_images(job: Job, token: str | None = None) -> None:
    """Re-hash every image at VERIFY_RATE_MIB_S, flag the damaged ones, then re-arm."""
    if not chain_is_current(token):
        job.message = "superseded by a newer schedule"
        return
    rate = float(current_app.config.get("VERIFY_RATE_MIB_S", 50))
    damaged = check_all(pacer(rate), "integrity check")
    job.message = (f"{len(damaged)} damaged image(s): {', '.join(sorted(damaged))}" if damaged
                   else "every image matches its manifest")
    if token is not None:
        schedule_verify(token)
