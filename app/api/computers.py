"""REST API: computers and computer groups (routes on the api_tasks blueprint)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from app.api import api_error, token_required
from app.api.body import Field, Id, Text, check_fields, json_object, query_int
from app.api.errors import MAX_ID
from app.computers import rules
from app.computers.views import search_computers
from app.errors import BadRequest
from app.extensions import db
from app.models import Computer, ComputerGroup, Image, ImageProfile, record_history
from app.tasks.service import active_task_for

bp = Blueprint("api_computers", __name__, url_prefix="/api/v1")
NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"  # app.computers.rules
COMPUTER_FIELDS = {
    "name": Text(63, pattern=NAME_PATTERN), "mac": Text(32, pattern=rules.MAC_PATTERN, description=(
        "any common MAC form; stored aa:bb:cc:dd:ee:ff")),
    "client_id": Text(128), "description": Text(), "image_id": Id(nullable=True),
    "profile_id": Id(nullable=True, description="a profile of the computer's image")}
GROUP_FIELDS = {"name": Text(63, pattern=NAME_PATTERN), "description": Text(),
                "computer_ids": Field(list, items=int, max_length=10000)}
FieldError = BadRequest  # a refused field, answered as `{"error", "field"}` with its status


def _fields(allowed: dict[str, Field]) -> dict:
    """Return the JSON body's fields after checking names and types."""
    return check_fields(json_object(), allowed)


def _check(problem: str | None, field: str) -> None:
    """Raise a FieldError when a rule found a problem."""
    if problem:
        raise FieldError(problem, field)


def apply_computer(computer: Computer, data: dict) -> None:
    """Validate and copy API fields onto a computer (new or existing)."""
    if "name" in data:
        _check(rules.computer_name_problem(data["name"]), "name")
        other = db.session.scalar(db.select(Computer).filter_by(name=data["name"]))
        if other is not None and other is not computer:
            raise FieldError(f"A computer named {data['name']} already exists.", "name", 409)
        computer.name = data["name"]
    if data.get("mac"):
        _check(rules.mac_problem(data["mac"]), "mac")
        mac = rules.normalize_mac(data["mac"])
        other = db.session.scalar(db.select(Computer).filter_by(mac=mac))
        if other is not None and other is not computer:
            raise FieldError(f"{other.name} already has the MAC address {mac}.", "mac", 409)
        computer.mac = mac
    elif "mac" in data:
        computer.mac = ""
    for key in ("client_id", "description"):
        if key in data:
            setattr(computer, key, data[key].strip())
    if "image_id" in data:
        if data["image_id"] is not None and db.session.get(Image, data["image_id"]) is None:
            raise FieldError("No such image.", "image_id", 422)
        computer.image_id = data["image_id"]
    if "profile_id" in data:
        computer.profile_id = data["profile_id"]
    if computer.profile_id is not None:
        profile = db.session.get(ImageProfile, computer.profile_id)
        if profile is None or profile.image_id != computer.image_id:
            raise FieldError("The profile must belong to the computer's image.", "profile_id",
                             422)
    if not computer.name:
        raise FieldError("A name is required.", "name")


@bp.get("/computers")
@token_required
def list_computers():
    """Search computers by name, MAC, model, serial or client id (`q`), up to `limit`."""
    limit = query_int("limit", 100, minimum=1, maximum=1000)
    computers = search_computers(request.args.get("q", ""), limit)
    return jsonify({"computers": [c.to_dict() for c in computers]})


@bp.post("/computers")
@token_required
def create_computer():
    """Add a computer."""
    computer = Computer(name="")
    apply_computer(computer, _fields(COMPUTER_FIELDS))
    db.session.add(computer)
    db.session.flush()
    record_history("computer", computer.id, "create", computer.to_dict())
    db.session.commit()
    return jsonify({"computer": computer.to_dict()}), 201


def _computer(computer_id: int) -> Computer:
    """Return the computer or raise a 404 FieldError."""
    computer = db.session.get(Computer, computer_id)
    if computer is None:
        raise FieldError(f"No computer with id {computer_id}.", "id", 404)
    return computer


@bp.get("/computers/<int:computer_id>")
@token_required
def get_computer(computer_id: int):
    """Return one computer."""
    return jsonify({"computer": _computer(computer_id).to_dict()})


@bp.patch("/computers/<int:computer_id>")
@token_required
def update_computer(computer_id: int):
    """Change some of a computer's fields."""
    computer = _computer(computer_id)
    apply_computer(computer, _fields(COMPUTER_FIELDS))
    record_history("computer", computer.id, "update", computer.to_dict())
    db.session.commit()
    return jsonify({"computer": computer.to_dict()})


@bp.delete("/computers/<int:computer_id>")
@token_required
def delete_computer(computer_id: int):
    """Delete a computer (refused while it has an active task)."""
    computer = _computer(computer_id)
    if active_task_for(computer) is not None:
        return api_error(409, f"{computer.name} has an active task: cancel it first.")
    record_history("computer", computer.id, "delete", computer.to_dict())
    db.session.delete(computer)
    db.session.commit()
    return "", 204


def apply_group(group: ComputerGroup, data: dict) -> None:
    """Validate and copy API fields onto a group."""
    if "name" in data:
        _check(rules.computer_name_problem(data["name"]), "name")
        other = db.session.scalar(db.select(ComputerGroup).filter_by(name=data["name"]))
        if other is not None and other is not group:
            raise FieldError(f"A group named {data['name']} already exists.", "name", 409)
        group.name = data["name"]
    if "description" in data:
        group.description = data["description"]
    if "computer_ids" in data:
        ids = data["computer_ids"]
        if not all(1 <= i <= MAX_ID for i in ids):
            raise FieldError("computer_ids is a list of computer ids.", "computer_ids")
        members = db.session.scalars(db.select(Computer).filter(Computer.id.in_(ids))).all()
        missing = sorted(set(ids) - {c.id for c in members})
        if missing:
            raise FieldError(f"No computers with ids {missing}.", "computer_ids", 422)
        group.members = list(members)
    if not group.name:
        raise FieldError("A name is required.", "name")


def _group(group_id: int) -> ComputerGroup:
    """Return the group or raise a 404 FieldError."""
    group = db.session.get(ComputerGroup, group_id)
    if group is None:
        raise FieldError(f"No group with id {group_id}.", "id", 404)
    return group


@bp.get("/groups")
@token_required
def list_groups():
    """List computer groups with their member ids."""
    groups = db.session.scalars(db.select(ComputerGroup).order_by(ComputerGroup.name))
    return jsonify({"groups": [g.to_dict() for g in groups]})


@bp.post("/groups")
@token_required
def create_group():
    """Add a group."""
    group = ComputerGroup(name="")
    apply_group(group, _fields(GROUP_FIELDS))
    db.session.add(group)
    db.session.flush()
    record_history("computer_group", group.id, "create", group.to_dict())
    db.session.commit()
    return jsonify({"group": group.to_dict()}), 201


@bp.get("/groups/<int:group_id>")
@token_required
def get_group(group_id: int):
    """Return one group."""
    return jsonify({"group": _group(group_id).to_dict()})


@bp.patch("/groups/<int:group_id>")
@token_required
def update_group(group_id: int):
    """Change a group's name, description or members."""
    group = _group(group_id)
    apply_group(group, _fields(GROUP_FIELDS))
    record_history("computer_group", group.id, "update", group.to_dict())
    db.session.commit()
    return jsonify({"group": group.to_dict()})


@bp.delete("/groups/<int:group_id>")
@token_required
def delete_group(group_id: int):
    """Delete a group (its computers stay)."""
    group = _group(group_id)
    record_history("computer_group", group.id, "delete", group.to_dict())
    db.session.delete(group)
    db.session.commit()
    return "", 204
