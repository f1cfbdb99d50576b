"""Image profile pages, one URL per tab."""

from __future__ import annotations

import json

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from app import htmx
from app.confirm import confirmation_page
from app.extensions import db
from app.models import Image, ImageProfile
from app.profiles import assignments, domain, selections
from app.profiles.assign_views import assignments_tab
from app.profiles.forms import NewProfileForm, attach_errors, choices, form_changes, tab_form
from app.profiles.loaders import image_or_404, profile_or_404
from app.profiles.options import TABS, ProfileError, boot_files, tab_visible
from app.profiles.rendering import TAB_LABELS, render_tab, tab_context

bp = Blueprint("profiles", __name__, url_prefix="/images/<int:image_id>/profiles")


@bp.get("/")
def index(image_id: int):
    """Search the image's profiles; each row shows its minimum client size per disk."""
    image = image_or_404(image_id)
    search = request.args.get("q", "").strip()
    profiles = [p for p in image.profiles
                if not search or search.lower() in f"{p.name} {p.description}".lower()]
    minimums = {p.id: domain.profile_minimums(p, image) for p in profiles}
    template = "profiles/_rows.html" if htmx.is_partial() else "profiles/index.html"
    return render_template(template, image=image, profiles=profiles, minimums=minimums,
                           search=search)


@bp.route("/new", methods=["GET", "POST"])
def new(image_id: int):
    """Create a new blank profile."""
    image = image_or_404(image_id)
    form = NewProfileForm()
    if form.validate_on_submit():
        try:
            profile = domain.create_profile(image, form.name.data, form.description.data or "")
        except ProfileError as exc:
            attach_errors(form, exc)
        else:
            db.session.commit()
            flash(f"Profile {profile.name} created.", "success")
            return redirect(url_for(".tab", image_id=image.id, profile_id=profile.id,
                                    tab="general"), 303)
    status = 422 if form.errors else 200
    return render_template("profiles/new.html", image=image, form=form), status


def _options_post(image: Image, profile: ImageProfile, tab: str, form) -> list[str] | None:
    """Save an option tab; return None when saved, else the errors that fit no field."""
    if not form.validate_on_submit():
        return []
    changes = form_changes(form, tab)
    schema = selections.image_schema(image)
    if schema is not None and request.form.get("schema_table") == tab:
        if tab == "upload" and changes.get("use_custom_upload_schema"):
            changes["custom_upload_schema"] = selections.from_form(schema, request.form,
                                                                   "upload")
        if tab == "deploy" and changes.get("modify_image_schema"):
            changes["deploy_schema"] = selections.from_form(schema, request.form, "deploy")
    try:
        domain.update_profile(profile, image, changes, current_app.config["BOOT_FILES_PATH"])
    except ProfileError as exc:
        db.session.rollback()
        return attach_errors(form, exc)
    db.session.commit()
    return None


@bp.route("/<int:profile_id>/<tab>", methods=["GET", "POST"])
def tab(image_id: int, profile_id: int, tab: str):
    """Show or save one tab of a profile."""
    image, profile = profile_or_404(image_id, profile_id)
    if tab not in TABS or not tab_visible(tab, image.environment):
        abort(404)
    if tab in assignments.TAB_KINDS:
        return assignments_tab(image, profile, tab)
    form = tab_form(tab, image.environment, obj=profile)
    if tab == "pxe":
        kernels, boot_images = boot_files(current_app.config["BOOT_FILES_PATH"])
        form.pxe_kernel.choices = choices({"": "(default)", **{k: k for k in kernels}})
        form.pxe_boot_image.choices = choices({"": "(default)", **{b: b for b in boot_images}})
    if request.method == "POST":
        loose = _options_post(image, profile, tab, form)
        if loose is None:
            flash(f"{TAB_LABELS[tab]} saved.", "success")
            return redirect(url_for(".tab", image_id=image.id, profile_id=profile.id,
                                    tab=tab), 303)
        image, profile = profile_or_404(image_id, profile_id)
        context = tab_context(image, profile, tab, form)
        context["errors"] = loose
        schema = selections.image_schema(image)
        if schema is not None and request.form.get("schema_table") == tab:
            # Show the table as the user left it, not as it was stored, with each problem
            # on the row at fault.
            context["selection"] = selections.from_form(schema, request.form, tab)
            method = form.partition_method.data if tab == "deploy" else "dynamic"
            context["row_errors"] = selections.row_errors(context["selection"], tab, method)
        return render_tab(context, 422)
    return render_tab(tab_context(image, profile, tab, form))


@bp.post("/<int:profile_id>/clone")
def clone(image_id: int, profile_id: int):
    """Copy a profile with every option and module assignment."""
    _image, profile = profile_or_404(image_id, profile_id)
    copy = domain.clone_profile(profile)
    db.session.commit()
    flash(f"Profile {profile.name} cloned as {copy.name}.", "success")
    return redirect(url_for(".tab", image_id=image_id, profile_id=copy.id, tab="general"), 303)


@bp.post("/<int:profile_id>/delete")
def delete(image_id: int, profile_id: int):
    """Delete a profile (never the last one of the image)."""
    image, profile = profile_or_404(image_id, profile_id)
    name = profile.name
    try:
        domain.check_deletable(profile)
    except ProfileError as exc:
        flash(exc.errors["profile"], "error")
        return redirect(url_for(".index", image_id=image_id), 303)
    page = confirmation_page(
        f"Delete profile {name}?",
        f"Profile {name} of image {image.name} is deleted with its options and module "
        "assignments; the image's files stay.",
        back=url_for(".tab", image_id=image_id, profile_id=profile.id, tab="general"))
    if page is not None:
        return page
    try:
        domain.delete_profile(profile)
    except ProfileError as exc:
        db.session.rollback()
        flash(exc.errors["profile"], "error")
    else:
        db.session.commit()
        flash(f"Profile {name} deleted.", "success")
    return redirect(url_for(".index", image_id=image_id), 303)


@bp.get("/<int:profile_id>/export-schema")
def export_schema(image_id: int, profile_id: int):
    """Download the profile's modified deploy schema as JSON."""
    image, profile = profile_or_404(image_id, profile_id)
    selection = domain.deploy_selection(profile, image)
    if selection is None:
        abort(404, "the image has no schema yet")
    filename = f"{image.name}-{profile.name}-deploy-schema.json".replace('"', "")
    return Response(json.dumps(selection, indent=2, sort_keys=True), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/<int:profile_id>/minimum-size")
def minimum_size(image_id: int, profile_id: int):
    """Show the minimum client size per disk, for the sizes being edited when given."""
    image, profile = profile_or_404(image_id, profile_id)
    schema = selections.image_schema(image)
    if schema is not None and request.args.get("schema_table") == "deploy":
        selection = selections.from_form(schema, request.args, "deploy")
        problems = selections.validate(selection, "deploy",
                                       request.args.get("partition_method", "dynamic"))
        minimums = None if problems else domain.minimum_sizes(
            schema, selection if "modify_image_schema" in request.args else None,
            profile.minimum_sizes_json)
    else:
        problems = []
        minimums = domain.profile_minimums(profile, image)
    context = {"image": image, "profile": profile, "minimums": minimums,
               "problems": problems, "schema": schema}
    if htmx.is_partial():
        return render_template("profiles/_minimum_size.html", **context)
    return render_template("profiles/minimum_size.html", **context)


__all__ = ["bp", "image_or_404", "profile_or_404"]
