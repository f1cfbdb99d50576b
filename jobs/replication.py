"""Replication jobs: copy an image to a peer, propagate deletes and renames, ask a peer for
its free space, sweep."""

from __future__ import annotations

import time

from flask import current_app

from app import storage
from app.extensions import db
from app.integrity import mark
from app.jobs import redis_connection
from app.models import ComServer, Image, Job, ReplicationStatus
from app.replication import queue_later, record_try, space, status_for
from app.replication.identity import local_server_name
from app.replication.lock import RedisLock, replication_lock_key
from app.replication.remote import Peer, RemoteError
from app.replication.schedule import queue_stale, schedule_sweep, sweep_is_current
from app.replication.sync import DamagedSource, SyncError, replicate
from app.replication.throttle import bucket_for_kbps
from jobs.runner import JobFailure, tracked

PROGRESS_EVERY = 0.5
# A storage report is a few bytes computed at once: a peer this slow counts as unreachable.
SPACE_TIMEOUT_SECONDS = 10


def _peer(server: ComServer) -> Peer:
    """Build the signed client for a server with its bandwidth limit."""
    try:
        return Peer(server.url, server.shared_secret, local_server_name(),
                    timeout=current_app.config.get("REPLICATION_TIMEOUT", 60),
                    bucket=bucket_for_kbps(server.max_bandwidth_kbps))
    except RemoteError as exc:
        raise JobFailure(f"{server.display_name}: {exc}") from None


def _retry_options() -> dict:
    """Read the chunk size and retry policy from the config."""
    config = current_app.config
    return {"chunk_bytes": config.get("REPLICATION_CHUNK_BYTES", 16 << 20),
            "retries": config.get("REPLICATION_RETRIES", 4),
            "backoff": config.get("REPLICATION_BACKOFF_SECONDS", 2.0)}


@tracked
def replicate_image(job: Job, image_id: int, server_id: int) -> None:
    """Replicate one image to one server, one job per pair at a time (Redis lock)."""
    image = db.session.get(Image, image_id)
    server = db.session.get(ComServer, server_id)
    if image is None or server is None:
        raise JobFailure("the image or the server no longer exists")
    config = current_app.config
    lock = RedisLock(redis_connection(),
                     replication_lock_key(config["RQ_QUEUE"], image_id, server_id),
                     config.get("REPLICATION_LOCK_SECONDS", 3600))
    if not lock.acquire():
        # The running job may be sending an older copy: look again once it is done.
        delay = config.get("REPLICATION_REQUEUE_SECONDS", 30)
        queue_later(image_id, server_id, delay)
        job.message = (f"skipped: {image.name} is already being replicated to "
                       f"{server.display_name}; queued again in {delay} s")
        job.append_log(job.message)
        return
    try:
        _replicate_locked(job, image, server, lock)
    finally:
        lock.release()


def _replicate_locked(job: Job, image: Image, server: ComServer, lock: RedisLock) -> None:
    """Run the sync while holding the lock and keep the status row current."""
    row = status_for(image, server)
    record_try(row, "in_progress")
    row.percent = row.rate_bps = row.bytes_sent = 0
    db.session.commit()
    folder = storage.image_dir(current_app.config["STORAGE_PATH"], image.name)
    started = time.monotonic()
    last = [0.0]
    totals = {"sent": 0}

    def progress(sent: int, total: int) -> None:
        now = time.monotonic()
        totals["sent"] = sent
        if now - last[0] < PROGRESS_EVERY and sent < total:
            return
        last[0] = now
        row.percent = int(100 * sent / total) if total else 100
        row.rate_bps = int(sent / max(now - started, 1e-3))
        row.bytes_sent = sent
        job.progress = row.percent
        db.session.commit()
        lock.extend()

    try:
        result = replicate(_peer(server), image.name, folder, progress=progress,
                           **_retry_options())
    except (SyncError, RemoteError) as exc:
        db.session.rollback()
        if isinstance(exc, DamagedSource):
            # Our copy is bad, not the target's: flag it here and send nothing more.
            mark(db.session.get(Image, image.id), [str(exc)], "replication")
        record_try(row, "failed", str(exc))
        for line in getattr(exc, "log", []):
            job.append_log(line)
        db.session.commit()
        raise JobFailure(f"{server.display_name}: {exc}") from None
    except Exception as exc:
        db.session.rollback()
        record_try(row, "failed", f"unexpected error: {exc}")
        db.session.commit()
        raise
    manifest = storage.read_manifest(folder) or {}
    elapsed = max(time.monotonic() - started, 1e-3)
    record_try(row, "replicated")
    row.percent, row.bytes_sent = 100, result.bytes_sent
    row.rate_bps = int(result.bytes_sent / elapsed)
    row.upload_id = manifest.get("upload_id") or ""
    for line in result.log:
        job.append_log(line)
    job.message = (f"{image.name} on {server.display_name}: up to date, 0 bytes sent"
                   if result.up_to_date else
                   f"{image.name} on {server.display_name}: {result.files_sent} file(s), "
                   f"{result.bytes_sent} bytes sent")
    db.session.commit()


def _peer_call(server_id: int, action: str, call) -> dict:
    """Run one peer call with the configured retries; raise JobFailure when it fails."""
    server = db.session.get(ComServer, server_id)
    if server is None:
        raise JobFailure("the server no longer exists")
    peer = _peer(server)
    retries = _retry_options()
    for attempt in range(retries["retries"] + 1):
        try:
            return call(peer)
        except RemoteError as exc:
            if not exc.retryable or attempt == retries["retries"]:
                raise JobFailure(f"{action} on {server.display_name} failed: {exc}") from None
            time.sleep(min(60.0, retries["backoff"] * 2 ** attempt))
        finally:
            peer.close()
    raise JobFailure(f"{action} on {server.display_name} failed")


@tracked
def delete_remote(job: Job, image_name: str, server_id: int) -> None:
    """Delete an image on one peer because it was deleted here."""
    answer = _peer_call(server_id, f"deleting {image_name}", lambda peer: peer.delete(image_name))
    job.message = f"{image_name}: {'deleted' if answer.get('deleted') else 'was not there'}"


@tracked
def rename_remote(job: Job, old: str, new: str, server_id: int) -> None:
    """Rename an image on one peer because it was renamed here."""
    try:
        answer = _peer_call(server_id, f"renaming {old} to {new}",
                            lambda peer: peer.rename(old, new))
    except JobFailure as exc:
        _copy_not_renamed(new, server_id, str(exc))
        raise
    job.message = f"{old} -> {new}: {'renamed' if answer.get('renamed') else 'was not there'}"


def _copy_not_renamed(name: str, server_id: int, error: str) -> None:
    """Mark the image's copy on the peer failed: it is still under its old name there.

    The image's Replication tab and the dashboard then show it, and the next replication
    sends the image under its new name.
    """
    image = db.session.scalar(db.select(Image).filter_by(name=name))
    if image is None:
        return  # renamed again or deleted since: that change has its own job
    row = db.session.scalar(
        db.select(ReplicationStatus).filter_by(image_id=image.id, server_id=server_id))
    if row is not None:
        record_try(row, "failed", error)
        db.session.commit()


@tracked
def refresh_space(job: Job, server_id: int) -> None:
    """Ask one peer for its image store's free and total bytes and record the answer."""
    server = db.session.get(ComServer, server_id)
    if server is None:
        raise JobFailure("the server no longer exists")
    try:
        peer = Peer(server.url, server.shared_secret, local_server_name(),
                    timeout=SPACE_TIMEOUT_SECONDS)
        try:
            free, total = peer.storage_space()
        finally:
            peer.close()
    except RemoteError as exc:
        space.record_failure(server, str(exc))
        db.session.commit()
        raise JobFailure(f"{server.display_name}: {exc}") from None
    space.record_answer(server, free, total)
    job.message = f"{server.display_name}: {free} bytes free of {total}"
    db.session.commit()


@tracked
def sweep(job: Job, token: str | None = None) -> None:
    """Queue replication for every image whose targets are missing or behind, then re-arm.

    It also asks every peer for its free space, so the dashboard's figures stay recent.
    """
    if not sweep_is_current(token):
        job.message = "superseded by a newer schedule"
        return
    count = queue_stale()
    asked = space.queue_refresh()
    job.message = (f"queued {count} replication job(s) and {len(asked)} free space "
                   "report(s)")
    if token is not None:
        schedule_sweep(token)
