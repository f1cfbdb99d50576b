"""The REST API under /api/v1: shared auth decorator and error shape."""

from __future__ import annotations

from functools import wraps

from flask import g, jsonify


def api_error(status: int, message: str, **extra):
    """Return a JSON error body `{"error": message, ...}` with the status."""
    body = {"error": message}
    body.update(extra)
    return jsonify(body), status


def token_required(view):
    """Refuse API calls without a valid `Authorization: Bearer` token."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("user") is None:
            return api_error(401, "a valid API token is required (Authorization: Bearer ...)")
        return view(*args, **kwargs)

    return wrapped
