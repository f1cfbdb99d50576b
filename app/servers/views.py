"""Com servers and the global replication settings."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from app.auth import admin_required
from app.confirm import confirmation_page
from app.extensions import db
from app.models import ComServer, ReplicationStatus, Setting
from app.models.images import image_replication_servers
from app.replication import identity
from app.replication.forms import checked_ids
from app.replication.remote import Peer, RemoteError
from app.replication.schedule import schedule_sweep
from app.servers.forms import ConfirmForm, ServerForm, SettingsForm, new_secret

bp = Blueprint("servers", __name__)


def server_or_404(server_id: int) -> ComServer:
    """Return the com server with this id, or abort with 404."""
    server = db.session.get(ComServer, server_id)
    if server is None:
        abort(404, description=f"No com server with id {server_id}.")
    return server


@bp.get("/servers")
def index():
    """List the com servers."""
    servers = db.session.scalars(db.select(ComServer).order_by(ComServer.display_name)).all()
    return render_template("servers/index.html", servers=servers, form=ConfirmForm())


@bp.route("/servers/new", methods=["GET", "POST"])
@admin_required
def new():
    """Add a com server (a generated secret is offered to copy to the other side)."""
    form = ServerForm()
    if request.method == "GET":
        form.shared_secret.data = new_secret()
    if form.validate_on_submit():
        server = ComServer()
        form.apply(server)
        db.session.add(server)
        db.session.commit()
        flash(f"Server {server.display_name} added.", "success")
        return redirect(url_for("servers.index"), 303)
    return render_template("servers/form.html", form=form, server=None), \
        (422 if form.errors else 200)


@bp.route("/servers/<int:server_id>", methods=["GET", "POST"])
@admin_required
def edit(server_id: int):
    """Change a com server."""
    server = server_or_404(server_id)
    form = ServerForm(obj=server, server=server)
    if request.method == "GET":
        form.shared_secret.data = ""
    if form.validate_on_submit():
        form.apply(server)
        db.session.commit()
        flash(f"Server {server.display_name} updated.", "success")
        return redirect(url_for("servers.index"), 303)
    return render_template("servers/form.html", form=form, server=server,
                           confirm=ConfirmForm()), (422 if form.errors else 200)


@bp.post("/servers/<int:server_id>/delete")
@admin_required
def delete(server_id: int):
    """Remove a com server and its replication state."""
    server = server_or_404(server_id)
    if ConfirmForm().validate_on_submit():
        page = confirmation_page(f"Remove server {server.display_name}?",
                                 f"Server {server.display_name} is removed with its replication "
                                 "status; its files stay where they are.",
                                 back=url_for("servers.index"), button="Remove")
        if page is not None:
            return page
        # SQLite does not enforce ON DELETE CASCADE unless asked to: clear the links here.
        db.session.execute(db.delete(ReplicationStatus).filter_by(server_id=server.id))
        db.session.execute(image_replication_servers.delete()
                           .where(image_replication_servers.c.server_id == server.id))
        db.session.delete(server)
        db.session.commit()
        flash(f"Server {server.display_name} removed.", "success")
    return redirect(url_for("servers.index"), 303)


@bp.post("/servers/<int:server_id>/test")
@admin_required
def test_connection(server_id: int):
    """Send a signed ping to check a server's URL and shared secret."""
    server = server_or_404(server_id)
    if ConfirmForm().validate_on_submit():
        try:
            answer = Peer(server.url, server.shared_secret, identity.local_server_name(),
                          timeout=10).ping()
            flash(f"{server.display_name} answered as {answer.get('server')!r} and accepted "
                  "our signature.", "success")
        except RemoteError as exc:
            flash(f"{server.display_name}: {exc}", "error")
    return redirect(url_for("servers.edit", server_id=server.id), 303)


@bp.route("/servers/settings", methods=["GET", "POST"])
@admin_required
def settings():
    """Global replication settings: default mode and servers, and when replication runs."""
    form = SettingsForm()
    peers = identity.peer_servers()
    if request.method == "GET":
        form.default_mode.data = identity.default_mode()
        form.after_upload.data = identity.after_upload()
        form.schedule_minutes.data = identity.schedule_minutes()
    if form.validate_on_submit():
        Setting.put(identity.MODE_SETTING, form.default_mode.data)
        Setting.put(identity.SERVERS_SETTING, ",".join(map(str, checked_ids("default_servers"))))
        Setting.put(identity.AFTER_UPLOAD_SETTING, "1" if form.after_upload.data else "0")
        Setting.put(identity.SCHEDULE_SETTING, str(form.schedule_minutes.data))
        db.session.commit()
        schedule_sweep()
        flash("Replication settings saved.", "success")
        return redirect(url_for("servers.settings"), 303)
    return render_template("servers/settings.html", form=form, peers=peers,
                           chosen=set(identity.default_server_ids())), \
        (422 if form.errors else 200)

