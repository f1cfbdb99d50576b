"""Boot tickets and task tokens: what a PXE-booted machine carries, and what it gets for it.

Whatever a boot script carries is public on the LAN (firmware cannot authenticate), so it
carries only a ticket: one-time, short-lived, bound to its task and MAC, stored hashed. The
client trades it once at check-in for a task token scoped to that task. Neither is ever kept
in clear text by the server, and both stop working when their task ends.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, update

from app.computers.rules import normalize_mac
from app.extensions import db
from app.models.base import utcnow
from app.models.computers import Task
from app.models.credentials import BootTicket, TaskToken
from app.models.users import hash_token

TICKET_PREFIX = "cbt_"
TOKEN_PREFIX = "ctk_"


class TicketError(Exception):
    """A ticket that cannot be exchanged; the message says why (without revealing much)."""


def _same_mac(issued: str, given: str) -> bool:
    """Tell whether the MAC a client gives is the one its ticket was issued for."""
    if not issued:
        return True
    try:
        return normalize_mac(given) == issued
    except ValueError:
        return False


def mint_ticket(task: Task, mac: str, source: str, lifetime_seconds: int) -> str:
    """Issue a new ticket for the task and MAC; older unused tickets of that source go.

    The caller commits. A machine only ever uses the newest script it fetched, so an unused
    older ticket of the same source is dead weight (and one less thing to leak).
    """
    now = utcnow()
    db.session.execute(delete(BootTicket).where(
        BootTicket.task_id == task.id, BootTicket.source == source,
        BootTicket.used_at.is_(None)))
    clear = TICKET_PREFIX + secrets.token_urlsafe(24)
    db.session.add(BootTicket(
        task_id=task.id, ticket_hash=hash_token(clear), source=source,
        mac=normalize_mac(mac) if mac else "", created_at=now,
        expires_at=now + timedelta(seconds=lifetime_seconds)))
    db.session.flush()
    return clear


def exchange_ticket(clear: str, mac: str) -> tuple[Task, BootTicket]:
    """Spend a ticket once; return its active task (raises TicketError). The caller commits."""
    row = db.session.scalar(db.select(BootTicket).filter_by(ticket_hash=hash_token(clear)))
    now = utcnow()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise TicketError("the boot ticket is unknown, already used or expired")
    if not _same_mac(row.mac, mac):
        raise TicketError("the boot ticket was not issued for this machine")
    if not row.task.is_active:
        raise TicketError("the boot ticket's task has ended")
    # One UPDATE that only one of two racing check-ins can win.
    spent = db.session.execute(update(BootTicket).where(
        BootTicket.id == row.id, BootTicket.used_at.is_(None)).values(used_at=now))
    if spent.rowcount != 1:
        raise TicketError("the boot ticket is unknown, already used or expired")
    return row.task, row


def issue_task_token(task: Task, grace_seconds: int = 600) -> str:
    """Issue one more token for the task (earlier ones stay valid); the caller commits."""
    purge_ended_tokens(grace_seconds)
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(TaskToken(task_id=task.id, token_hash=hash_token(clear)))
    db.session.flush()
    return clear


def task_for_token(clear: str, *, grace_seconds: int = 0) -> Task | None:
    """Return the task a token belongs to while it is active (or ended less than grace ago)."""
    if not clear.startswith(TOKEN_PREFIX):
        return None
    row = db.session.scalar(db.select(TaskToken).filter_by(token_hash=hash_token(clear)))
    if row is None:
        return None
    task = row.task
    if task.is_active:
        return task
    if grace_seconds and _ended_within(task.finished_at, grace_seconds):
        return task
    return None


def _ended_within(finished_at: datetime | None, seconds: int) -> bool:
    """Tell whether a task ended less than `seconds` ago."""
    return finished_at is not None and utcnow() - finished_at < timedelta(seconds=seconds)


def drop_tickets(task_id: int) -> None:
    """Delete every ticket of a task (it ended, nothing may boot into it); caller commits."""
    db.session.execute(delete(BootTicket).where(BootTicket.task_id == task_id))


def purge_ended_tokens(grace_seconds: int) -> None:
    """Delete the tokens of tasks that ended longer than `grace_seconds` ago; caller commits."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    ended = db.select(Task.id).where(Task.finished_at.is_not(None), Task.finished_at < cutoff)
    db.session.execute(delete(TaskToken).where(TaskToken.task_id.in_(ended)))
