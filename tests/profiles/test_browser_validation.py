"""Chromium: nonsense is refused in words on the field at fault; the forms react to choices."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.models import ImageProfile
from tests.browser import login
from tests.profiles.conftest import add_image

pytestmark = pytest.mark.browser


@pytest.fixture
def profile(live, schema):
    """The default profile of a two-disk image, and another image matching 'OptiPlex'."""
    image_id, profile_id = add_image(live.app, "workstation", schema=schema)
    _other, other_profile = add_image(live.app, "office")
    with live.seed() as session:
        other = session.get(ImageProfile, other_profile)
        other.model_match, other.model_match_criteria = "OptiPlex", "contains"
    return f"{live.url}/images/{image_id}/profiles/{profile_id}"


def _save(page, button: str):
    """Submit the tab and wait until its answer is swapped in: a check that ran before that
    would read the previous answer (and a field filled then would be replaced)."""
    with page.expect_response(lambda r: r.request.method == "POST"):
        page.click(f"text={button}")
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)


def test_model_match_and_kernel_arguments_refused_in_words(live, page, profile):
    login(page, profile + "/general")
    page.select_option("select[name=model_match_criteria]", "equals")
    page.fill("input[name=model_match]", "  ")
    _save(page, "Update Profile")
    expect(page.locator("#profile-tab .error")).to_contain_text("enter a model string")

    page.select_option("select[name=model_match_criteria]", "starts_with")
    page.fill("input[name=model_match]", "OptiPlex 7090")
    _save(page, "Update Profile")
    expect(page.locator("#profile-tab .error")).to_contain_text(
        "could match both this rule and profile 'default' of image 'office'")

    page.click("#profile-tab nav >> text=PXE Boot")
    for bad in ("quiet; reboot", "quiet # comment", "console=ttyS0 }", 'root="x"'):
        page.fill("input[name=kernel_args]", bad)
        _save(page, "Update PXE")
        expect(page.locator("#profile-tab .error")).to_contain_text(
            "would change the boot loader's script")
    page.fill("input[name=kernel_args]", "quiet console=ttyS0,115200")
    _save(page, "Update PXE")
    expect(page.locator("#profile-tab .flash")).to_contain_text("saved")


def test_deploy_schema_table_follows_its_switch_and_refuses_nonsense(live, page, profile):
    login(page, profile + "/deploy")
    size = page.locator("input[name='d0.p2.size']")
    expect(size).to_be_disabled()  # Modify The Image Schema is off: nothing to lose
    script = page.locator("textarea[name=custom_partition_script]")
    expect(script).to_be_hidden()
    page.select_option("select[name=partition_method]", "custom_script")
    expect(script).to_be_visible()
    page.select_option("select[name=partition_method]", "dynamic")
    expect(script).to_be_hidden()

    page.check("input[name=modify_image_schema]")
    expect(size).to_be_enabled()
    page.uncheck("input[name='d1.p1.deploy']")
    _save(page, "Update Deploy Options")
    errors = page.locator("#profile-tab .flash-error")
    expect(errors).to_contain_text("Modified deploy schema: Disk sdb is ticked but none of "
                                   "its partitions is")
    page.check("input[name='d1.p1.deploy']")
    page.fill("input[name='d0.p2.size']", "1e9")
    page.select_option("select[name='d0.p2.unit']", "MB")
    _save(page, "Update Deploy Options")
    expect(errors).to_contain_text("is larger than any disk")
    page.fill("input[name='d0.p2.size']", "20")
    page.select_option("select[name='d0.p2.unit']", "GB")
    page.check("input[name='d0.p2.fixed']")
    _save(page, "Update Deploy Options")
    expect(errors).to_contain_text("Fixed keeps the partition's original size")


def test_upload_tab_levels_follow_the_algorithm_and_empty_custom_schema_refused(live, page,
                                                                              profile):
    login(page, profile + "/upload")
    page.select_option("select[name=compression_algorithm]", "gzip")
    expect(page.locator("input[name=compression_level]")).to_have_value("6")
    expect(page.locator("[data-level-range]")).to_have_text("Level 1 to 9; default 6.")
    page.select_option("select[name=compression_algorithm]", "zstd")
    expect(page.locator("input[name=compression_level]")).to_have_value("3")
    expect(page.locator("[data-level-range]")).to_have_text("Level 1 to 19; default 3.")

    table = page.locator("fieldset.schema-table input[name='d1.p1.upload']")
    expect(table).to_be_disabled()
    page.check("input[name=use_custom_upload_schema]")
    expect(table).to_be_enabled()
    page.uncheck("input[name='d0.upload']")
    page.uncheck("input[name='d1.p1.upload']")
    _save(page, "Update Upload Options")
    expect(page.locator("#profile-tab .flash-error")).to_contain_text(
        "Custom upload schema: Disk sdb is ticked but none of its partitions is")


def test_schema_table_problems_show_on_the_row_at_fault(live, page, profile):
    login(page, profile + "/deploy")
    page.check("input[name=modify_image_schema]")
    page.fill("input[name='d0.p2.size']", "20")
    page.select_option("select[name='d0.p2.unit']", "GB")
    page.check("input[name='d0.p2.fixed']")
    page.uncheck("input[name='d1.p1.deploy']")
    _save(page, "Update Deploy Options")
    on_partition = page.locator("tr.row-errors[data-row='d0.p2']")
    expect(on_partition).to_contain_text("Fixed keeps the partition's original size")
    expect(page.locator("tr.row-errors[data-row='d1']")).to_contain_text(
        "none of its partitions is")
    # the message row follows the row whose Fixed box caused it
    follows = page.evaluate("""() => {
        const box = document.querySelector("input[name='d0.p2.fixed']").closest("tr");
        return box.nextElementSibling.dataset.row; }""")
    assert follows == "d0.p2"
