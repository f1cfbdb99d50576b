"""The image's Replication tab (mode, live per-server status, Replicate now) and Retry of a
failed delete or rename listed on the dashboard."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from app import htmx
from app.errors import NotFound
from app.extensions import db
from app.images.forms import ConfirmForm
from app.images.loaders import image_or_404
from app.jobs import never_queued
from app.models import ComServer, Image, Job, ReplicationStatus
from app.replication import identity, queue_replication
from app.replication.forms import MODE_LABELS, ImageReplicationForm, checked_ids
from app.replication.propagation import RetryRefused, retry

bp = Blueprint("replication", __name__)


def status_rows(image: Image) -> list[dict]:
    """Return one row per target (and per server with a status) for the tab."""
    statuses = {row.server_id: row for row in db.session.scalars(
        db.select(ReplicationStatus).filter_by(image_id=image.id))}
    targets = {server.id for server in identity.targets_for(image)}
    servers = db.session.scalars(db.select(ComServer).filter_by(is_local=False)
                                 .order_by(ComServer.display_name)).all()
    rows = []
    for server in servers:
        status = statuses.get(server.id)
        if server.id not in targets and status is None:
            continue
        rows.append({"server": server, "status": status, "target": server.id in targets})
    return rows


def replication_running(image: Image) -> bool:
    """Tell whether a replication job of this image is queued or running."""
    return db.session.scalar(
        db.select(Job.id).filter_by(kind="replication", object_type="image",
                                    object_id=image.id)
        .filter(Job.status.in_(("queued", "running"))).limit(1)
    ) is not None


@bp.route("/images/<int:image_id>/replication", methods=["GET", "POST"])
def image_replication(image_id: int):
    """Show and set an image's replication mode and its status on each server."""
    image = image_or_404(image_id)
    form = ImageReplicationForm()
    peers = identity.peer_servers()
    if request.method == "GET":
        form.mode.data = image.replication_mode
    chosen = set(checked_ids("servers")) & {server.id for server in peers}
    if form.validate_on_submit() and form.mode.data == "selective" and not chosen:
        form.mode.errors = [*form.mode.errors, "Selective replication needs at least one "
                            "server ticked below; choose None to keep the image here only."]
    elif form.validate_on_submit():
        image.replication_mode = form.mode.data
        image.replication_servers = [server for server in peers if server.id in chosen]
        db.session.commit()
        flash("Replication mode updated.", "success")
        return redirect(url_for("replication.image_replication", image_id=image.id), 303)
    polling = replication_running(image)
    context = {"image": image, "rows": status_rows(image), "polling": polling}
    if htmx.is_partial():
        body = render_template("replication/_status.html", **context)
        return body, (200 if polling else htmx.STOP_POLLING)
    return render_template(
        "replication/image_tab.html", form=form, peers=peers, confirm=ConfirmForm(),
        active="replication", mode_labels=MODE_LABELS,
        effective=identity.effective_mode(image),
        chosen=chosen if form.errors else {server.id for server in image.replication_servers},
        **context,
    ), (422 if form.errors else 200)


@bp.post("/images/<int:image_id>/replication/run")
def replicate_now(image_id: int):
    """Queue the replication of an image to all its targets now."""
    image = image_or_404(image_id)
    if image.last_upload_at is None:
        flash(f"{image.name} has nothing uploaded yet: there is nothing to replicate.", "error")
    elif ConfirmForm().validate_on_submit():
        jobs = queue_replication(image, force=True)
        if jobs:
            flash(f"Replication queued to {len(jobs)} server(s).", "success")
        else:
            flash("This image has no target server: check its mode and the servers.", "error")
    return redirect(url_for("replication.image_replication", image_id=image.id), 303)


@bp.post("/replication/jobs/<job_id>/retry")
def retry_propagation(job_id: str):
    """Queue a failed delete or rename again for its server, unless it no longer makes sense."""
    if ConfirmForm().validate_on_submit():
        try:
            row = retry(job_id)
        except NotFound as exc:
            abort(404, description=str(exc))
        except RetryRefused as exc:
            abort(409, description=str(exc))
        if never_queued(row):
            flash(f"Could not queue the job to {row.message} again: {row.error}", "error")
        else:
            flash(f"Queued again: {row.message}.", "success")
    return redirect(url_for("dashboard.index"), 303)
