"""Errors of the planning engine, shown to users as they are."""

from __future__ import annotations


class PlanError(ValueError):
    """A deploy that must be refused before anything is written; the message says why."""
