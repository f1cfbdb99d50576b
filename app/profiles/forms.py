"""Forms of the profile pages; cross-field rules live in app.profiles.options."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.profiles.options import TAB_FIELDS, ProfileError, field_visible


def choices(pairs: dict[str, str]) -> list[SelectChoice]:
    """Return select choices from {value: label}."""
    return [SelectChoice(value, label) for value, label in pairs.items()]


CRITERIA_CHOICES = {"disabled": "Disabled", "equals": "Equals", "starts_with": "Starts With",
                    "ends_with": "Ends With", "contains": "Contains"}
ACTION_CHOICES = {"reboot": "Reboot", "power_off": "Power off",
                  "exit_to_shell": "Exit to shell"}
COMPRESSION_CHOICES = {"none": "None", "gzip": "gzip", "lz4": "lz4", "zstd": "zstd"}
METHOD_CHOICES = {"original": "Use Original MBR / GPT", "dynamic": "Dynamic",
                  "standard": "Standard", "custom_script": "Custom Script"}
RUN_WHEN_LABELS = {"before_imaging": "Before imaging", "before_file_copy": "Before file copy",
                   "after_file_copy": "After file copy"}


class NewProfileForm(FlaskForm):
    """Name and description of a new blank profile."""

    name = StringField("Profile Name", validators=[DataRequired(), Length(max=64)])
    description = TextAreaField("Profile Description", validators=[Length(max=2000)])


class GeneralForm(NewProfileForm):
    """General properties and model match."""

    model_match = StringField("Model Match", validators=[Length(max=128)])
    model_match_criteria = SelectField("Model Match Criteria", choices=choices(CRITERIA_CHOICES))


class PxeForm(FlaskForm):
    """Kernel, boot image and kernel arguments for PXE boots of active web tasks."""

    pxe_kernel = SelectField("Kernel", choices=[], validate_choice=False)
    pxe_boot_image = SelectField("Boot Image", choices=[], validate_choice=False)
    kernel_args = StringField("Kernel Arguments", validators=[Length(max=512)])


class TaskForm(FlaskForm):
    """Web cancel and what the client does when the task ends."""

    web_cancel = BooleanField("Enable Web Cancel")
    task_completed_action = SelectField("Task Completed Action", choices=choices(ACTION_CHOICES))


class UploadForm(FlaskForm):
    """Upload options."""

    remove_gpt_structures = BooleanField("Remove GPT Structures")
    dont_shrink_volumes = BooleanField("Don't Shrink Volumes")
    dont_shrink_lvm = BooleanField("Don't Shrink LVM Volumes")
    skip_hibernation_check = BooleanField("Skip Hibernation Check")
    skip_bitlocker_check = BooleanField("Skip Bitlocker Check")
    compression_algorithm = SelectField("Compression Algorithm",
                                        choices=choices(COMPRESSION_CHOICES))
    # The range depends on the algorithm: app.profiles.options checks it.
    compression_level = IntegerField("Compression Level", validators=[InputRequired()])
    upload_schema_only = BooleanField("Only Upload Schema")
    use_custom_upload_schema = BooleanField("Use Custom Upload Schema")


class DeployForm(FlaskForm):
    """Deploy options."""

    change_computer_name = BooleanField("Change Computer Name")
    set_bootmgr_first = BooleanField("Set Bootmgr As First Boot Device")
    dont_expand_volumes = BooleanField("Don't Expand Volumes")
    update_bcd = BooleanField("Update BCD")
    randomize_guids = BooleanField("Randomize GUIDs")
    fix_boot_sector = BooleanField("Fix Boot Sector")
    dont_update_nvram = BooleanField("Don't Update NVRAM")
    partition_method = SelectField("Create Partitions Method", choices=choices(METHOD_CHOICES))
    custom_partition_script = TextAreaField("Custom Partition Script")
    force_dynamic_exact_match = BooleanField("Force Dynamic Partition For Exact Hdd Match")
    modify_image_schema = BooleanField("Modify The Image Schema")


class MulticastForm(FlaskForm):
    """Extra udp-sender and udp-receiver arguments."""

    multicast_sender_args = StringField("Sender Arguments", validators=[Length(max=512)])
    multicast_receiver_args = StringField("Receiver Arguments", validators=[Length(max=512)])


class AssignForm(FlaskForm):
    """Assign a module to the profile, or change an assignment."""

    module_id = SelectField("Module", coerce=int, choices=[], validate_choice=False)
    priority = IntegerField("Priority", validators=[Optional(), NumberRange(0, 9999)])
    run_when = SelectField("Run When", choices=choices(RUN_WHEN_LABELS),
                           validate_choice=False)
    destination_partition = StringField("Destination Partition", default="1",
                                        validators=[Length(max=128)])


TAB_FORMS = {"general": GeneralForm, "pxe": PxeForm, "task": TaskForm, "upload": UploadForm,
             "deploy": DeployForm, "multicast": MulticastForm}


def tab_form(tab: str, environment: str, **kwargs) -> FlaskForm:
    """Return the form of an option tab without the fields of the other environment."""
    form = TAB_FORMS[tab](**kwargs)
    for field in TAB_FIELDS[tab]:
        if not field_visible(field, environment):
            delattr(form, field)
    return form


def form_changes(form: FlaskForm, tab: str) -> dict:
    """Return {option: value} of a submitted tab form."""
    return {field: form[field].data if form[field].data is not None else ""
            for field in TAB_FIELDS[tab] if field in form}


# Names of the errors that belong to a table rather than one field, as the page titles them.
LOOSE_LABELS = {"deploy_schema": "Modified deploy schema",
                "custom_upload_schema": "Custom upload schema"}


def attach_errors(form: FlaskForm, error: ProfileError) -> list[str]:
    """Put domain errors on their form fields; return those that belong to no field."""
    loose = []
    for field, message in error.errors.items():
        if field in form:
            form[field].errors = [*form[field].errors, message]
        else:
            label = LOOSE_LABELS.get(field, field.replace("_", " ").capitalize())
            loose.append(message if field in ("profile",) else f"{label}: {message}")
    return loose
