"""Remove a machine's per-MAC boot files whenever its task ends, whoever ends it.

A task can end through any code that sets `Task.state` (the client API's check-out, expiry,
the UI). If its pxelinux/GRUB files stayed, the machine's next PXE boot (the reboot after a
deploy) would start imaging again. So every committed change of a task to a final state
removes the files of its computer, unless that computer has another active task by then.
"""

from __future__ import annotations

from flask import current_app, has_app_context
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from app.models.computers import ACTIVE_STATES, Computer, Task
from app.tasks import bootfiles

_PENDING = "castor_ended_task_computers"


@event.listens_for(Session, "after_flush")
def _collect_ended(session: Session, _context) -> None:
    """Note the computers whose task's state was just set to a final state."""
    for obj in list(session.dirty) + list(session.new):
        if not isinstance(obj, Task) or obj.computer_id is None or obj.state in ACTIVE_STATES:
            continue
        if inspect(obj).attrs.state.history.has_changes():
            session.info.setdefault(_PENDING, set()).add(obj.computer_id)


@event.listens_for(Session, "after_commit")
def _remove_files(session: Session) -> None:
    """After the commit, remove the boot files of those computers that are now idle."""
    computer_ids = session.info.pop(_PENDING, None)
    if not computer_ids or not has_app_context() or "TFTP_PATH" not in current_app.config:
        return
    busy = (select(Task.computer_id)
            .where(Task.state.in_(ACTIVE_STATES), Task.computer_id.in_(computer_ids)))
    query = select(Computer.mac).where(Computer.id.in_(computer_ids), Computer.id.not_in(busy),
                                       Computer.mac != "")
    # The session cannot run SQL inside after_commit; a short connection of its own can.
    with session.get_bind().connect() as conn:
        macs = list(conn.execute(query).scalars())
    for mac in macs:
        bootfiles.remove_for_mac(current_app.config, mac)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    """A rolled-back change ended nothing."""
    session.info.pop(_PENDING, None)
