"""The History tab's reading of audit rows: human action names and what each event changed."""

from __future__ import annotations

ACTION_NAMES = {"create": "Created", "update": "Changed", "delete": "Deleted",
                "upload": "Uploaded", "deploy": "Deployed", "multicast": "Multicast deploy",
                "rename": "Renamed", "replicate": "Replicated", "verify": "Verified",
                "protect": "Protected", "unprotect": "Unprotected"}
# Snapshot keys that change on their own and say nothing about the edit.
IGNORED = {"id", "created_at"}


def action_name(action: str) -> str:
    """Return an action's name in words ("upload" -> "Uploaded")."""
    return ACTION_NAMES.get(action, action.replace("_", " ").capitalize())


def changes(before: dict | None, after: dict) -> list[tuple[str, object, object]]:
    """List (field, before, after) for each field that differs between two snapshots."""
    if before is None:
        return []
    fields = sorted((set(before) | set(after)) - IGNORED)
    return [(field, before.get(field), after.get(field)) for field in fields
            if before.get(field) != after.get(field)]


def with_changes(snapshots: list[dict]) -> list[list[tuple[str, object, object]]]:
    """For snapshots oldest first, the changes each one made to the one before it."""
    previous: dict | None = None
    out = []
    for data in snapshots:
        out.append(changes(previous, data) if data else [])
        if data:
            previous = data
    return out
