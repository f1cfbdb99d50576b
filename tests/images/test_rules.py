"""Field rules: names, descriptions, environment and type."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.images import rules


@pytest.mark.parametrize("name", ["win11", "Ubuntu_24-04", "a", "x" * 64, "A-_9"])
def test_good_names(name):
    assert rules.image_name_problem(name) is None


@pytest.mark.parametrize("name", [
    "", None, "a/b", "..", "../etc", "has space", "x" * 65, "dot.name",
    "wіn11",  # Cyrillic і
    "ｗｉｎ",  # full-width letters
    "name\x00", "tab\tname", "ümlaut", "semi;colon",
])
def test_bad_names(name):
    assert rules.image_name_problem(name)


@given(st.text(min_size=1, max_size=80))
def test_name_rule_matches_storage_rule(name):
    # The form rule and the folder rule must agree, or a valid image could have no folder.
    from app.storage import valid_name

    assert (rules.image_name_problem(name) is None) == valid_name(name)


def test_description_limit():
    assert rules.description_problem("x" * rules.DESCRIPTION_MAX) is None
    problem = rules.description_problem("x" * 10_000_000)
    assert "10,000" in problem and "10,000,000" in problem


@pytest.mark.parametrize(("environment", "image_type", "ok"), [
    ("linux", "block", True), ("linux", "file", True), ("linux", "both", False),
    ("winpe", "block", True), ("winpe", "file", True), ("winpe", "both", True),
    ("winpe", "raw", False), ("dos", "block", False),
])
def test_type_per_environment(environment, image_type, ok):
    assert (rules.type_problem(environment, image_type) is None) == ok


def test_both_message_names_winpe():
    assert "WinPE" in rules.type_problem("linux", "both")


@pytest.mark.parametrize(("name", "ok"), [
    ("Windows 11", True), ("lab.room-2_b", True), ("", False), (" x", False),
    ("a/b", False), ("x" * 65, False), ("é", False),
])
def test_category_names(name, ok):
    assert (rules.category_name_problem(name) is None) == ok
