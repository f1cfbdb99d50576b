"""Sign-in, sign-out, the login gate on every page and bearer tokens for the API."""

from __future__ import annotations

from datetime import timedelta
from functools import wraps

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from app.extensions import db
from app.models.base import utcnow
from app.models.users import ApiToken, User, hash_token

bp = Blueprint("auth", __name__)

PUBLIC_ENDPOINTS = {"auth.login", "static", "health"}


class LoginForm(FlaskForm):
    """Username and password."""

    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


def current_user() -> User | None:
    """Return the signed-in user (session or bearer token) for this request."""
    return g.get("user")


def current_username() -> str:
    """Return the acting user's name, or 'system' outside a request."""
    try:
        user = g.get("user")
    except RuntimeError:
        return "system"
    return user.username if user else "system"


def user_from_bearer() -> User | None:
    """Resolve an `Authorization: Bearer` API token to its user."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    token = db.session.scalar(
        db.select(ApiToken).filter_by(token_hash=hash_token(header[7:].strip()))
    )
    now = utcnow()
    if token is None or token.expired(now):
        return None
    # One write a minute at most: a busy client must not write a row per request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
        db.session.commit()
    return token.user


def admin_required(view):
    """Refuse the view to signed-in users who are not admins."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None or not user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def init_app(app: Flask) -> None:
    """Put every page behind login; API paths take a bearer token instead."""

    @app.before_request
    def _gate():
        g.user = None
        if request.path.startswith("/api/"):
            g.user = user_from_bearer()
            # API blueprints decide themselves (task tokens, signed server calls).
            return None
        user_id = session.get("user_id")
        if user_id is not None:
            g.user = db.session.get(User, user_id)
        if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
            if request.endpoint is None:
                return None
            return redirect(url_for("auth.login", next=request.full_path))
        return None

    @app.context_processor
    def _inject_user():
        return {"current_user": g.get("user")}


def _safe_next(target: str | None) -> str:
    """Return a local redirect target, never another host."""
    # Browsers read "/\\host" as "//host": a backslash must not sneak another host in.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("images.search")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the sign-in form and sign the user in."""
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.scalar(db.select(User).filter_by(username=form.username.data))
        now = utcnow()
        if user is not None and user.locked_until and user.locked_until > now:
            flash("Too many failed sign-ins: try again in a few minutes.", "error")
            return render_template("auth/login.html", form=form), 429
        if user is None or not user.check_password(form.password.data):
            if user is not None:
                user.failed_logins += 1
                if user.failed_logins >= current_app.config["MAX_LOGIN_FAILURES"]:
                    lockout = current_app.config["LOGIN_LOCKOUT_SECONDS"]
                    user.locked_until = now + timedelta(seconds=lockout)
                    user.failed_logins = 0
                db.session.commit()
            flash("Wrong username or password.", "error")
            return render_template("auth/login.html", form=form), 401
        user.failed_logins = 0
        user.locked_until = None
        db.session.commit()
        session.clear()
        session["user_id"] = user.id
        session.permanent = True
        return redirect(_safe_next(request.args.get("next")), 303)
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
def logout():
    """Sign the user out."""
    session.clear()
    return redirect(url_for("auth.login"), 303)
