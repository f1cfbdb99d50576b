"""The OpenAPI document declares every API route, method and path parameter."""

from __future__ import annotations

import re

from app.api.openapi import api_rules


def _document(seeded) -> dict:
    answer = seeded.app.test_client().get("/api/v1/openapi.json")
    assert answer.status_code == 200
    return answer.get_json()


def test_every_api_route_is_documented_and_nothing_else(seeded):
    document = _document(seeded)
    routes = {(path, method) for path, method, _params in api_rules(seeded.app)}
    documented = {(path, method) for path, item in document["paths"].items()
                  for method in item if method in ("get", "put", "post", "patch", "delete")}
    assert routes == documented
    # The same comparison straight from the url_map, so a route never slips past api_rules.
    for rule in seeded.app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and "<any(" not in rule.rule:
            path = re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>", r"{\1}", rule.rule)[7:]
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert method.lower() in document["paths"][path], (path, method)


def test_every_path_parameter_is_declared_with_a_type(seeded):
    for path, item in _document(seeded)["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method, operation in item.items():
            declared = {p["name"]: p for p in operation.get("parameters", [])
                        if p["in"] == "path"}
            assert set(declared) == names, (method, path)
            for param in declared.values():
                assert param["required"] and param["schema"], (method, path)


def test_ids_are_bounded_and_errors_are_json(seeded):
    operation = _document(seeded)["paths"]["/images/{image_id}"]["patch"]
    (param,) = operation["parameters"]
    assert param["schema"] == {"type": "integer", "minimum": 1, "maximum": (1 << 63) - 1}
    for code in ("400", "401", "404", "413", "415", "422"):
        assert "application/json" in operation["responses"][code]["content"], code
