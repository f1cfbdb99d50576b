"""The Scripts, Sysprep and File Copy tabs: assign, change, reorder and remove modules."""

from __future__ import annotations

from flask import flash, redirect, request, url_for

from app.confirm import confirmation_page
from app.extensions import db
from app.models import Image, ImageProfile
from app.profiles import assignments
from app.profiles.forms import AssignForm
from app.profiles.rendering import TAB_LABELS, render_tab, tab_context


def _assignment_fields(kind, form: AssignForm) -> dict:
    """Return the assignment fields of the submitted form that apply to this kind."""
    data = {}
    if form.priority.data is not None:
        data["priority"] = form.priority.data
    if kind.slug == "scripts":
        data["run_when"] = form.run_when.data
    if kind.slug == "filecopies":
        data["destination_partition"] = form.destination_partition.data or ""
    return data


def _apply(profile: ImageProfile, kind, form: AssignForm) -> str:
    """Run the posted action; return a success message or raise AssignmentError."""
    action = request.form.get("action", "add")
    if action == "add":
        row = assignments.assign(profile, kind, form.module_id.data,
                                 _assignment_fields(kind, form))
        return f"{row.module.name} assigned."
    row = assignments.find(profile, kind, request.form.get("assignment_id", type=int))
    if row is None:
        raise assignments.AssignmentError({"assignment_id": "no such assignment"})
    name = row.module.name
    if action == "remove":
        assignments.remove(profile, kind, row)
        return f"{name} removed."
    if action in ("up", "down"):
        assignments.move(profile, kind, row, -1 if action == "up" else 1)
        return f"{name} moved {action}."
    if action == "update":
        assignments.update(profile, kind, row, _assignment_fields(kind, form))
        return f"{name} updated."
    raise assignments.AssignmentError({"action": f"unknown action {action!r}"})


def _remove_confirmation(image: Image, profile: ImageProfile, kind, tab: str) -> str | None:
    """Return the page asking to remove a module from the profile, when that is what is posted."""
    if request.form.get("action") != "remove":
        return None
    row = assignments.find(profile, kind, request.form.get("assignment_id", type=int))
    if row is None:
        return None  # refused as "no such assignment" without a question
    name = row.module.name
    return confirmation_page(
        f"Remove {name} from profile {profile.name}?",
        f"The {kind.label.lower()} module {name} no longer runs for profile {profile.name} of "
        f"image {image.name}; the module itself stays.",
        back=url_for("profiles.tab", image_id=image.id, profile_id=profile.id, tab=tab),
        button="Remove")


def assignments_tab(image: Image, profile: ImageProfile, tab: str):
    """Show a module tab, or apply one posted change to the profile's assignments."""
    kind = assignments.KINDS[assignments.TAB_KINDS[tab]]
    form = AssignForm()
    if request.method == "POST":
        if form.validate_on_submit():
            page = _remove_confirmation(image, profile, kind, tab)
            if page is not None:
                return page
            try:
                message = _apply(profile, kind, form)
            except assignments.AssignmentError as exc:
                db.session.rollback()
                errors = list(exc.errors.values())
            else:
                db.session.commit()
                flash(message, "success")
                return redirect(url_for("profiles.tab", image_id=image.id,
                                        profile_id=profile.id, tab=tab), 303)
        else:
            errors = [f"{form[name].label.text}: {'; '.join(messages)}"
                      for name, messages in form.errors.items()]
        context = tab_context(image, profile, tab, form)
        context["errors"] = errors
        return render_tab(context, 422)
    context = tab_context(image, profile, tab, form)
    context["title"] = TAB_LABELS[tab]
    return render_tab(context)
