"""The planner's input for an image profile: built in one place for every deploy entry point.

The profile page's plan preview, the unicast deploy and the multicast join all plan with
`planner_input`, so the plan an admin previews is the plan the client executes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from app.imaging.errors import PlanError
from app.imaging.planner import plan_deploy

# The profile's deploy options the planner reads (docs/planning.md, "Options").
PLANNER_OPTIONS = ("partition_method", "force_dynamic_exact_match", "randomize_guids",
                   "dont_expand_volumes", "custom_partition_script")


@dataclass(frozen=True)
class PlannerInput:
    """Everything `plan_deploy` needs except the destination disks."""

    schema: dict
    selection: dict | None
    options: dict

    def plan(self, disks: list[dict]) -> list[dict]:
        """Return one plan per destination disk (raises PlanError or SchemaError)."""
        return plan_deploy(self.schema, self.selection, disks, self.options)


def deploy_selection(profile: Mapping) -> dict | None:
    """Return the profile's modified deploy schema when it is switched on, else None."""
    if not profile.get("modify_image_schema") or not profile.get("deploy_schema"):
        return None
    raw = profile["deploy_schema"]
    try:
        selection = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise PlanError(f"the profile's modified deploy schema is not valid JSON: {exc}") from exc
    return selection


def captured_image_type(schema: Mapping, image_type: str | None) -> str:
    """Return the type the image files were captured as: the schema's, else the image's.

    A WinPE image of type *both* is captured by the Linux client as a block image, and the
    schema says so; "both" is never a planning type.
    """
    kind = schema.get("image_type") or image_type or "block"
    return "block" if kind == "both" else kind


def planner_input(schema: dict, profile: Mapping | None, image_type: str | None = None,
                  efi: bool | None = None) -> PlannerInput:
    """Return the planner input of a captured schema and a profile's options (plain data).

    `profile` is the profile's option fields (`ImageProfile.to_dict()` or the client
    payload); None plans with the defaults. `efi` chooses the Standard layout (None: follow
    the schema's table).
    """
    if efi is not None and not isinstance(efi, bool):
        raise PlanError("efi must be true, false or null")
    profile = profile or {}
    options: dict = {key: profile[key] for key in PLANNER_OPTIONS if key in profile}
    options["image_type"] = captured_image_type(schema, image_type)
    options["efi"] = efi
    return PlannerInput(schema=schema, selection=deploy_selection(profile), options=options)
