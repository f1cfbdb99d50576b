"""Styled error pages for the web UI (400, 403, 404, 405, 409, 500); `/api` answers stay JSON.

Handlers are registered by status code. Under `/api` they hand the error to the class-based
`HTTPException` handler when one is registered (the API's JSON boundary), so both coexist.
A refused CSRF token on a full-page form keeps what the user typed: the page offers the
entries back with a fresh token.
"""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app import htmx

TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found",
          405: "Method not allowed", 409: "Not possible now", 500: "Server error"}
CSRF_MESSAGE = ("The page's security token is no longer valid (you may have signed out or in "
                "again in another tab). Nothing was saved.")
# Fields never echoed back into a page.
SECRET_FIELDS = {"csrf_token", "password", "current_password", "new_password", "confirm",
                 "shared_secret", "token"}


def _api_handler():
    """Return the class-based HTTPException handler (the API boundary's), if any."""
    return current_app.error_handler_spec.get(None, {}).get(None, {}).get(HTTPException)


def message_for(exc: HTTPException) -> str:
    """Say in words what went wrong."""
    if isinstance(exc, CSRFError):
        return CSRF_MESSAGE
    if exc.code == 404:
        return "There is nothing at this address: it may have been deleted or renamed."
    if exc.code == 500:
        return "Something went wrong on the server; the server log has the details."
    return exc.description or exc.name


def kept_entries() -> list[tuple[str, str]]:
    """The posted form fields worth giving back (no secrets, no files)."""
    if request.method != "POST":
        return []
    return [(key, value) for key, values in request.form.lists()
            for value in values if key not in SECRET_FIELDS]


def render_error(exc: HTTPException):
    """Render an HTTP error as a page with navigation, or as a message for htmx."""
    if request.path.startswith("/api/"):
        handler = _api_handler()
        return handler(exc) if handler else exc
    code = exc.code or 500
    message = message_for(exc)
    if htmx.is_htmx():
        return render_template("errors/_message.html", code=code, message=message), code
    entries = kept_entries() if isinstance(exc, CSRFError) else []
    return render_template("errors/error.html", code=code, title=TITLES.get(code, exc.name),
                           message=message, entries=entries, action=request.path), code


def init_app(app: Flask) -> None:
    """Register the page handlers by status code."""
    for code in TITLES:
        app.register_error_handler(code, render_error)
