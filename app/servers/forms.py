"""Forms of the com server pages; each owns its validation."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from app.extensions import db
from app.models import ComServer

MIN_SECRET = 16


def new_secret() -> str:
    """Return a fresh shared secret to copy to both servers of a pair."""
    return secrets.token_urlsafe(32)


class ServerForm(FlaskForm):
    """Every field of a com server."""

    display_name = StringField("Display Name", validators=[DataRequired(), Length(max=64)])
    url = StringField("URL", validators=[DataRequired(), Length(max=256)])
    shared_secret = StringField("Shared Secret", validators=[Length(max=128)])
    role_imaging = BooleanField("Imaging server", default=True)
    role_multicast = BooleanField("Multicast server", default=True)
    role_pxe = BooleanField("PXE server", default=True)
    storage_path = StringField("Storage Path", validators=[Length(max=256)])
    max_imaging_clients = IntegerField("Max Imaging Clients", default=0,
                                       validators=[InputRequired(), NumberRange(min=0)])
    max_bandwidth_kbps = IntegerField("Max Bandwidth (kbit/s)", default=0,
                                      validators=[InputRequired(), NumberRange(min=0)])
    multicast_interface = StringField("Multicast Interface", default="eth0",
                                      validators=[Length(max=32)])
    multicast_port_start = IntegerField("Multicast Port Start", default=9000,
                                        validators=[InputRequired(),
                                                    NumberRange(min=1024, max=65534)])
    multicast_port_end = IntegerField("Multicast Port End", default=9998,
                                      validators=[InputRequired(),
                                                  NumberRange(min=1024, max=65534)])
    replicate_storage = BooleanField("Replicate Storage", default=True)
    is_local = BooleanField("This server (the one serving this page)")

    def __init__(self, *args, server: ComServer | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.server = server

    def validate_display_name(self, field: StringField) -> None:
        """Display names are unique: peers find each other's secret by it."""
        other = db.session.scalar(db.select(ComServer).filter_by(display_name=field.data))
        if other is not None and other is not self.server:
            raise ValidationError("Another server already has this name.")

    def validate_url(self, field: StringField) -> None:
        """Accept http(s)://host[:port] URLs only."""
        parts = urlsplit(field.data.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError("Use a URL like http://castor-2.example.org:5000.")

    def validate_shared_secret(self, field: StringField) -> None:
        """A peer needs a secret; leaving it blank on edit keeps the current one."""
        value = (field.data or "").strip()
        if value and len(value) < MIN_SECRET:
            raise ValidationError(f"Use at least {MIN_SECRET} characters.")
        if not value and not self.is_local.data and not (self.server and
                                                         self.server.shared_secret):
            raise ValidationError("Other servers need a shared secret (the same on both).")

    def validate_multicast_port_end(self, field: IntegerField) -> None:
        """The range must hold at least one port pair (udpcast uses port and port+1)."""
        start = self.multicast_port_start.data
        if start is not None and field.data is not None and field.data < start + 1:
            raise ValidationError("The end must be above the start.")

    def validate_is_local(self, field: BooleanField) -> None:
        """Only one row can describe this server."""
        if field.data:
            other = db.session.scalar(db.select(ComServer).filter_by(is_local=True))
            if other is not None and other is not self.server:
                raise ValidationError(f"{other.display_name} is already marked as this server.")

    def apply(self, server: ComServer) -> None:
        """Copy the form onto a server row (blank secret keeps the current one)."""
        for name in ("display_name", "url", "storage_path", "multicast_interface"):
            setattr(server, name, (getattr(self, name).data or "").strip())
        server.url = server.url.rstrip("/")
        for name in ("role_imaging", "role_multicast", "role_pxe", "max_imaging_clients",
                     "max_bandwidth_kbps", "multicast_port_start", "multicast_port_end",
                     "replicate_storage", "is_local"):
            setattr(server, name, getattr(self, name).data)
        if (self.shared_secret.data or "").strip():
            server.shared_secret = self.shared_secret.data.strip()


class SettingsForm(FlaskForm):
    """Global replication settings; the default server list comes as checkboxes."""

    default_mode = SelectField("Default Replication Mode",
                               choices=[SelectChoice("all", "All"), SelectChoice("none", "None"),
                                        SelectChoice("selective", "Selective")])
    after_upload = BooleanField("Replicate immediately after an upload")
    schedule_minutes = IntegerField("Also replicate every (minutes, 0 = never)", default=0,
                                    validators=[InputRequired(), NumberRange(min=0, max=10080)])


class ConfirmForm(FlaskForm):
    """A bare form carrying the CSRF token for action buttons."""
