"""Chromium on the image list: columns, sorting, paging, categories, filters, empty state."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.images import service
from app.models import Category
from tests.browser import login, new_page

pytestmark = pytest.mark.browser


def _images(live, names, categories=None):
    with live.seed() as session:
        lab = Category(name="lab")
        session.add(lab)
        for name in names:
            service.create_image(live.app.config["STORAGE_PATH"], name=name,
                                 environment="linux", image_type="block",
                                 categories=[lab] if name in (categories or ()) else [])


def test_empty_state_offers_new_image(live, page):
    login(page, live.url + "/images/")
    expect(page.locator(".empty-state")).to_contain_text("No images yet")
    page.click(".empty-state >> text=New image")
    expect(page.locator("h1")).to_have_text("New Image")


def test_columns_sorting_paging_category_picker_and_clear_filters(live, page):
    names = [f"img-{n:02d}" for n in range(30)]
    _images(live, names, categories=("img-03", "img-07"))
    login(page, live.url + "/images/")
    header = page.locator("table.images thead")
    for column in ("Categories", "Size on server", "Last upload", "Profiles"):
        expect(header).to_contain_text(column)
    expect(page.locator("#result-count")).to_contain_text("Showing 1–25 of 30 images.")
    page.click("a[rel=next]")
    expect(page.locator("#result-count")).to_contain_text("Showing 26–30 of 30 images.")
    expect(page.locator("#results")).to_contain_text("img-29")

    page.click("th >> a[data-sort=name]")  # sorted by name already: now descending
    expect(page.locator("#results tbody tr").first).to_contain_text("img-29")
    expect(page).to_have_url(f"{live.url}/images/?sort=name&dir=desc")  # back to page 1

    page.goto(live.url + "/images/")
    page.check("fieldset.category-picker >> text=lab")  # a plain click, no Ctrl
    expect(page.locator("#result-count")).to_contain_text("Showing 2 of 2 images.")
    expect(page.locator("#results tbody tr").first).to_contain_text("lab")
    page.click("[data-clear-filters]")
    expect(page.locator("#result-count")).to_contain_text("of 30 images")


def test_bad_search_parameters_answer_400_in_words(live, page):
    login(page, live.url + "/images/")
    response = page.goto(live.url + "/images/?limit=abc")
    assert response.status == 400
    expect(page.locator(".error-page")).to_contain_text("limit is a positive number")
    response = page.goto(live.url + "/images/?category=42")
    assert response.status == 400
    expect(page.locator(".error-page")).to_contain_text("no category has the number 42")


def test_without_javascript_a_delete_asks_on_a_confirm_page(live, chromium):
    _images(live, ["doomed"])
    page = new_page(chromium, javascript=False)
    try:
        login(page, live.url + "/images/")
        page.click("#results >> text=doomed")
        page.click("text=Delete Image")
        expect(page.locator("h1")).to_have_text("Delete image doomed?")
        page.click("text=Cancel")
        expect(page.locator("h1")).to_contain_text("doomed")
        page.click("text=Delete Image")
        page.click("button:has-text('Delete')")
        expect(page.locator(".flash-success")).to_contain_text("Image doomed deleted.")
    finally:
        page.context.close()
