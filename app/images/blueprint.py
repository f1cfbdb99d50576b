"""The images blueprint, and the helpers every image page's template uses.

Its routes live in app.images.views (search, new, General, delete), app.images.tabs (the
other tabs) and app.images.progress (live imaging activity); views imports the other two.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from werkzeug.exceptions import RequestEntityTooLarge

from app.images import rules

bp = Blueprint("images", __name__, url_prefix="/images")


@bp.app_context_processor
def _image_helpers() -> dict:
    """Give templates `has_endpoint(name)` so tab links appear once their feature exists."""

    def has_endpoint(endpoint: str) -> bool:
        return endpoint in current_app.view_functions

    return {"has_endpoint": has_endpoint, "type_labels": rules.TYPE_LABELS,
            "environment_labels": rules.ENVIRONMENT_LABELS,
            "types_by_environment": rules.TYPES_BY_ENVIRONMENT,
            "default_types": rules.DEFAULT_TYPES}


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge):
    """Explain an oversized form instead of a bare 413."""
    message = (f"The form was too large. The description is at most "
               f"{rules.DESCRIPTION_MAX:,} characters.")
    return render_template("images/too_large.html", message=message), 413
