"""Multicast pages: the session list with live progress, the new-session form, cancel."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from app import htmx
from app.auth import current_username
from app.confirm import confirmation_page
from app.extensions import db
from app.models import ComputerGroup, ComServer, ImageProfile, MulticastSession
from app.multicast.forms import ConfirmForm, SessionForm
from app.multicast.outcomes import session_summary
from app.multicast.sessions import SessionError
from app.multicast.supervisor import cancel_session, start_session

bp = Blueprint("multicast", __name__, url_prefix="/multicast")


def session_or_404(session_id: int) -> MulticastSession:
    """Return the session with this id, or abort with 404."""
    session = db.session.get(MulticastSession, session_id)
    if session is None:
        abort(404, description=f"No multicast session with id {session_id}.")
    return session


@bp.get("")
def index():
    """List sessions with joined/expected and per-client progress; polls while any runs."""
    sessions = db.session.scalars(
        db.select(MulticastSession).order_by(MulticastSession.id.desc()).limit(50)).all()
    live = any(s.live for s in sessions)
    summaries = {s.id: session_summary(s) for s in sessions}
    context = {"sessions": sessions, "live": live, "form": ConfirmForm(), "summaries": summaries}
    if htmx.is_partial():
        body = render_template("multicast/_sessions.html", **context)
        return body, (200 if live else htmx.STOP_POLLING)
    return render_template("multicast/index.html", **context)


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Create a session for an image profile and start sending."""
    form = SessionForm()
    if form.validate_on_submit():
        profile = db.session.get(ImageProfile, form.profile.data)
        group = db.session.get(ComputerGroup, form.group.data) if form.group.data else None
        server = db.session.get(ComServer, form.com_server.data) if form.com_server.data else None
        try:
            session = start_session(
                name=form.name.data, image=profile.image, profile=profile,
                expected_clients=form.expected_clients.data, server=server, group=group,
                max_wait_seconds=form.max_wait_seconds.data,
                partition_timeout_seconds=form.partition_timeout_seconds.data,
                retries_until_drop=form.retries_until_drop.data, username=current_username())
        except SessionError as exc:
            db.session.rollback()
            form.name.errors = [*form.name.errors, str(exc)]
        else:
            flash(f"Session {session.name} waits for {session.expected_clients} clients.",
                  "success")
            return redirect(url_for("multicast.index"), 303)
    return render_template("multicast/new.html", form=form), (422 if form.errors else 200)


@bp.post("/<int:session_id>/cancel")
def cancel(session_id: int):
    """Cancel a live session and kill every sender it runs."""
    session = session_or_404(session_id)
    if ConfirmForm().validate_on_submit():
        if session.live:
            page = confirmation_page(
                f"Cancel session {session.name}?",
                f"Every sender of session {session.name} stops and the clients' disks are left "
                "half written.", back=url_for("multicast.index"), button="Cancel session",
                back_label="Keep it running")
            if page is not None:
                return page
            cancel_session(session)
            flash(f"Session {session.name} cancelled.", "success")
        else:
            flash(f"Session {session.name} is already {session.state}.", "error")
    return redirect(url_for("multicast.index"), 303)
