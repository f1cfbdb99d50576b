"""Forms of the computer and group pages; validation comes from app.computers.rules."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import ValidationError

from app.computers import rules
from app.extensions import db
from app.models import Computer, ComputerGroup, Image, ImageProfile


def _raise(problem: str | None) -> None:
    """Turn a rule's problem into a form error."""
    if problem:
        raise ValidationError(problem)


def _optional_int(value: str | int | None) -> int | None:
    """Coerce a select's value to an int, with '' meaning none."""
    return int(value) if value not in (None, "", "None") else None


class ComputerForm(FlaskForm):
    """Name, MAC, client id, description and the image + profile assignment."""

    name = StringField("Name")
    mac = StringField("MAC address")
    client_id = StringField("Client id")
    description = TextAreaField("Description")
    image_id = SelectField("Image", coerce=_optional_int, validate_choice=False)
    profile_id = SelectField("Profile", coerce=_optional_int, validate_choice=False)

    def __init__(self, computer: Computer | None = None, *args, **kwargs):
        super().__init__(*args, obj=computer, **kwargs)
        self.computer = computer
        images = db.session.scalars(db.select(Image).order_by(Image.name)).all()
        self.image_id.choices = [(None, "(none)")] + [(i.id, i.name) for i in images]
        profiles = db.session.scalars(
            db.select(ImageProfile).join(Image).order_by(Image.name, ImageProfile.name)
        ).all()
        self.profile_id.choices = [(None, "(image's first profile)")] + [
            (p.id, f"{p.image.name} / {p.name}") for p in profiles
        ]

    def validate_name(self, field: StringField) -> None:
        """Check the characters and that no other computer has the name."""
        _raise(rules.computer_name_problem(field.data))
        other = db.session.scalar(db.select(Computer).filter_by(name=field.data))
        if other is not None and other is not self.computer:
            raise ValidationError(f"A computer named {field.data} already exists.")

    def validate_mac(self, field: StringField) -> None:
        """Check the MAC's form (stored normalised) and that no other computer has it."""
        _raise(rules.mac_problem(field.data))
        if not field.data:
            return
        field.data = rules.normalize_mac(field.data)
        other = db.session.scalar(db.select(Computer).filter_by(mac=field.data))
        if other is not None and other is not self.computer:
            raise ValidationError(f"{other.name} already has the MAC address {field.data}.")

    def validate_client_id(self, field: StringField) -> None:
        """Keep the client id to its column's length."""
        field.data = (field.data or "").strip()
        if len(field.data) > 128:
            raise ValidationError("The client id is at most 128 characters.")

    def validate_image_id(self, field: SelectField) -> None:
        """Check that the chosen image exists."""
        if field.data is not None and db.session.get(Image, field.data) is None:
            raise ValidationError("No such image.")

    def validate_profile_id(self, field: SelectField) -> None:
        """Check that the chosen profile exists and belongs to the chosen image."""
        if field.data is None:
            return
        profile = db.session.get(ImageProfile, field.data)
        if profile is None:
            raise ValidationError("No such profile.")
        if profile.image_id != self.image_id.data:
            raise ValidationError("The profile must belong to the chosen image.")


class GroupForm(FlaskForm):
    """A group's name, description and members."""

    name = StringField("Name")
    description = TextAreaField("Description")
    member_ids = SelectMultipleField("Members", coerce=int, validate_choice=False)

    def __init__(self, group: ComputerGroup | None = None, *args, **kwargs):
        super().__init__(*args, obj=group, **kwargs)
        self.group = group
        computers = db.session.scalars(db.select(Computer).order_by(Computer.name)).all()
        self.member_ids.choices = [(c.id, c.name) for c in computers]
        if group is not None and not self.is_submitted():
            self.member_ids.data = [c.id for c in group.members]

    def validate_name(self, field: StringField) -> None:
        """Check the characters and that no other group has the name."""
        _raise(rules.computer_name_problem(field.data))
        other = db.session.scalar(db.select(ComputerGroup).filter_by(name=field.data))
        if other is not None and other is not self.group:
            raise ValidationError(f"A group named {field.data} already exists.")

    def selected_computers(self) -> list[Computer]:
        """Return the computers ticked as members."""
        ids = self.member_ids.data or []
        if not ids:
            return []
        return list(db.session.scalars(
            db.select(Computer).filter(Computer.id.in_(ids)).order_by(Computer.name)
        ))
