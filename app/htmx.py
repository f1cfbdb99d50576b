"""Every htmx request/response header Castor uses, in one place."""

from __future__ import annotations

import json

from flask import Flask, Response, request

STOP_POLLING = 286


def is_htmx() -> bool:
    """Tell whether the request was made by htmx."""
    return request.headers.get("HX-Request") == "true"


def is_partial() -> bool:
    """Tell whether to answer with a fragment: htmx, not boosted, not a history restore."""
    return (
        is_htmx()
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def trigger(response: Response, event: str, detail: object | None = None) -> Response:
    """Ask htmx to fire a client-side event after the swap."""
    response.headers["HX-Trigger"] = json.dumps({event: detail}) if detail is not None else event
    return response


def location(response: Response, url: str) -> Response:
    """Ask htmx to navigate to a URL without a full reload."""
    response.headers["HX-Location"] = url
    return response


def redirect_header(response: Response, url: str) -> Response:
    """Ask htmx to do a full-page redirect."""
    response.headers["HX-Redirect"] = url
    return response


def init_app(app: Flask) -> None:
    """Register the Vary header so caches keep full pages and fragments apart."""

    @app.after_request
    def _vary(response: Response) -> Response:
        response.vary.add("HX-Request")
        return response
