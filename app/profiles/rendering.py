"""What the profile tab templates need, and the full-page-or-partial answer."""

from __future__ import annotations

from flask import current_app, render_template

from app import htmx
from app.extensions import db
from app.models import Image, ImageProfile
from app.models.profiles import COMPRESSION_LEVELS
from app.profiles import assignments, domain
from app.profiles.options import TABS, boot_files, tab_visible

TAB_LABELS = {"general": "General", "pxe": "PXE Boot Options", "task": "Task Options",
              "upload": "Upload Options", "deploy": "Deploy Options",
              "multicast": "Multicast Options", "scripts": "Scripts", "sysprep": "Sysprep",
              "filecopy": "File Copy"}


def tab_context(image: Image, profile: ImageProfile, tab: str, form=None) -> dict:
    """Return what a tab's template needs."""
    context = {"image": image, "profile": profile, "tab": tab, "form": form,
               "tabs": [(t, TAB_LABELS[t]) for t in TABS if tab_visible(t, image.environment)],
               "errors": []}
    if tab == "pxe":
        context["kernels"], context["boot_images"] = boot_files(
            current_app.config["BOOT_FILES_PATH"])
    if tab == "upload":
        context["selection"] = domain.upload_selection(profile, image)
        context["compression_levels"] = COMPRESSION_LEVELS
    if tab == "deploy":
        context["selection"] = domain.deploy_selection(profile, image)
        context["minimums"] = domain.profile_minimums(profile, image)
    if tab in assignments.TAB_KINDS:
        kind = assignments.KINDS[assignments.TAB_KINDS[tab]]
        context["kind"] = kind
        context["rows"] = assignments.rows(profile, kind)
        context["modules"] = db.session.scalars(
            db.select(kind.model).order_by(kind.model.name)).all()
    return context


def render_tab(context: dict, status: int = 200):
    """Render a tab as a full page, or as the tab partial for htmx."""
    if htmx.is_partial():
        # htmx swaps only 2xx answers by default; the form errors are in the fragment.
        return render_template("profiles/_tab.html", partial=True, **context), 200
    return render_template("profiles/tab.html", partial=False, **context), status
