"""Chromium drives the image pages: login, create, search, protected delete, bulk delete."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.images import service
from tests.browser import login
from tests.tasks.conftest import add_image

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

    # A protected image offers no live delete button, and its row can't be ticked.
    page.click("#results >> text=gold-master")
    expect(page.locator("text=Delete Image")).to_have_count(0)
    expect(page.locator("[data-delete-state]")).to_contain_text("Protected")

    # Bulk delete: nothing ticked is refused before any confirm; select all deletes the rest.
    page.goto(base + "/images/")
    expect(page.locator("#results")).to_contain_text("Showing 3 of 3 images.")
    page.click("text=Delete Selected Images")
    expect(page.locator(".flash-error")).to_contain_text("Nothing is selected")
    expect(page.locator("#results")).to_contain_text("Showing 3 of 3 images.")
    expect(page.locator("input[aria-label='Select gold-master']")).to_be_disabled()
    page.check("[data-select-all]")
    page.click("text=Delete Selected Images")
    expect(page.locator(".flash-success")).to_contain_text("Deleted 2 image(s): alpha, beta.")
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


def test_bulk_delete_is_off_while_every_image_shown_is_protected(live, page):
    with live.seed():
        for name in ("gold-a", "gold-b"):
            add_image(name, protected=True)
        add_image("lab")
    login(page, live.url + "/images/")
    button = page.locator("button:has-text('Delete Selected Images')")
    expect(button).to_be_enabled()
    # The active search shows only protected images: the button follows the rows.
    page.fill("input[name=q]", "gold")
    expect(page.locator("#results")).to_contain_text("Showing 2 of 2 images.")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", re.compile("protected"))
    page.fill("input[name=q]", "")
    expect(page.locator("#results")).to_contain_text("Showing 3 of 3 images.")
    expect(button).to_be_enabled()
    # A direct load of the same search renders it off too.
    page.goto(live.url + "/images/?q=gold")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", re.compile("protected"))
