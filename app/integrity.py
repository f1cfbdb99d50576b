"""Stored images re-hashed against their manifests: flag damage, refuse deploys, repair.

`check_image` re-reads every file (at a bounded rate for the scheduled job) and records a
damaged image on its row and in its history; deploys of a damaged image are refused.
`repair_image` fetches the damaged files from a com server that holds the same upload,
through the receive engine, and swaps the repaired copy in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from flask import current_app

from app import storage
from app.extensions import db
from app.models import ComServer, Image, record_history
from app.models.base import utcnow
from app.receive.area import Area
from app.receive.commit import commit_copy
from app.receive.stream import ReceiveError
from app.replication.identity import local_server_name
from app.replication.remote import Peer, RemoteError

log = logging.getLogger("castor.integrity")


class RepairError(Exception):
    """No com server could give a good copy of a damaged image."""


def pacer(mib_per_second: float) -> Callable[[int], None] | None:
    """Return a pace(n) callback that sleeps to keep reads under a rate (None: no limit)."""
    if mib_per_second <= 0:
        return None
    started, done = time.monotonic(), [0]

    def pace(count: int) -> None:
        done[0] += count
        ahead = done[0] / (mib_per_second * (1 << 20)) - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)

    return pace


def check_image(image: Image, pace: Callable[[int], None] | None = None,
                username: str = "system") -> list[str]:
    """Re-hash an image's files; flag or clear its damage; return the problems found."""
    folder = storage.image_dir(current_app.config["STORAGE_PATH"], image.name)
    if storage.read_manifest(folder) is None:
        return []  # never uploaded: nothing to check
    problems = storage.verify_folder(folder, pace)
    image.verified_at = utcnow()
    mark(image, problems, username)
    return problems


def mark(image: Image, problems: list[str], username: str = "system") -> None:
    """Record an image as damaged (with its problems) or sound; history on a change."""
    was = image.damaged
    image.damaged = "; ".join(problems)[:4000]
    if problems and not was:
        record_history("image", image.id, "damaged", {"problems": problems[:20]}, username)
    elif was and not problems:
        record_history("image", image.id, "verified", {"was": was[:500]}, username)
    db.session.commit()


def _peers() -> list[ComServer]:
    return list(db.session.scalars(db.select(ComServer).where(ComServer.is_local.is_(False))
                                   .order_by(ComServer.display_name)))


def repair_image(image: Image, username: str = "system") -> str:
    """Replace the damaged files of an image with a peer's good copy; return the peer."""
    root = current_app.config["STORAGE_PATH"]
    folder = storage.image_dir(root, image.name)
    manifest = storage.read_manifest(folder)
    if manifest is None:
        raise RepairError(f"{image.name} has no manifest here: upload it again")
    bad = [entry for entry in manifest["files"] if storage.verify_folder_entry(folder, entry)]
    if not bad:
        mark(image, [], username)
        return ""
    tried = []
    for server in _peers():
        if not server.shared_secret:
            continue
        peer = Peer(server.url, server.shared_secret, local_server_name(), timeout=60)
        try:
            report = peer.report(image.name)
            theirs = report.get("manifest") or {}
            held = {f["path"]: f["sha256"] for f in report.get("files", [])}
            if theirs.get("upload_id") != manifest.get("upload_id") or any(
                    held.get(entry["path"]) != entry["sha256"] for entry in bad):
                tried.append(f"{server.display_name}: no good copy of this upload")
                continue
            _pull(peer, root, image.name, folder, manifest, bad)
        except (RemoteError, ReceiveError) as exc:
            tried.append(f"{server.display_name}: {exc}")
            continue
        finally:
            peer.close()
        image.damaged = ""
        image.verified_at = utcnow()
        record_history("image", image.id, "repaired",
                       {"from": server.display_name, "files": [e["path"] for e in bad]},
                       username)
        db.session.commit()
        return server.display_name
    raise RepairError(f"{image.name} could not be repaired: " + ("; ".join(tried)
                                                                 or "no com server is paired"))


def _pull(peer: Peer, root: str, name: str, folder: Path, manifest: dict, bad: list[dict]) -> None:
    """Fetch the bad files into a repair copy, verified, and swap it in."""
    area = Area(Path(root) / "repair" / name, allow_top=(storage.SCHEMA,))
    area.discard()
    try:
        for entry in bad:
            response = peer.open_file(name, entry["path"])
            try:
                area.receive(entry["path"], response.read, offset=0,
                             length=entry["size_bytes"], size=entry["size_bytes"], final=True,
                             sha256=entry["sha256"])
            finally:
                response.close()
        extras = []
        schema = folder / storage.SCHEMA
        if schema.is_file():
            extras.append({"path": storage.SCHEMA, "size_bytes": schema.stat().st_size,
                           "sha256": storage.sha256_file(schema)})
        commit_copy(root, name, area, manifest, kind="repair", record={}, extras=extras,
                    current=folder)
    finally:
        area.discard()


VERIFY_JOB = "jobs.integrity.verify_images"


def verify_chain_key() -> str:
    """The Redis key holding the token of the live chain of scheduled checks."""
    return f"castor:{current_app.config['RQ_QUEUE']}:integrity:chain"


def schedule_verify(token: str | None = None) -> str | None:
    """Queue the next scheduled check after VERIFY_INTERVAL_HOURS; None when switched off.

    Without a token this starts a new chain and retires any older one.
    """
    import uuid
    from datetime import timedelta

    from app.jobs import queue, redis_connection
    from app.models import Job

    hours = float(current_app.config.get("VERIFY_INTERVAL_HOURS", 24))
    if hours <= 0:
        return None
    if token is None:
        token = uuid.uuid4().hex
        redis_connection().set(verify_chain_key(), token)
    job_id = uuid.uuid4().hex
    db.session.add(Job(id=job_id, kind="image_verify", message=f"scheduled in {hours} h"))
    db.session.commit()
    queue().enqueue_in(timedelta(hours=hours), VERIFY_JOB, job_id, token, job_id=job_id,
                       job_timeout=-1)
    return token


def chain_is_current(token: str | None) -> bool:
    """Tell whether a scheduled check belongs to the live chain (None: run once)."""
    from app.jobs import redis_connection

    if token is None:
        return True
    current = redis_connection().get(verify_chain_key())
    return current is not None and current.decode() == token


def check_all(pace: Callable[[int], None] | None = None, username: str = "system") -> dict:
    """Check every image; return {name: problems} of the damaged ones."""
    damaged = {}
    for image in db.session.scalars(db.select(Image).order_by(Image.name)):
        problems = check_image(image, pace, username)
        if problems:
            damaged[image.name] = problems
    return damaged
