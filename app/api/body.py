"""Reading API input: JSON bodies, their fields and query numbers, refused with a 4xx.

Each field spec both checks a body and describes it in the OpenAPI document, so the two
cannot disagree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from flask import request

from app.api.errors import MAX_ID
from app.errors import BadRequest

MAX_DEPTH = 32  # nesting deeper than any document Castor takes (schemas nest about 6 levels)
TEXT_MAX = 65536


@dataclass(frozen=True)
class Field:
    """One JSON field: its type (or types), limits and whether null is allowed.

    A list's `items` is a type or the Field of each item; an object's `fields` (with its
    `required` keys) is the spec its keys are checked by, as `check_fields` checks a body.
    """

    kind: type | tuple[type, ...]
    max_length: int | None = None
    nullable: bool = False
    minimum: int | None = None
    maximum: int | None = None
    items: type | Field | None = None
    enum: tuple | None = None
    pattern: str | None = None
    description: str = ""
    min_length: int | None = None
    fields: dict[str, Field] | None = None
    required: tuple[str, ...] = ()

    @property
    def kinds(self) -> tuple[type, ...]:
        """Return the accepted types."""
        return self.kind if isinstance(self.kind, tuple) else (self.kind,)

    def problem(self, value: object) -> str | None:
        """Return what is wrong with a value, or None (`clean` checks the keys of objects)."""
        if value is None:
            return None if self.nullable else "must not be null"
        kind = next((k for k in self.kinds if _is(value, k)), None)
        if kind is None:
            return "must be " + " or ".join(_TYPE_NAMES[k] for k in self.kinds)
        if self.enum is not None and value not in self.enum:
            return f"must be one of: {', '.join(map(str, self.enum))}"
        if kind in (int, float):
            if self.minimum is not None and value < self.minimum:
                return f"must be at least {self.minimum}"
            if self.maximum is not None and value > self.maximum:
                return f"must be at most {self.maximum}"
        elif self.max_length is not None and len(value) > self.max_length:
            return f"is longer than {self.max_length}"
        if kind is list and self.min_length and len(value) < self.min_length:
            return f"must hold at least {self.min_length} item" + (
                "s" if self.min_length > 1 else "")
        if kind is str and self.min_length and len(value) < self.min_length:
            return "must not be empty" if self.min_length == 1 else (
                f"is shorter than {self.min_length}")
        if kind is str and self.pattern is not None and not re.search(self.pattern, value):
            return "is not in the expected form" + (f" ({self.description})"
                                                    if self.description else "")
        if self.items is not None:
            item = _item(self.items)
            if not all(item.problem(v) is None for v in value):
                return f"must be a list of {_TYPE_NAMES[item.kinds[0]]}s"
        return None

    def clean(self, value: object) -> object:
        """Return a value that has no `problem`, checked through: objects by their `fields`
        (a key at fault is a BadRequest), lists item by item, whole numbers as int (`2.0`)."""
        if self.fields is not None and isinstance(value, dict):
            return check_fields(value, self.fields, self.required)
        if self.items is not None and isinstance(value, list):
            item = _item(self.items)
            return [item.clean(v) for v in value]
        if isinstance(value, float) and value.is_integer() and int in self.kinds \
                and float not in self.kinds:
            return int(value)
        return value

    def schema(self) -> dict:
        """Return the JSON schema of the field."""
        types = [_SCHEMA_TYPES[k] for k in self.kinds] + (["null"] if self.nullable else [])
        schema: dict = {"type": types[0] if len(types) == 1 else types}
        if self.enum is not None:
            schema["enum"] = list(self.enum) + ([None] if self.nullable else [])
        limits = {"minimum": self.minimum, "maximum": self.maximum, "pattern": self.pattern,
                  "description": self.description or None}
        if str in self.kinds:
            limits["maxLength"] = self.max_length
            limits["minLength"] = self.min_length
        if list in self.kinds:
            limits["maxItems"] = self.max_length
            limits["minItems"] = self.min_length
        schema.update({key: value for key, value in limits.items() if value is not None})
        if self.items is not None:
            schema["items"] = _item(self.items).schema()
        if self.fields is not None:
            schema["additionalProperties"] = False
            schema["properties"] = {key: field.schema() for key, field in self.fields.items()}
            if self.required:
                schema["required"] = list(self.required)
        return schema


def _is(value: object, kind: type) -> bool:
    """Tell whether a JSON value has a type (true and false are not numbers).

    As in JSON Schema, a number with a zero fraction (`2.0`) is a whole number.
    """
    if kind is int:
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def _item(kind: type | Field) -> Field:
    """Return the spec of a list's items: whole numbers in lists are ids."""
    if isinstance(kind, Field):
        return kind
    return Id() if kind is int else Field(kind)


_TYPE_NAMES = {str: "a string", bool: "true or false", int: "a whole number", float: "a number",
               list: "a list", dict: "an object"}
_SCHEMA_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number",
                 list: "array", dict: "object"}


def Id(nullable: bool = False, description: str = "") -> Field:  # noqa: N802 (reads as a type)
    """Return the spec of a reference to a row: a whole number that fits an id column."""
    return Field(int, nullable=nullable, minimum=1, maximum=MAX_ID, description=description)


def Text(max_length: int = TEXT_MAX, **kwargs) -> Field:  # noqa: N802
    """Return the spec of a string field of at most `max_length` characters."""
    return Field(str, max_length=max_length, **kwargs)


def Object(fields: dict[str, Field], required: tuple[str, ...] = (),  # noqa: N802
           **kwargs) -> Field:
    """Return the spec of an object whose keys are checked by their own field spec."""
    return Field(dict, fields=fields, required=required, **kwargs)


DISK = Object({"size_bytes": Field(int, minimum=1, maximum=MAX_ID),
               "logical_sector_size": Field(int, enum=(512, 1024, 2048, 4096)),
               "physical_sector_size": Field(int, minimum=512, maximum=1 << 20),
               "name": Text(256, description="the device, for messages")},
              required=("size_bytes",))
DISKS = Field(list, items=DISK, max_length=64, min_length=1)  # the destination disks


def _depth(value: object) -> int:
    """Return how deeply lists and objects nest in a parsed JSON value (iteratively)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


NO_BODY = object()


def json_body(optional: bool = False) -> object:
    """Return the parsed JSON body; 415 when it is not JSON, 400 when malformed or too deep.

    An empty body is NO_BODY when `optional`, else a 400.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        if optional:
            return NO_BODY
        raise BadRequest("a JSON body is required")
    if not request.is_json:
        raise BadRequest("the body must be JSON (Content-Type: application/json)", status=415)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None
    if _depth(value) > MAX_DEPTH:
        raise BadRequest(f"the body nests deeper than {MAX_DEPTH} levels")
    return value


def json_object(optional: bool = False) -> dict:
    """Return the JSON body, which must be an object (`{}` for no body when `optional`)."""
    value = json_body(optional)
    if value is NO_BODY:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def check_fields(body: dict, spec: dict[str, Field], required: tuple[str, ...] = (),
                 ignore: tuple[str, ...] = ()) -> dict:
    """Check a body's fields against a spec: unknown, missing or wrongly typed ones are a 400.

    Keys in `ignore` (read-only fields of the answer's shape) are dropped. A fault inside a
    field (a key of an object in a list) names the field: `disks: size_bytes is required`.
    """
    fields = {}
    for key, value in body.items():
        if key in ignore:
            continue
        if key not in spec:
            raise BadRequest(f"unknown or read-only field {key}", key)
        problem = spec[key].problem(value)
        if problem:
            raise BadRequest(f"{key} {problem}", key)
        try:
            fields[key] = spec[key].clean(value)
        except BadRequest as exc:
            raise BadRequest(f"{key}: {exc.message}", key) from None
    for key in required:
        if key not in fields:
            raise BadRequest(f"{key} is required", key)
    return fields


def body_schema(spec: dict[str, Field], required: tuple[str, ...] = ()) -> dict:
    """Return the JSON schema of a body checked by `check_fields(spec, required)`."""
    return Object(spec, required).schema()


def query_one(name: str) -> str | None:
    """Return a query parameter given at most once (None when absent), or a 400."""
    values = request.args.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"{name} is given once", name)
    return values[0] if values else None


def query_int(name: str, default: int | None = None, minimum: int = 0,
              maximum: int = MAX_ID) -> int | None:
    """Return a whole-number query parameter within bounds, or a 400."""
    raw = query_one(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number", name) from None
    if not minimum <= value <= maximum:
        raise BadRequest(f"{name} must be between {minimum} and {maximum}", name)
    return value
