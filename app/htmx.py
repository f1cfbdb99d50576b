"""Every htmx request/response header Castor uses, in one place."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from flask import Flask, Response, request, url_for

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
    """Add Vary (full pages and fragments cached apart); send htmx to login as a full page."""

    @app.after_request
    def _vary(response: Response) -> Response:
        response.vary.add("HX-Request")
        return response

    @app.after_request
    def _login_in_full_page(response: Response) -> Response:
        # An expired session sends htmx to the login page: load it as a whole page (not into
        # a tab) and come back to the page the user was on.
        login = url_for("auth.login") if "auth.login" in app.view_functions else None
        if not (login and is_htmx() and response.status_code in (301, 302, 303, 307, 308)
                and urlsplit(response.location or "").path == login):
            return response
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        back = current.path + (f"?{current.query}" if current.query else "") or "/"
        answer = Response(status=200)
        answer.vary.add("HX-Request")
        return redirect_header(answer, url_for("auth.login", next=back))
