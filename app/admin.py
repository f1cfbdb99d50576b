"""Admin: users, their sign-in sessions, API tokens and changing one's own password."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Regexp, ValidationError

from app import sessions
from app.auth import admin_required, current_user
from app.confirm import confirmation_page
from app.extensions import db
from app.images.forms import ConfirmForm
from app.models import ApiToken, User, WebSession, record_history
from app.models.users import ROLES

bp = Blueprint("admin", __name__, url_prefix="/admin")

PASSWORD_MIN = 8


class UserForm(FlaskForm):
    """A new account."""

    username = StringField("Username", validators=[
        DataRequired(), Length(max=64),
        Regexp(r"^[A-Za-z0-9_.@-]+$", message="Use letters, digits, dot, dash, @ and underscore."),
    ])
    password = PasswordField("Password", validators=[DataRequired(), Length(
        min=PASSWORD_MIN, max=256, message=f"Use at least {PASSWORD_MIN} characters.")])
    confirm = PasswordField("Repeat password", validators=[
        EqualTo("password", message="The passwords differ.")])
    role = SelectField("Role", choices=[SelectChoice(r, r) for r in ROLES], default="operator")

    def validate_username(self, field: StringField) -> None:
        """Refuse a name already in use."""
        taken = db.session.scalar(db.select(User.id).filter_by(username=field.data))
        if taken is not None:
            raise ValidationError(f"A user named {field.data} already exists.")


class PasswordForm(FlaskForm):
    """Change one's own password."""

    current = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField("New password", validators=[DataRequired(), Length(
        min=PASSWORD_MIN, max=256, message=f"Use at least {PASSWORD_MIN} characters.")])
    confirm = PasswordField("Repeat new password", validators=[
        EqualTo("password", message="The passwords differ.")])

    def validate_current(self, field: PasswordField) -> None:
        """Ask for the current password so a left-open session can't lock the owner out."""
        if not current_user().check_password(field.data or ""):
            raise ValidationError("That is not your current password.")


class RoleForm(FlaskForm):
    """Change a user's role."""

    role = SelectField("Role", choices=[SelectChoice(r, r) for r in ROLES])


class TokenForm(FlaskForm):
    """A new API token's name."""

    name = StringField("Token name", validators=[DataRequired(), Length(max=64)])


def _render(user_form: UserForm | None = None, token_form: TokenForm | None = None,
            new_token: str | None = None, status: int = 200):
    """Render the admin page with its forms."""
    users = db.session.scalars(db.select(User).order_by(User.username)).all()
    tokens = db.session.scalars(db.select(ApiToken).order_by(ApiToken.created_at.desc())).all()
    live = sessions.live_sessions()
    signed_in = {}
    for row in live:
        signed_in[row.user_id] = signed_in.get(row.user_id, 0) + 1
    current = sessions.current()
    return render_template(
        "admin/index.html", users=users, tokens=tokens, user_form=user_form or UserForm(),
        token_form=token_form or TokenForm(), new_token=new_token, confirm_form=ConfirmForm(),
        role_form=RoleForm(), web_sessions=live, signed_in=signed_in,
        current_session_id=current.id if current else None,
    ), status


@bp.get("/")
@admin_required
def index():
    """List users and API tokens."""
    return _render()


@bp.post("/users")
@admin_required
def create_user():
    """Create a user account."""
    form = UserForm()
    if not form.validate_on_submit():
        return _render(user_form=form, status=400)
    user = User(username=form.username.data, role=form.role.data)
    user.set_password(form.password.data)
    db.session.add(user)
    db.session.flush()
    record_history("user", user.id, "create", {"username": user.username,
                                               "role": user.role})
    db.session.commit()
    flash(f"User {user.username} created.", "success")
    return redirect(url_for("admin.index"), 303)


@bp.post("/users/<int:user_id>/delete")
@admin_required
def delete_user(user_id: int):
    """Delete a user; never yourself, never the last administrator."""
    user = db.session.get(User, user_id) or abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if user.id == current_user().id:
        flash("You can't delete your own account.", "error")
        return redirect(url_for("admin.index"), 303)
    admins = db.session.scalar(db.select(db.func.count()).where(User.role == "admin"))
    if user.is_admin and admins <= 1:
        flash("The last administrator can't be deleted.", "error")
        return redirect(url_for("admin.index"), 303)
    page = confirmation_page(f"Delete user {user.username}?",
                             f"User {user.username} is deleted and signed out everywhere; their "
                             "API tokens are revoked.", back=url_for("admin.index"))
    if page is not None:
        return page
    record_history("user", user.id, "delete", {"username": user.username})
    sessions.revoke(user.id)
    db.session.delete(user)
    db.session.commit()
    flash(f"User {user.username} deleted, with their API tokens.", "success")
    return redirect(url_for("admin.index"), 303)


@bp.post("/users/<int:user_id>/role")
@admin_required
def set_role(user_id: int):
    """Change a user's role; the last administrator keeps theirs."""
    user = db.session.get(User, user_id) or abort(404)
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)
    admins = db.session.scalar(db.select(db.func.count()).where(User.role == "admin"))
    if user.is_admin and form.role.data != "admin" and admins <= 1:
        flash("The last administrator must stay one.", "error")
        return redirect(url_for("admin.index"), 303)
    user.role = form.role.data
    record_history("user", user.id, "role", {"username": user.username, "role": user.role})
    db.session.commit()
    flash(f"{user.username} is now {user.role}.", "success")
    return redirect(url_for("admin.index"), 303)


@bp.post("/users/<int:user_id>/sessions")
@admin_required
def revoke_sessions(user_id: int):
    """Sign a user out: one session (form field `session_id`) or every one of theirs."""
    user = db.session.get(User, user_id) or abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    session_id = request.form.get("session_id", "")
    if session_id and not session_id.isdigit():
        abort(400)
    if session_id and db.session.scalar(db.select(WebSession.id).filter_by(
            id=int(session_id), user_id=user.id)) is None:
        abort(404)
    page = confirmation_page(
        f"Sign this session of {user.username} out?" if session_id
        else f"Sign {user.username} out everywhere?",
        f"{'That browser session' if session_id else f'Every browser session of {user.username}'}"
        " ends; signing in again is needed.", back=url_for("admin.index"), button="Sign out")
    if page is not None:
        return page
    ended = sessions.revoke(user.id, int(session_id) if session_id else None)
    record_history("user", user.id, "sessions_revoked", {"username": user.username,
                                                         "sessions_ended": ended})
    db.session.commit()
    flash(f"{user.username}: {ended} session{'' if ended == 1 else 's'} signed out.", "success")
    return redirect(url_for("admin.index"), 303)


@bp.route("/password", methods=["GET", "POST"])
def password():
    """Change the signed-in user's own password (any user, not only admins)."""
    form = PasswordForm()
    if form.validate_on_submit():
        user = current_user()
        user.set_password(form.password.data)
        here = sessions.current()
        # Whoever signed in with the old password is signed out everywhere but here.
        ended = sessions.revoke(user.id, keep=here.id if here else None)
        record_history("user", user.id, "password", {"username": user.username,
                                                     "sessions_ended": ended})
        db.session.commit()
        flash("Password changed." + (f" {ended} other session{'s' if ended > 1 else ''} "
                                     "signed out." if ended else ""), "success")
        return redirect(url_for("images.search"), 303)
    return render_template("admin/password.html", form=form), 400 if form.errors else 200


@bp.post("/tokens")
@admin_required
def create_token():
    """Issue an API token for the signed-in admin and show it once."""
    form = TokenForm()
    if not form.validate_on_submit():
        return _render(token_form=form, status=400)
    row, clear = ApiToken.issue(current_user(), form.name.data)
    db.session.add(row)
    db.session.flush()
    record_history("api_token", row.id, "create", {"name": row.name})
    db.session.commit()
    # Rendered, not redirected: the clear token must never pass through the session cookie.
    return _render(new_token=clear, status=201)


@bp.post("/tokens/<int:token_id>/delete")
@admin_required
def revoke_token(token_id: int):
    """Revoke an API token."""
    token = db.session.get(ApiToken, token_id) or abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    page = confirmation_page(f"Revoke token {token.name}?",
                             f"API token {token.name} stops working at once; scripts using it "
                             "are refused.", back=url_for("admin.index"), button="Revoke")
    if page is not None:
        return page
    record_history("api_token", token.id, "revoke", {"name": token.name})
    db.session.delete(token)
    db.session.commit()
    flash(f"Token {token.name} revoked.", "success")
    return redirect(url_for("admin.index"), 303)
