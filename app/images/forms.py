"""Forms of the image pages; validation comes from app.images.rules."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from app.images import rules, service
from app.models import Image


def _raise(problem: str | None) -> None:
    """Turn a rule's problem into a form error."""
    if problem:
        raise ValidationError(problem)


class NewImageForm(FlaskForm):
    """Every field of the seed's New Image page."""

    name = StringField("Image Name")
    environment = SelectField(
        "Imaging Client Environment",
        choices=[SelectChoice("winpe", rules.ENVIRONMENT_LABELS["winpe"]),
                 SelectChoice("linux", rules.ENVIRONMENT_LABELS["linux"])],
        default="winpe",
    )
    image_type = SelectField(
        "Image Type", default="file",
        choices=[SelectChoice(value, label) for value, label in rules.TYPE_LABELS.items()],
    )
    description = TextAreaField("Image Description")
    protected = BooleanField("Protected", default=False)
    on_demand = BooleanField("Available On Demand", default=True)

    def validate_name(self, field: StringField) -> None:
        """Check the characters and that no other image has the name (any case)."""
        _raise(rules.image_name_problem(field.data))
        if service.name_taken(field.data):
            raise ValidationError(f"An image named {field.data} already exists.")

    def validate_image_type(self, field: SelectField) -> None:
        """Check the type fits the chosen environment (Both only for WinPE)."""
        _raise(rules.type_problem(self.environment.data, field.data))

    def validate_description(self, field: TextAreaField) -> None:
        """Check the description's length."""
        _raise(rules.description_problem(field.data))


class GeneralForm(FlaskForm):
    """The General tab: environment and type are shown read-only and must not change."""

    name = StringField("Image Name")
    environment = StringField("Imaging Client Environment")
    image_type = StringField("Image Type")
    description = TextAreaField("Image Description")
    protected = BooleanField("Protected")
    on_demand = BooleanField("Available On Demand")
    enabled = BooleanField("Enabled")

    def __init__(self, image: Image, *args, **kwargs):
        super().__init__(*args, obj=image, **kwargs)
        self.image = image

    def validate_name(self, field: StringField) -> None:
        """Check the characters and that no other image has the name (any case)."""
        _raise(rules.image_name_problem(field.data))
        if service.name_taken(field.data, exclude_id=self.image.id):
            raise ValidationError(f"An image named {field.data} already exists.")

    def validate_environment(self, field: StringField) -> None:
        """Refuse a tampered environment: it is fixed once the image exists."""
        if field.data and field.data != self.image.environment:
            raise ValidationError("The environment can't be changed after the image is created.")

    def validate_image_type(self, field: StringField) -> None:
        """Refuse a tampered type: it is fixed once the image exists."""
        if field.data and field.data != self.image.image_type:
            raise ValidationError("The image type can't be changed after the image is created.")

    def validate_description(self, field: TextAreaField) -> None:
        """Check the description's length."""
        _raise(rules.description_problem(field.data))

    def changes(self) -> dict:
        """Return the validated values as changes for service.update_image."""
        return {
            "name": self.name.data,
            "description": self.description.data or "",
            "protected": self.protected.data,
            "on_demand": self.on_demand.data,
            "enabled": self.enabled.data,
        }


class ConfirmForm(FlaskForm):
    """A form with only the CSRF token, for buttons that post (delete, categories)."""
