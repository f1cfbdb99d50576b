"""Forms of the multicast pages; each owns its validation."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from app.extensions import db
from app.models import ComputerGroup, ComServer, Image, ImageProfile, MulticastSession


class SessionForm(FlaskForm):
    """A new multicast session: what to send, to how many clients, and the sender's limits."""

    name = StringField("Session Name", validators=[DataRequired(), Length(max=64)])
    profile = SelectField("Image Profile", coerce=int, validators=[InputRequired()])
    group = SelectField("Computer Group", coerce=int, default=0)
    expected_clients = IntegerField(
        "Expected Clients", validators=[Optional(), NumberRange(min=1, max=1000)],
        description="Sending starts when this many clients joined (default: the group's size).")
    com_server = SelectField("Com Server", coerce=int, default=0)
    max_wait_seconds = IntegerField(
        "Max Wait (s)", default=120, validators=[InputRequired(), NumberRange(min=1)],
        description="Start anyway this long after the first client connected.")
    partition_timeout_seconds = IntegerField(
        "Per-Partition Timeout (s)", default=3600, validators=[InputRequired(),
                                                              NumberRange(min=10)])
    retries_until_drop = IntegerField(
        "Retries Until Drop", default=30, validators=[InputRequired(), NumberRange(min=1)],
        description="A receiver that stops answering is dropped after this many retries.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        rows = db.session.execute(
            db.select(ImageProfile.id, Image.name, ImageProfile.name)
            .join(Image, Image.id == ImageProfile.image_id)
            .where(Image.enabled.is_(True)).order_by(Image.name, ImageProfile.name)).all()
        self.profile.choices = [(pid, f"{image} / {profile}") for pid, image, profile in rows]
        groups = db.session.scalars(db.select(ComputerGroup).order_by(ComputerGroup.name))
        self.group.choices = [(0, "(none: on demand)")] + [(g.id, g.name) for g in groups]
        servers = db.session.scalars(db.select(ComServer).where(
            ComServer.role_multicast.is_(True)).order_by(ComServer.display_name))
        self.com_server.choices = [(0, "(this server)")] + [
            (s.id, s.display_name) for s in servers]

    def validate_name(self, field: StringField) -> None:
        """Session names are unique: clients join by name."""
        if db.session.scalar(db.select(MulticastSession).filter_by(name=field.data.strip())):
            raise ValidationError("A session with this name exists already.")

    def validate(self, extra_validators=None) -> bool:
        """Check the fields, then that a client count or a group is given."""
        valid = super().validate(extra_validators)
        if self.expected_clients.data is None and not self.group.data:
            self.expected_clients.errors = [
                *self.expected_clients.errors,
                "Give the number of clients, or pick a computer group."]
            return False
        return valid


class ConfirmForm(FlaskForm):
    """An empty form: only the CSRF token, for buttons that POST."""
