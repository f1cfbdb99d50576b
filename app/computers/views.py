"""Computers: list and search, add, edit (image + profile assignment), delete, start tasks."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from app import htmx
from app.computers import groups  # noqa: F401  (its routes are on bp)
from app.computers.blueprint import bp
from app.computers.forms import ComputerForm
from app.confirm import confirmation_page
from app.extensions import db
from app.models import Computer, History, Image, ImageProfile, Task, record_history
from app.models.computers import ACTIVE_STATES
from app.tasks.service import TaskError, active_task_for, check_task_allowed, create_task

PAGE_LIMITS = (25, 100, 500)


def computer_or_404(computer_id: int) -> Computer:
    """Return the computer with this id, or abort with 404."""
    computer = db.session.get(Computer, computer_id)
    if computer is None:
        abort(404, description=f"No computer with id {computer_id}.")
    return computer


def search_computers(query: str, limit: int) -> list[Computer]:
    """Return computers whose name, MAC, model, serial or client id contains the query."""
    stmt = db.select(Computer).order_by(Computer.name).limit(limit)
    if query:
        like = f"%{query.strip()}%"
        stmt = stmt.filter(db.or_(
            Computer.name.ilike(like), Computer.mac.ilike(like), Computer.model.ilike(like),
            Computer.serial.ilike(like), Computer.client_id.ilike(like),
        ))
    return list(db.session.scalars(stmt))


def active_tasks_by_computer(computers: list[Computer]) -> dict[int, Task]:
    """Return each listed computer's active task, keyed by computer id."""
    ids = [c.id for c in computers]
    if not ids:
        return {}
    tasks = db.session.scalars(
        db.select(Task).filter(Task.computer_id.in_(ids), Task.state.in_(ACTIVE_STATES))
    )
    return {task.computer_id: task for task in tasks}


@bp.get("/")
def index():
    """List and search computers (htmx active search swaps the table rows)."""
    query = request.args.get("q", "").strip()
    limit = request.args.get("limit", PAGE_LIMITS[0], type=int)
    limit = limit if limit in PAGE_LIMITS else PAGE_LIMITS[0]
    computers = search_computers(query, limit)
    context = {"computers": computers, "active": active_tasks_by_computer(computers),
               "query": query, "limit": limit, "limits": PAGE_LIMITS}
    if htmx.is_partial():
        return render_template("computers/_rows.html", **context)
    return render_template("computers/index.html", **context)


def _apply(form: ComputerForm, computer: Computer) -> None:
    """Copy the form's fields onto the computer."""
    computer.name = form.name.data
    computer.mac = form.mac.data or ""
    computer.client_id = form.client_id.data or ""
    computer.description = form.description.data or ""
    computer.image_id = form.image_id.data
    computer.profile_id = form.profile_id.data


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Add a computer."""
    form = ComputerForm()
    if form.validate_on_submit():
        computer = Computer()
        _apply(form, computer)
        db.session.add(computer)
        db.session.flush()
        record_history("computer", computer.id, "create", computer.to_dict())
        db.session.commit()
        flash(f"Computer {computer.name} added.", "success")
        return redirect(url_for("computers.edit", computer_id=computer.id), 303)
    return render_template("computers/form.html", form=form, computer=None)


@bp.route("/<int:computer_id>", methods=["GET", "POST"])
def edit(computer_id: int):
    """Show a computer, its tasks and history, and update it."""
    computer = computer_or_404(computer_id)
    form = ComputerForm(computer)
    if form.validate_on_submit():
        _apply(form, computer)
        record_history("computer", computer.id, "update", computer.to_dict())
        db.session.commit()
        flash(f"Computer {computer.name} updated.", "success")
        return redirect(url_for("computers.edit", computer_id=computer.id), 303)
    tasks = db.session.scalars(
        db.select(Task).filter_by(computer_id=computer.id).order_by(Task.id.desc()).limit(20)
    ).all()
    history = db.session.scalars(
        db.select(History).filter_by(object_type="computer", object_id=computer.id)
        .order_by(History.id.desc()).limit(20)
    ).all()
    return render_template("computers/form.html", form=form, computer=computer, tasks=tasks,
                           active=active_task_for(computer), history=history)


@bp.post("/<int:computer_id>/delete")
def delete(computer_id: int):
    """Delete a computer and its tasks."""
    computer = computer_or_404(computer_id)
    if active_task_for(computer) is not None:
        flash(f"{computer.name} has an active task: cancel it first.", "error")
        return redirect(url_for("computers.edit", computer_id=computer.id), 303)
    page = confirmation_page(f"Delete computer {computer.name}?",
                             f"Computer {computer.name} is deleted with its tasks and history.",
                             back=url_for("computers.edit", computer_id=computer.id))
    if page is not None:
        return page
    record_history("computer", computer.id, "delete", computer.to_dict())
    db.session.delete(computer)
    db.session.commit()
    flash(f"Computer {computer.name} deleted.", "success")
    return redirect(url_for("computers.index"), 303)


@bp.post("/<int:computer_id>/<any(deploy, upload):kind>")
def start_task(computer_id: int, kind: str):
    """Create a deploy or upload web task for the computer's assigned image and profile."""
    computer = computer_or_404(computer_id)
    back = url_for("computers.edit", computer_id=computer_id)
    try:
        image, profile = check_task_allowed(kind, computer)
        page = _start_confirmation(kind, computer, image, profile, back)
        if page is not None:
            return page
        task, _token = create_task(kind, computer)
    except TaskError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back, 303)
    db.session.commit()
    flash(f"{kind.capitalize()} task {task.id} created for {computer.name}: "
          "PXE boot it (or run castor-client task on it).", "success")
    return redirect(url_for("tasks.index"), 303)


def _start_confirmation(kind: str, computer: Computer, image: Image, profile: ImageProfile,
                        back: str) -> str | None:
    """Return the page asking to start a deploy (disks overwritten) or an upload (image files)."""
    if kind == "deploy":
        question = f"Deploy {image.name} to {computer.name}?"
        consequence = (f"The next time {computer.name} boots from the network, its disks are "
                       f"overwritten with image {image.name} (profile {profile.name}).")
    else:
        question = f"Upload from {computer.name} into image {image.name}?"
        consequence = (f"The next time {computer.name} boots from the network, its disks are "
                       f"read into image {image.name} (profile {profile.name}), replacing "
                       "the image's files.")
    return confirmation_page(question, consequence, back=back, button=kind.capitalize())
