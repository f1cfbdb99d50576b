"""The one error boundary of /api: every answer is JSON `{"error": message, ...}`.

Handlers are registered once on the app. Domain refusals (app.errors.Refused) answer with
their own status; HTTP errors (404 routing, 405, 413, 415) keep their status and headers
with a JSON body; anything unexpected is logged and answered as a JSON 500.
"""

from __future__ import annotations

import json

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from app.errors import Refused
from app.extensions import db

API_PREFIX = "/api/"
# A JSON body is a document, not a disk image: uploads stream octet-stream bodies instead.
JSON_BODY_LIMIT = 8 << 20
MAX_ID = (1 << 63) - 1  # the largest id a 64-bit signed integer column holds


class IdConverter(IntegerConverter):
    """`<int:...>` URL parts as database ids: a number no id column holds becomes 0.

    0 matches no row, so the view answers its own 404. (Refusing the value here instead
    would make werkzeug answer 405 when another method's rule shares the path.)
    """

    def to_python(self, value: str) -> int:
        """Return the id, or 0 when it is out of the 1 .. 2^63-1 range of an id column."""
        number = int(value)
        return number if 1 <= number <= MAX_ID else 0


def is_api_request() -> bool:
    """Tell whether the current request is one of the API's."""
    return request.path.startswith(API_PREFIX)


def json_error(status: int, body: dict, response: Response | None = None) -> Response:
    """Return `body` as a JSON answer with `status`, keeping the headers of `response`."""
    response = response or Response()
    response.set_data(json.dumps(body))
    response.mimetype = "application/json"
    response.status_code = status
    return response


def _http_error(exc: HTTPException):
    """Answer an HTTP error under /api as JSON, keeping its status and headers (Allow...)."""
    if not is_api_request():
        return exc
    return json_error(exc.code or 500, {"error": exc.description or exc.name},
                      exc.get_response())


def _refused(exc: Refused):
    """Answer a domain refusal with its status; nothing the request changed is kept."""
    if not is_api_request():
        raise exc
    db.session.rollback()
    return json_error(exc.status, exc.payload())


def _unexpected(exc: Exception):
    """Log an unexpected error and answer a JSON 500 (outside /api: Flask's own handling)."""
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    if not is_api_request():
        raise exc
    db.session.rollback()
    current_app.logger.exception("unexpected error in %s %s", request.method, request.path)
    return json_error(500, {"error": "internal server error: the server log has the details"})


def _limit_json_bodies():
    """Refuse JSON bodies larger than JSON_BODY_LIMIT before anything reads them."""
    if (is_api_request() and request.mimetype == "application/json"
            and (request.content_length or 0) > JSON_BODY_LIMIT):
        raise RequestEntityTooLarge(f"a JSON body is at most {JSON_BODY_LIMIT} bytes")


def init_app(app: Flask) -> None:
    """Register the API's error handlers and its id converter on the app."""
    app.url_map.converters["int"] = IdConverter
    app.before_request(_limit_json_bodies)
    app.register_error_handler(Refused, _refused)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
