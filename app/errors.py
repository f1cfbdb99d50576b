"""The base of every domain refusal: an error that knows the HTTP status that fits it.

Plain Python, no Flask: domain modules raise these, and the API's one error boundary
(app.api.errors) answers each as `{"error": message, ...}` with its status.
"""

from __future__ import annotations


class Refused(Exception):
    """A request the domain rules refuse; `status` is the HTTP status that says why."""

    status: int = 400
    summary: str = ""

    def payload(self) -> dict:
        """Return the JSON body of the refusal: `error`, plus `field`/`errors`/extras if set."""
        message = getattr(self, "message", None) or ": ".join(
            part for part in (self.summary, str(self)) if part)
        body: dict = {"error": message}
        for name in ("field", "errors"):
            value = getattr(self, name, None)
            if value is not None:
                body[name] = value
        body.update(getattr(self, "extra", None) or {})
        return body


class BadRequest(Refused):
    """Input the API cannot take (wrong shape, type or size); `field` names the culprit."""

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


class NotFound(Refused):
    """A referenced object does not exist."""

    status = 404
