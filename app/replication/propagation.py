"""Deletes and renames made here, sent on to the peers that hold a copy of the image.

The image workflows (app.images.service) call these after their local change committed:

- A copy replicated in from a peer (its `origin` is set) belongs to that peer, which takes
  changes from nobody else and whose other peers take changes of its images only from it
  (app.replication.peers): deleting or renaming such a copy changes this server only.
- An image made or uploaded here goes to the servers that hold or should hold a copy: those
  with a replication status row for it, and the targets of its replication mode.
- Nothing here raises: the local change is done, and a job that could not be queued is a
  failed job row, listed on the dashboard with the jobs that failed on the peer.
- A failed job can be queued again for its server (`retry`) while the change still makes
  sense there; the newest attempt of a change hides the older ones from the dashboard.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import aliased

from app.errors import NotFound, Refused
from app.extensions import db
from app.jobs import never_queued
from app.models import ComServer, Image, Job, ReplicationStatus
from app.models.base import utcnow
from app.replication import propagate_delete, propagate_rename
from app.replication.identity import targets_for

log = logging.getLogger("castor.replication")

KINDS = ("replication_delete", "replication_rename")
WORDS = {"delete": ("deletion", "deleted"), "rename": ("rename", "renamed")}


@dataclass(frozen=True)
class Propagation:
    """Where a delete or rename made here went: the servers told, or the origin keeping it."""

    action: str = "delete"
    queued: frozenset[str] = frozenset()      # servers whose job is queued
    not_queued: frozenset[str] = frozenset()  # servers whose job RQ did not take
    kept_by: frozenset[str] = frozenset()     # origins of copies changed here only

    def __add__(self, other: Propagation) -> Propagation:
        """Combine the outcomes of several images (a bulk delete)."""
        return Propagation(self.action, self.queued | other.queued,
                           self.not_queued | other.not_queued, self.kept_by | other.kept_by)

    def notices(self) -> list[tuple[str, str]]:
        """Say where the change went, as (message, flash category) pairs."""
        noun, done = WORDS[self.action]
        out = []
        if self.queued:
            count = len(self.queued)
            out.append((f"The {noun} is queued on {count} other server"
                        f"{'' if count == 1 else 's'}: {_names(self.queued)}.", "info"))
        if self.not_queued:
            out.append((f"The {noun} could not be queued on {_names(self.not_queued)} (the "
                        "job queue is unreachable): those servers keep their copy; the "
                        "dashboard lists the failure.", "error"))
        if self.kept_by:
            out.append((f"Replicated here from {_names(self.kept_by)}: {done} on this server "
                        f"only; {_names(self.kept_by)} keeps its copy and may send it again.",
                        "info"))
        return out


def _names(servers: frozenset[str]) -> str:
    return ", ".join(sorted(servers))


def servers_to_tell(image: Image) -> list[ComServer]:
    """Return the peers that must follow a delete or rename of an image; none for a copy."""
    if image.origin:
        return []
    holding = db.session.scalars(
        db.select(ComServer).join(ReplicationStatus, ReplicationStatus.server_id == ComServer.id)
        .where(ReplicationStatus.image_id == image.id, ComServer.is_local.is_(False))
    ).all()
    servers = {server.id: server for server in [*holding, *targets_for(image)]}
    return sorted(servers.values(), key=lambda server: server.display_name)


def send_delete(name: str, origin: str, servers: list[ComServer]) -> Propagation:
    """Queue the deletion of an image on the servers after it was deleted here."""
    if origin:
        return Propagation("delete", kept_by=frozenset({origin}))
    return _outcome("delete", servers, lambda: propagate_delete(name, servers))


def send_rename(image: Image, old: str) -> Propagation:
    """Queue the rename of an image on the servers holding a copy after it was renamed here."""
    try:
        origin, new, servers = image.origin, image.name, servers_to_tell(image)
    except Exception:  # the local rename is committed: report, never undo it
        db.session.rollback()
        log.exception("could not find the servers to rename %s on", old)
        return Propagation("rename")
    if origin:
        return Propagation("rename", kept_by=frozenset({origin}))
    return _outcome("rename", servers, lambda: propagate_rename(old, new, servers))


def _outcome(action: str, servers: list[ComServer], queue_jobs) -> Propagation:
    """Queue the jobs and sort the servers into queued and not queued; never raises."""
    if not servers:
        return Propagation(action)
    try:
        names = {server.id: server.display_name for server in servers}
        rows = queue_jobs()
        # A fast worker may already have run a job: only a row RQ never took counts here.
        queued = {names[row.object_id] for row in rows if not never_queued(row)}
    except Exception:  # the local change is committed: report, never undo it
        db.session.rollback()
        log.exception("could not queue the %s on the peers", action)
        return Propagation(action)
    return Propagation(action, frozenset(queued), frozenset(set(names.values()) - queued))


class RetryRefused(Refused):
    """A failed delete or rename that no longer makes sense to send (answered 409)."""

    status = 409


def _later_attempt():
    """A condition: a newer job sends the same change to the same server."""
    newer = aliased(Job)
    return db.select(newer.id).where(
        newer.kind == Job.kind, newer.object_id == Job.object_id,
        newer.arguments == Job.arguments, newer.arguments != "",
        newer.created_at > Job.created_at).exists()


def recent_failures(days: int = 30, limit: int = 10) -> list[Job]:
    """Return the newest deletes and renames that failed on (or never reached) a peer.

    A failure sent again since (its retry queued, running, done or failed in turn) is left
    out: the newest attempt speaks for the change.
    """
    return list(db.session.scalars(
        db.select(Job).where(Job.kind.in_(KINDS), Job.status == "failed",
                             Job.created_at >= utcnow() - timedelta(days=days),
                             ~_later_attempt())
        .order_by(Job.created_at.desc()).limit(limit)
    ))


def retry(job_id: str) -> Job:
    """Queue a failed delete or rename again for its server; return the new job row.

    Raises RetryRefused when the change no longer makes sense there: the server was
    removed, the job was already sent again, or an image here took one of its names since.
    """
    row = db.session.get(Job, job_id)
    if row is None or row.kind not in KINDS:
        raise NotFound(f"no delete or rename job {job_id}")
    what = f"The job to {row.message}"
    if row.status != "failed":
        raise RetryRefused(f"{what} is {row.status}: only a failed one is retried.")
    if db.session.scalar(db.select(Job.id).where(Job.id == row.id, _later_attempt())):
        raise RetryRefused(f"{what} was already sent again: the dashboard shows the newest "
                           "attempt.")
    server = db.session.get(ComServer, row.object_id) if row.object_id is not None else None
    if server is None or server.is_local:
        raise RetryRefused(f"{what} cannot be sent again: that server was removed from "
                           "Servers.")
    args = _arguments(row, server)
    if row.kind == "replication_delete":
        (name,) = args
        _refuse_if_here(name, f"deleting {name} on {server.display_name} could remove the "
                        "copy of the new image")
        jobs = propagate_delete(name, [server])
    else:
        old, new = args
        _refuse_if_here(old, f"renaming {old} on {server.display_name} could rename the "
                        "copy of the new image")
        image = db.session.scalar(db.select(Image).filter_by(name=new))
        if image is None or image.created_at > row.created_at or image.origin:
            raise RetryRefused(
                f"The image {new} this rename was for is no longer here (renamed again, "
                f"deleted or replaced since): renaming {old} to {new} on "
                f"{server.display_name} would no longer follow a change made here. The "
                "next replication sends the image under its current name.")
        jobs = propagate_rename(old, new, [server])
    if not jobs:
        raise RetryRefused(f"{what} could not be queued again; the server log says why.")
    return jobs[0]


def _arguments(row: Job, server: ComServer) -> list[str]:
    """Return the image name(s) a delete or rename job was queued with, or refuse."""
    try:
        args = json.loads(row.arguments)
    except ValueError:
        args = None
    count = 2 if row.kind == "replication_delete" else 3
    if not (isinstance(args, list) and len(args) == count and args[-1] == server.id
            and all(isinstance(name, str) for name in args[:-1])):
        raise RetryRefused(f"The job to {row.message} was queued before job arguments were "
                           f"kept: repeat the change on {server.display_name} by hand.")
    return args[:-1]


def _refuse_if_here(name: str, risk: str) -> None:
    """Refuse when an image of that name exists here again (made since the change)."""
    if db.session.scalar(db.select(Image.id).filter_by(name=name)) is not None:
        raise RetryRefused(f"An image named {name} exists here again (made or received "
                           f"since this change): {risk}.")
