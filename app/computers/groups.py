"""Computer groups (used for multicast): list, add, edit members, delete."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for

from app.computers.blueprint import bp
from app.computers.forms import GroupForm
from app.confirm import confirmation_page
from app.extensions import db
from app.models import ComputerGroup, record_history


def group_or_404(group_id: int) -> ComputerGroup:
    """Return the group with this id, or abort with 404."""
    group = db.session.get(ComputerGroup, group_id)
    if group is None:
        abort(404, description=f"No group with id {group_id}.")
    return group


@bp.get("/groups")
def groups():
    """List computer groups."""
    rows = db.session.scalars(db.select(ComputerGroup).order_by(ComputerGroup.name)).all()
    return render_template("computers/groups.html", groups=rows)


@bp.route("/groups/new", methods=["GET", "POST"])
def new_group():
    """Add a group."""
    form = GroupForm()
    if form.validate_on_submit():
        group = ComputerGroup(name=form.name.data, description=form.description.data or "",
                              members=form.selected_computers())
        db.session.add(group)
        db.session.flush()
        record_history("computer_group", group.id, "create", group.to_dict())
        db.session.commit()
        flash(f"Group {group.name} added.", "success")
        return redirect(url_for("computers.edit_group", group_id=group.id), 303)
    return render_template("computers/group_form.html", form=form, group=None)


@bp.route("/groups/<int:group_id>", methods=["GET", "POST"])
def edit_group(group_id: int):
    """Show and update a group and its members."""
    group = group_or_404(group_id)
    form = GroupForm(group)
    if form.validate_on_submit():
        group.name = form.name.data
        group.description = form.description.data or ""
        group.members = form.selected_computers()
        record_history("computer_group", group.id, "update", group.to_dict())
        db.session.commit()
        flash(f"Group {group.name} updated.", "success")
        return redirect(url_for("computers.edit_group", group_id=group.id), 303)
    multicast_url = None
    if "multicast.new" in current_app.view_functions:
        multicast_url = url_for("multicast.new", group=group.id)
    return render_template("computers/group_form.html", form=form, group=group,
                           multicast_url=multicast_url)


@bp.post("/groups/<int:group_id>/delete")
def delete_group(group_id: int):
    """Delete a group (its computers stay)."""
    group = group_or_404(group_id)
    page = confirmation_page(f"Delete group {group.name}?",
                             f"Group {group.name} is deleted; its computers stay.",
                             back=url_for("computers.edit_group", group_id=group.id))
    if page is not None:
        return page
    record_history("computer_group", group.id, "delete", group.to_dict())
    db.session.delete(group)
    db.session.commit()
    flash(f"Group {group.name} deleted.", "success")
    return redirect(url_for("computers.groups"), 303)
