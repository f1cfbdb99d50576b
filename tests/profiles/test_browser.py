"""Chromium edits a cloned profile: compression, live minimum size, method, modules, API."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from app.extensions import db as _db
from app.models import ApiToken, FileCopyModule, ScriptModule, User
from tests.browser import login
from tests.profiles.conftest import add_image

pytestmark = pytest.mark.browser


@pytest.fixture
def workstation(live, schema):
    """An image with a schema, a script and a file-copy module, and an API token."""
    image_id, _profile_id = add_image(live.app, "workstation", schema=schema)
    with live.seed() as session:
        session.add_all([ScriptModule(name="rename-host", contents="hostname x"),
                         FileCopyModule(name="drivers", destination_folder="/drivers")])
        row, token = ApiToken.issue(session.scalar(_db.select(User)), "browser test")
        session.add(row)
    return live.url, image_id, token


def test_clone_edit_assign_and_read_back_through_the_api(workstation, page):
    base, image_id, token = workstation
    login(page, f"{base}/images/{image_id}/profiles/")
    page.click("#profiles >> button:has-text('Clone')")
    expect(page.locator(".flash")).to_contain_text("cloned as default_1")
    profile_url = page.url.rsplit("/", 1)[0]

    # Tabs load by htmx and push their own URL.
    page.click("#profile-tab nav >> text=Upload Options")
    expect(page).to_have_url(profile_url + "/upload")
    page.select_option("select[name=compression_algorithm]", "gzip")
    page.fill("input[name=compression_level]", "12")
    page.click("text=Update Upload Options")
    expect(page.locator("#profile-tab .error")).to_contain_text(
        "gzip takes a level from 1 to 9")
    page.fill("input[name=compression_level]", "9")
    page.click("text=Update Upload Options")
    expect(page.locator("#profile-tab .flash")).to_contain_text("Upload Options saved")

    # The minimum client size follows the schema table as it is edited.
    page.click("#profile-tab nav >> text=Deploy Options")
    minimum = page.locator("#minimum-size")
    before = minimum.inner_text()
    assert "Disk 0:" in before
    page.check("input[name=modify_image_schema]")
    page.uncheck("input[name='d0.p3.deploy']")
    expect(minimum).not_to_have_text(before)
    page.fill("input[name='d0.p2.size']", "50")
    page.select_option("select[name='d0.p2.unit']", "%")
    expect(minimum).to_contain_text("Disk 0: N/A")
    page.fill("input[name='d0.p2.size']", "")
    page.click("text=Update Deploy Options")
    expect(page.locator("#profile-tab .flash")).to_contain_text("Deploy Options saved")
    page.select_option("select[name=partition_method]", "original")
    page.click("text=Update Deploy Options")
    # Custom sizes are editable only with the Dynamic method.
    expect(page.locator("input[name='d0.p2.size']")).to_be_disabled()

    page.click("#profile-tab nav >> text=Scripts")
    page.select_option("select[name=run_when]", "after_file_copy")
    page.click("button:has-text('Assign')")
    expect(page.locator("#assignments")).to_contain_text("rename-host")
    page.click("#profile-tab nav >> text=File Copy")
    page.fill("input[name=destination_partition]", "vg0-home")
    page.click("button:has-text('Assign')")
    expect(page.locator("#assignments")).to_contain_text("drivers")

    # A full reload shows what was saved.
    page.goto(profile_url + "/upload")
    expect(page.locator("select[name=compression_algorithm]")).to_have_value("gzip")

    profile_id = int(profile_url.rsplit("/", 1)[1])
    response = page.request.get(f"{base}/api/v1/images/{image_id}/profiles/{profile_id}",
                                headers={"Authorization": f"Bearer {token}"})
    data = json.loads(response.text())
    assert data["name"] == "default_1"
    assert (data["compression_algorithm"], data["compression_level"]) == ("gzip", 9)
    assert data["partition_method"] == "original" and data["modify_image_schema"] is True
    deploy = data["deploy_schema"]["disks"][0]["partitions"]
    assert [p["deploy"] for p in deploy] == [True, True, False]
    assert [(s["module_name"], s["run_when"]) for s in data["scripts"]] == [
        ("rename-host", "after_file_copy")]
    assert [(f["module_name"], f["destination_partition"]) for f in data["filecopies"]] == [
        ("drivers", "vg0-home")]
