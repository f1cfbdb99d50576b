"""Field specs: a list of objects is described and checked by its items' own field spec."""

from __future__ import annotations

import pytest

from app.api.body import DISKS, Field, Object, Text, body_schema, check_fields
from app.errors import BadRequest

POINT = Object({"x": Field(int, minimum=0, maximum=100), "label": Text(8)}, required=("x",))
POINTS = Field(list, items=POINT, min_length=1, max_length=2)
SPEC = {"points": POINTS, "name": Text(16)}


def _refusal(body: dict) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        check_fields(body, SPEC)
    return caught.value


def test_the_schema_describes_each_item_by_its_fields():
    assert POINTS.schema() == {
        "type": "array", "minItems": 1, "maxItems": 2,
        "items": {"type": "object", "additionalProperties": False,
                  "properties": {"x": {"type": "integer", "minimum": 0, "maximum": 100},
                                 "label": {"type": "string", "maxLength": 8}},
                  "required": ["x"]}}
    assert body_schema(SPEC)["properties"]["points"] == POINTS.schema()


def test_items_are_checked_and_cleaned():
    body = check_fields({"points": [{"x": 2.0, "label": "a"}, {"x": 3}]}, SPEC)
    assert body == {"points": [{"x": 2, "label": "a"}, {"x": 3}]}
    assert isinstance(body["points"][0]["x"], int)


@pytest.mark.parametrize(("points", "message"), [
    ([{"x": 101}], "points: x must be at most 100"),
    ([{"x": 1}, {"x": "1"}], "points: x must be a whole number"),
    ([{"x": 1, "label": "far too long"}], "points: label is longer than 8"),
    ([{"x": 1, "y": 2}], "points: unknown or read-only field y"),
    ([{"label": "a"}], "points: x is required"),
    ([{"x": 1}, {"x": 2}, {"x": 3}], "points is longer than 2"),
    ([], "points must hold at least 1 item"),
    ([{"x": 1}, 5], "points must be a list of an objects"),
    ({"x": 1}, "points must be a list"),
    (None, "points must not be null"),
])
def test_a_bad_item_a_missing_key_or_too_many_items_are_refused(points, message):
    refusal = _refusal({"points": points})
    assert (refusal.message, refusal.field, refusal.status) == (message, "points", 400)


def test_destination_disks_are_such_a_list():
    assert DISKS.schema()["items"]["required"] == ["size_bytes"]
    body = check_fields({"disks": [{"size_bytes": 4096.0, "logical_sector_size": 512}]},
                        {"disks": DISKS})
    assert body == {"disks": [{"size_bytes": 4096, "logical_sector_size": 512}]}
    with pytest.raises(BadRequest, match=r"^disks: logical_sector_size must be one of"):
        check_fields({"disks": [{"size_bytes": 1, "logical_sector_size": 513}]},
                     {"disks": DISKS})
