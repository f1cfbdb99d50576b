"""The plan endpoint and the schema processing job, through the app and the real RQ worker."""

from __future__ import annotations

import json

import pytest

from app.extensions import db as _db
from app.imaging.minsize import disk_minimums
from app.imaging.processing import queue_schema_processing
from app.models import History, Image, ImageProfile, Job, default_profile_for
from tests.imaging.helpers import FIXTURES

URL = "/api/v1/images/{}/profiles/{}/plan"


def make_image(app, schema_name: str | None = "schema_gpt_linux.json", **profile_options):
    """Create an image with its default profile (and a schema); return their ids."""
    with app.app_context():
        image = Image(name="lab-image", image_type="block")
        if schema_name:
            image.schema_json = (FIXTURES / schema_name).read_text()
        profile = default_profile_for("block", "linux")
        for key, value in profile_options.items():
            setattr(profile, key, value)
        image.profiles.append(profile)
        _db.session.add(image)
        _db.session.commit()
        return image.id, profile.id


def body(size: int, lss: int = 512) -> dict:
    return {"disks": [{"size_bytes": size, "logical_sector_size": lss,
                       "physical_sector_size": lss}]}


def test_plan_endpoint_returns_plans(app, client, api_headers) -> None:
    image_id, profile_id = make_image(app)
    response = client.post(URL.format(image_id, profile_id), json=body(100 * 2**30),
                           headers=api_headers)
    assert response.status_code == 200, response.json
    [plan] = response.json["plans"]
    assert plan["method"] == "dynamic" and plan["table"] == "gpt"
    assert plan["sfdisk_script"].startswith("label: gpt\n")
    assert [p["source_partition"] for p in plan["partitions"]] == [1, 2, 3]


def test_plan_endpoint_refusals(app, client, api_headers) -> None:
    image_id, profile_id = make_image(app)
    url = URL.format(image_id, profile_id)
    small = client.post(url, json=body(8 * 2**30), headers=api_headers)
    schema = json.loads((FIXTURES / "schema_gpt_linux.json").read_text())
    assert small.status_code == 422
    assert f"at least {disk_minimums(schema, None)[0]} bytes" in small.json["error"]
    sector = client.post(url, json=body(100 * 2**30, 4096), headers=api_headers)
    assert sector.status_code == 422 and "4096-byte logical sectors" in sector.json["error"]
    unknown = client.post(url, json={"nope": 1}, headers=api_headers)
    assert unknown.status_code == 400 and "nope" in unknown.json["error"]
    assert client.post(URL.format(image_id + 9, profile_id), json=body(1),
                       headers=api_headers).status_code == 404
    assert client.post(URL.format(image_id, profile_id + 9), json=body(1),
                       headers=api_headers).status_code == 404
    assert client.post(url, json=body(100 * 2**30)).status_code == 401


def test_plan_endpoint_uses_the_profile_options(app, client, api_headers) -> None:
    selection = json.loads((FIXTURES / "schema_gpt_linux.json").read_text())
    for part in selection["disks"][0]["partitions"]:
        part["deploy"] = part["number"] == 2
    image_id, profile_id = make_image(app, partition_method="standard", randomize_guids=True,
                                      modify_image_schema=True,
                                      deploy_schema=json.dumps(selection))
    response = client.post(URL.format(image_id, profile_id),
                           json={**body(100 * 2**30), "efi": False}, headers=api_headers)
    assert response.status_code == 200, response.json
    [plan] = response.json["plans"]
    assert plan["method"] == "standard" and plan["table"] == "mbr"
    assert plan["partitions"][1]["source_partition"] == 2


def test_plan_endpoint_without_schema_is_a_conflict(app, client, api_headers) -> None:
    image_id, profile_id = make_image(app, schema_name=None)
    response = client.post(URL.format(image_id, profile_id), json=body(2**34),
                           headers=api_headers)
    assert response.status_code == 409 and "no schema" in response.json["error"]


def test_plan_endpoint_is_in_the_openapi_document(client, api_headers) -> None:
    document = client.get("/api/v1/openapi.json", headers=api_headers).json
    operation = document["paths"]["/images/{image_id}/profiles/{profile_id}/plan"]["post"]
    assert set(operation["responses"]) >= {"200", "404", "409", "422"}
    assert "PlanRequest" in document["components"]["schemas"]


def test_schema_job_stores_minimums_and_history(app, run_jobs) -> None:
    selection = json.loads((FIXTURES / "schema_gpt_linux.json").read_text())
    selection["disks"][0]["partitions"][1]["custom_size"] = {"value": 50, "unit": "%"}
    image_id, profile_id = make_image(app, modify_image_schema=True,
                                      deploy_schema=json.dumps(selection))
    with app.app_context():
        image = _db.session.get(Image, image_id)
        clone = ImageProfile(name="plain")
        image.profiles.append(clone)
        _db.session.commit()
        job_id = queue_schema_processing(image).id
        assert _db.session.get(Image, image_id).schema_status == "pending"
    run_jobs()
    with app.app_context():
        job = _db.session.get(Job, job_id)
        assert job.status == "finished", job.log + job.error
        image = _db.session.get(Image, image_id)
        expected = disk_minimums(image.schema, None)
        assert image.schema_status == "valid" and image.schema_error == ""
        assert image.size_on_client_bytes == expected[0] > 0
        profiles = {p.name: json.loads(p.minimum_sizes_json) for p in image.profiles}
        assert profiles["default"] == {"disks": [{"index": 0, "minimum_bytes": None}]}
        assert profiles["plain"] == {"disks": [{"index": 0, "minimum_bytes": expected[0]}]}
        [event] = _db.session.scalars(_db.select(History).filter_by(
            object_type="image", object_id=image_id, action="schema")).all()
        assert event.username == "system" and event.data["status"] == "valid"


@pytest.mark.parametrize("text", ['{"format": "castor-schema"', '{"format": "x"}'])
def test_schema_job_marks_invalid_schemas(app, run_jobs, text) -> None:
    image_id, _profile_id = make_image(app)
    with app.app_context():
        image = _db.session.get(Image, image_id)
        image.schema_json = text
        job_id = queue_schema_processing(image).id
    run_jobs()
    with app.app_context():
        image = _db.session.get(Image, image_id)
        job = _db.session.get(Job, job_id)
        assert image.schema_status == "invalid" and image.schema_error
        assert job.status == "failed" and "invalid" in job.error
        event = _db.session.scalars(_db.select(History).filter_by(action="schema")).one()
        assert event.data["status"] == "invalid"
