"""The plan an admin previews is the plan a unicast or multicast client executes.

Each case stores a real image folder (schema + manifest), gives it a profile, and asks the
three entry points for plans onto the same disks: the preview
(`/api/v1/images/<id>/profiles/<id>/plan`), the unicast deploy (`/api/v1/client/deploys`) and
the multicast join (`/api/v1/multicast/join`). All three must answer the same plans.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from app.extensions import db
from app.imaging.inputs import captured_image_type, planner_input
from app.models import Image, default_profile_for
from app.multicast.sessions import create_session
from tests.imaging.helpers import FIXTURES

GIB = 1 << 30
LINUX = json.loads((FIXTURES / "schema_gpt_linux.json").read_text())
SOURCE_BYTES = LINUX["disks"][0]["size_bytes"]


def _disk(size: int) -> list[dict]:
    return [{"size_bytes": size, "logical_sector_size": 512, "physical_sector_size": 512}]


def _selection(**per_partition: dict) -> dict:
    """A modified deploy schema: the linux schema with keys set on partitions `p<N>`."""
    selection = copy.deepcopy(LINUX)
    for part in selection["disks"][0]["partitions"]:
        part.update(per_partition.get(f"p{part['number']}", {}))
    return selection


def _without_upload_of_swap() -> dict:
    """The schema a custom upload schema leaving out the swap partition produces."""
    schema = copy.deepcopy(LINUX)
    schema["disks"][0]["partitions"][2]["upload"] = False
    return schema


CASES = {
    "original": ({"partition_method": "original"}, LINUX, "block", SOURCE_BYTES, None),
    "dynamic": ({}, LINUX, "block", 2 * SOURCE_BYTES, None),
    "dynamic-smaller": ({}, LINUX, "block", SOURCE_BYTES // 2, None),
    "dynamic-exact-forced": ({"force_dynamic_exact_match": True}, LINUX, "block",
                             SOURCE_BYTES, None),
    "custom-sizes": ({"modify_image_schema": True, "deploy_schema": json.dumps(_selection(
        p2={"custom_size": {"value": 40, "unit": "GB"}}))}, LINUX, "block", 2 * SOURCE_BYTES,
        None),
    "modified-deploy-schema": ({"modify_image_schema": True, "randomize_guids": True,
                                "deploy_schema": json.dumps(_selection(p3={"deploy": False}))},
                               LINUX, "block", SOURCE_BYTES, None),
    "custom-upload-schema": ({"use_custom_upload_schema": True, "dont_expand_volumes": True},
                             _without_upload_of_swap(), "block", 2 * SOURCE_BYTES, None),
    "standard-efi": ({"partition_method": "standard", "modify_image_schema": True,
                      "deploy_schema": json.dumps(_selection(p1={"deploy": False},
                                                             p3={"deploy": False}))},
                     LINUX, "block", SOURCE_BYTES, True),
    # A WinPE "both" image is captured as a block image: the schema says so.
    "both-type-image": ({}, LINUX, "both", SOURCE_BYTES // 2, None),
}


def store_image(app, name: str, schema: dict, image_type: str, options: dict,
                database_schema: dict | None = None) -> tuple[int, int]:
    """Create an image row and a complete image folder; return (image id, profile id)."""
    folder = Path(app.config["STORAGE_PATH"]) / "images" / name
    (folder / "hd0").mkdir(parents=True)
    files = []
    for part in schema["disks"][0]["partitions"]:
        fs = (part.get("filesystem") or {}).get("type")
        if fs in (None, "swap") or part.get("upload") is False:
            continue
        relative = f"hd0/part{part['number']}.{fs}.partclone.zst"
        data = f"partition {part['number']}".encode()
        (folder / relative).write_bytes(data)
        files.append({"path": relative, "kind": "partclone", "disk": 0,
                      "partition": part["number"], "lv": None, "filesystem": fs,
                      "compression": "zstd", "size_bytes": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()})
    (folder / "schema.json").write_text(json.dumps(schema))
    (folder / "manifest.json").write_text(json.dumps({
        "format": "castor-manifest", "version": 1, "image": name, "files": files}))
    with app.app_context():
        environment = "winpe" if image_type == "both" else "linux"
        image = Image(name=name, image_type=image_type, environment=environment,
                      schema_json=json.dumps(database_schema or schema), protected=True)
        profile = default_profile_for(image_type, environment)
        for key, value in options.items():
            setattr(profile, key, value)
        image.profiles.append(profile)
        db.session.add(image)
        db.session.commit()
        create_session(f"mc-{name}", image, profile, expected_clients=1)
        db.session.commit()
        return image.id, profile.id


def three_plans(client, headers, name: str, image_id: int, profile_id: int, disks: list,
                efi: bool | None) -> tuple[list, list, list]:
    """Return the plans of the preview, the unicast deploy and the multicast join."""
    preview = client.post(f"/api/v1/images/{image_id}/profiles/{profile_id}/plan",
                          json={"disks": disks, "efi": efi}, headers=headers)
    assert preview.status_code == 200, preview.json
    unicast = client.post("/api/v1/client/deploys", json={
        "image": name, "profile": profile_id, "disks": disks, "efi": efi}, headers=headers)
    assert unicast.status_code == 200, unicast.json
    multicast = client.post("/api/v1/multicast/join", json={
        "session": f"mc-{name}", "client_id": "m1", "disks": disks, "efi": efi},
        headers=headers)
    assert multicast.status_code == 200, multicast.json
    return preview.json["plans"], unicast.json["plans"], multicast.json["plans"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_previewed_plan_is_the_executed_plan(app, client, api_headers, case) -> None:
    options, schema, image_type, disk_bytes, efi = CASES[case]
    name = f"img-{case}"
    image_id, profile_id = store_image(app, name, schema, image_type, options)
    preview, unicast, multicast = three_plans(client, api_headers, name, image_id, profile_id,
                                              _disk(disk_bytes), efi)
    assert preview == unicast == multicast
    expected = planner_input(schema, {**default_options(image_type), **options},
                             image_type, efi).plan(_disk(disk_bytes))
    assert preview == expected


def default_options(image_type: str) -> dict:
    """The default profile's options as plain data."""
    return default_profile_for(image_type, "linux").to_dict()


def test_preview_plans_from_the_schema_the_files_were_captured_with(app, client,
                                                                    api_headers) -> None:
    """A later schema-only upload changes the database copy, not the stored files."""
    stale = copy.deepcopy(LINUX)
    # The stored files hold the shrunk root; the database copy describes it unshrunk.
    stale["disks"][0]["partitions"][1]["filesystem"].update(shrunk=False, image_bytes=None)
    image_id, profile_id = store_image(app, "recaptured", LINUX, "block", {},
                                       database_schema=stale)
    preview, unicast, multicast = three_plans(client, api_headers, "recaptured", image_id,
                                              profile_id, _disk(SOURCE_BYTES // 2), None)
    assert preview == unicast == multicast
    assert preview[0]["minimum_bytes"] == planner_input(LINUX, None).plan(
        _disk(SOURCE_BYTES // 2))[0]["minimum_bytes"]


def test_captured_image_type() -> None:
    assert captured_image_type({"image_type": "file"}, "block") == "file"
    assert captured_image_type({}, "both") == "block"
    assert captured_image_type({}, None) == "block"
