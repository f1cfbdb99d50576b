"""Sign-in, sign-out, the login gate on every page and bearer tokens for the API."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from markupsafe import escape
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from app import roles, sessions
from app.extensions import db
from app.login import LoginRefused, authenticate
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
    sessions.init_app(app)

    @app.before_request
    def _gate():
        g.user = None
        if request.path.startswith("/api/"):
            g.user = user_from_bearer()
        else:
            g.user = sessions.load()
        return _check_role()

    @app.context_processor
    def _inject_user():
        return {"current_user": g.get("user")}


def _safe_next(target: str | None) -> str:
    """Return a same-site relative path to go on to, else the image list.

    Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so a
    slash, a tab and "/evil.com" mean "//evil.com", and so does "/" + backslash + "evil.com":
    anything with a control character, whitespace or a backslash is refused, as is anything
    naming a scheme or a host.
    """
    fallback = url_for("images.search")
    if not target or len(target) > 2048:
        return fallback
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target) or "\\" in target:
        return fallback
    if not target.startswith("/") or target.startswith("//"):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the sign-in form and sign the user in."""
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = authenticate(form.username.data, form.password.data,
                                request.remote_addr or "")
        except LoginRefused as exc:
            if exc.status == 429:
                flash(f"{str(exc).capitalize()}.", "error")
            else:
                flash("Wrong username or password.", "error")
            answer = render_template("auth/login.html", form=form), exc.status
            if exc.retry_after:
                return *answer, {"Retry-After": str(exc.retry_after)}
            return answer
        sessions.start(user)
        return redirect(_safe_next(request.args.get("next")), 303)
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
def logout():
    """Sign the user out: the server forgets the session, so the old cookie is worthless."""
    sessions.end()
    return redirect(url_for("auth.login"), 303)
