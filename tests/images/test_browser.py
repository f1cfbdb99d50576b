"""Chromium drives the image pages: login, create, search, protected delete, bulk delete."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.images import service
from tests.browser import login

pytestmark = pytest.mark.browser


@pytest.fixture
def images(live):
    """Two plain Linux images, alpha and beta."""
    with live.seed():
        for name in ("alpha", "beta"):
            service.create_image(live.app.config["STORAGE_PATH"], name=name, environment="linux",
                                 image_type="block")
    return live


def test_login_create_search_and_delete(images, page):
    base = images.url
    login(page, base + "/images/")
    expect(page.locator("h1")).to_have_text("Images")

    page.click("text=New Image")
    page.fill("input[name=name]", "gold-master")
    page.select_option("select[name=environment]", "winpe")
    page.select_option("select[name=image_type]", "both")
    page.fill("textarea[name=description]", "Protected golden image")
    page.check("input[name=protected]")
    page.click("text=Add Image")
    expect(page.locator(".flash")).to_contain_text("Image gold-master created.")

    # Active search: typing swaps only the rows and pushes the URL.
    page.click("nav >> text=Images")
    page.fill("input[name=q]", "gold")
    expect(page.locator("#results")).to_contain_text("Showing 1 of 1 image.")
    expect(page.locator("#results")).not_to_contain_text("alpha")
    expect(page).to_have_url(f"{base}/images/?q=gold&mode=any&limit=25")

    # Deleting a protected image is refused with a message.
    page.click("#results >> text=gold-master")
    page.click("text=Delete Image")
    expect(page.locator(".flash-error")).to_contain_text("gold-master is protected")

    # Bulk delete: select all, confirm, protected one skipped and named.
    page.goto(base + "/images/")
    expect(page.locator("#results")).to_contain_text("Showing 3 of 3 images.")
    page.check("[data-select-all]")
    page.click("text=Delete Selected Images")
    expect(page.locator(".flash-success")).to_contain_text("Deleted 2 image(s): alpha, beta.")
    expect(page.locator(".flash-error")).to_contain_text(
        "Skipped protected image(s): gold-master.")
    expect(page.locator("#results")).to_contain_text("Showing 1 of 1 image.")


def test_image_type_follows_the_environment(live, page):
    login(page, live.url + "/images/new")
    environment, image_type = page.locator("select[name=environment]"), page.locator(
        "select[name=image_type]")
    environment.select_option("linux")
    expect(image_type).to_have_value("block")
    expect(image_type.locator("option[value=both]")).to_be_disabled()
    environment.select_option("winpe")
    expect(image_type).to_have_value("file")
    expect(image_type.locator("option[value=both]")).to_be_enabled()
    image_type.select_option("both")
    environment.select_option("linux")
    expect(image_type).to_have_value("block")

    page.fill("input[name=name]", "readable")
    page.click("text=Add Image")
    expect(page.locator("[data-field=environment]")).to_have_text("Linux")
    expect(page.locator("[data-field=image_type]")).to_have_text("Block")
