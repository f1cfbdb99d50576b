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
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from markupsafe import escape
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from app import roles
from app.extensions import db
from app.models.base import utcnow
from app.models.users import ApiToken, User, hash_token

bp = Blueprint("auth", __name__)

# Blueprints may declare more public endpoints here; everything else follows app.roles.POLICY.
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
    """Refuse the view to signed-in users who are not admins (the gate checks it too)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None or not user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def _refuse(status: int, message: str):
    """Answer a refused request: JSON under /api, the login page or a 403 elsewhere."""
    if request.path.startswith("/api/"):
        return jsonify({"error": message}), status
    if status == 401:
        query = request.query_string.decode("latin-1")
        back = request.path + (f"?{query}" if query else "")
        return redirect(url_for("auth.login", next=back))
    return f"<!doctype html><title>Forbidden</title><p>{escape(message)}</p>", 403


def _check_role():
    """Apply the route's role decision (app.roles.POLICY) to the request's user."""
    if request.endpoint is None:
        return None  # no route: 404/405 follow
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None  # declared public by its blueprint
    level = roles.level_for(request.endpoint, request.method)
    if level is None:
        return _refuse(403, f"no access decision for {request.endpoint}")
    if level in ("public", "peer"):
        return None
    user = g.user
    if level == "client" and user is None:
        return None  # a task token: the client API checks it and its scope
    if user is None:
        return _refuse(401, "a valid API token is required (Authorization: Bearer ...)")
    if not roles.has_role(user, roles.LEVEL_ROLE[level]):
        return _refuse(403, f"the {user.role} role does not allow this")
    return None


def init_app(app: Flask) -> None:
    """Put every route behind its role decision; API paths take a bearer token."""
    roles.init_app(app)

    @app.before_request
    def _gate():
        g.user = None
        if request.path.startswith("/api/"):
            g.user = user_from_bearer()
        else:
            user_id = session.get("user_id")
            if user_id is not None:
                g.user = db.session.get(User, user_id)
        return _check_role()

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
