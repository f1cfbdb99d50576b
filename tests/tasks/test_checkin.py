"""Model match (each criteria) and what a checking-in client gets."""

from __future__ import annotations

import pytest

from app.computers.rules import model_matches, normalize_mac
from app.models import Computer, Task
from app.tasks.service import create_task, match_model, task_for_checkin
from app.tickets import task_for_token
from tests.tasks.conftest import add_computer, add_image

MODEL = "OptiPlex 7090"


@pytest.mark.parametrize(("pattern", "criteria", "expected"), [
    ("OptiPlex 7090", "equals", True),
    ("optiplex 7090", "equals", True),
    ("OptiPlex", "equals", False),
    ("OptiPlex", "starts_with", True),
    ("7090", "starts_with", False),
    ("7090", "ends_with", True),
    ("OptiPlex", "ends_with", False),
    ("Plex 70", "contains", True),
    ("Latitude", "contains", False),
    ("OptiPlex 7090", "disabled", False),
    ("", "contains", False),
])
def test_model_matches_each_criteria(pattern, criteria, expected):
    assert model_matches(MODEL, pattern, criteria) is expected


def test_normalize_mac_accepts_common_forms():
    assert normalize_mac("AA-BB-CC-DD-EE-FF") == "aa:bb:cc:dd:ee:ff"
    assert normalize_mac("aabb.ccdd.eeff") == "aa:bb:cc:dd:ee:ff"
    with pytest.raises(ValueError):
        normalize_mac("aa:bb:cc:dd:ee")


def _matching_profile(db, criteria="starts_with", pattern="OptiPlex", name="lab"):
    image = add_image(name)
    profile = image.profiles[0]
    profile.model_match, profile.model_match_criteria = pattern, criteria
    db.session.flush()
    return profile


def test_match_model_skips_disabled_images_and_criteria(db):
    assert match_model(MODEL) is None
    off = _matching_profile(db, "disabled", "OptiPlex", "off")
    assert match_model(MODEL) is None
    disabled_image = _matching_profile(db, "contains", "Opti", "gone")
    disabled_image.image.enabled = False
    assert match_model(MODEL) is None
    good = _matching_profile(db, "ends_with", "7090", "good")
    assert match_model(MODEL) is good
    assert match_model("") is None and off is not good


def test_model_match_creates_a_deploy_task_for_a_known_computer(db):
    profile = _matching_profile(db)
    computer = add_computer()
    result = task_for_checkin(computer.mac, model=MODEL)
    assert result.model_match and result.computer is computer
    assert result.task.kind == "deploy" and result.task.profile is profile
    assert result.task.state == "checked_in"
    assert task_for_token(result.token) is result.task


def test_model_match_registers_an_unknown_computer_even_without_auto_register(db):
    _matching_profile(db)
    result = task_for_checkin("AA:BB:CC:00:11:22", client_id="uuid-1", model=MODEL,
                              register=False)
    assert result.computer.name == "pc-aabbcc001122"
    assert result.computer.mac == "aa:bb:cc:00:11:22" and result.computer.model == MODEL
    assert result.task is not None


def test_model_match_never_deploys_to_a_machine_with_an_upload_task(db):
    _matching_profile(db)
    source = add_image("source")
    computer = add_computer(image=source)
    upload, _ = create_task("upload", computer)
    result = task_for_checkin(computer.mac, model=MODEL)
    assert result.task is upload and not result.model_match
    assert db.session.scalar(db.select(db.func.count()).select_from(Task)) == 1


def test_web_task_wins_and_gets_a_fresh_token(db, computer):
    task, boot_token = create_task("deploy", computer)
    result = task_for_checkin(computer.mac, model="Whatever", serial="S1", system_uuid="u-1")
    assert result.task is task and task.state == "checked_in"
    assert result.token and result.token != boot_token
    assert task_for_token(result.token) is task and task_for_token(boot_token) is None
    assert computer.serial == "S1" and computer.system_uuid == "u-1"
    assert computer.last_checkin_at is not None


def test_checkin_with_the_task_token_issues_no_new_token(db, computer):
    task, _ticket = create_task("deploy", computer)
    result = task_for_checkin("", token_task=task)
    assert result.task is task and result.token is None


def test_unknown_client_on_demand_registration(app, db):
    result = task_for_checkin("aa:bb:cc:00:00:99", client_id="abc", model="X")
    assert result.task is None and result.computer.client_id == "abc"
    app.config["AUTO_REGISTER_COMPUTERS"] = False
    result = task_for_checkin("aa:bb:cc:00:00:98", model="X")
    assert result.task is None and result.computer is None
    assert db.session.scalar(db.select(db.func.count()).select_from(Computer)) == 1


def test_find_by_client_id_when_the_mac_changed(db, computer):
    computer.client_id = "uuid-7"
    task, _ = create_task("deploy", computer)
    result = task_for_checkin("aa:bb:cc:ff:ff:ff", client_id="uuid-7")
    assert result.task is task


def test_registration_names(db):
    named = task_for_checkin("aa:bb:cc:00:00:51", name="kiosk-1").computer
    bad = task_for_checkin("aa:bb:cc:00:00:52", name="bad name; rm").computer
    taken = task_for_checkin("aa:bb:cc:00:00:53", name="kiosk-1").computer
    assert [named.name, bad.name, taken.name] == ["kiosk-1", "pc-aabbcc000052",
                                                   "pc-aabbcc000053"]
