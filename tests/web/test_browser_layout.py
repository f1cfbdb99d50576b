"""Chromium measures the layout: long names, the top bar at 390 px, the Scripts table, favicon."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.images import service
from app.models import ImageProfile, ProfileScript, ScriptModule
from tests.browser import login, new_page

pytestmark = pytest.mark.browser
LONG = "x" * 64


@pytest.fixture
def long_image(live):
    """An image with a 64-character name and a script assigned to its profile."""
    with live.seed() as session:
        image = service.create_image(live.app.config["STORAGE_PATH"], name=LONG,
                                     environment="linux", image_type="block")
        script = ScriptModule(name="s" * 64, contents="true")
        session.add(script)
        session.flush()
        session.add(ProfileScript(profile_id=image.profiles[0].id, module_id=script.id,
                                  priority=1, run_when="before_imaging"))
        return image.id, image.profiles[0].id


def _overflows(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")


@pytest.mark.parametrize("width", [1280, 390])
def test_long_names_and_the_top_bar_fit(live, chromium, long_image, width):
    page = new_page(chromium, width=width)
    try:
        login(page, live.url + "/images/")
        expect(page.locator("#results")).to_contain_text(LONG)
        assert not _overflows(page), "the image list is wider than the window"
        page.goto(f"{live.url}/images/{long_image[0]}")
        assert not _overflows(page), "the image page is wider than the window"
        for link in page.locator("header.topbar nav a").all():
            box = link.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 1
        signout = page.locator("header.topbar button:has-text('Sign out')").bounding_box()
        assert signout["x"] + signout["width"] <= width + 1
    finally:
        page.context.close()


def test_scripts_run_when_header_sits_over_its_column(live, page, long_image):
    image_id, profile_id = long_image
    login(page, f"{live.url}/images/{image_id}/profiles/{profile_id}/scripts")
    header = page.locator("#assignments th:has-text('Run when')").bounding_box()
    select = page.locator("#assignments select[name=run_when]").bounding_box()
    assert abs(header["x"] - (select["x"] - 0)) < 16, (header, select)
    page.select_option("#assignments select[name=run_when]", "after_file_copy")
    page.click("#assignments button:has-text('Save')")
    expect(page.locator("#assignments select[name=run_when]")).to_have_value("after_file_copy")


def test_pages_have_a_favicon(live, page):
    login(page, live.url + "/images/")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(live.url + href).status == 200


def test_the_breadcrumb_of_long_names_fits_at_390_px(live, chromium, long_image):
    image_id, profile_id = long_image
    with live.seed() as session:
        session.get(ImageProfile, profile_id).name = "p" * 64
    page = new_page(chromium, width=390)
    try:
        login(page, f"{live.url}/images/{image_id}")
        for url in (f"/images/{image_id}", f"/images/{image_id}/profiles/",
                    f"/images/{image_id}/profiles/{profile_id}/deploy"):
            page.goto(live.url + url)
            crumb = page.locator("nav#breadcrumb")
            expect(crumb).to_contain_text(LONG)
            widths = crumb.evaluate("(nav) => [nav.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1], f"{url}: the breadcrumb is {widths[0]} px wide"
            box = crumb.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1, (url, box)
        expect(page.locator("nav#breadcrumb")).to_contain_text("p" * 64)
        # Switching tabs swaps only the tab; the breadcrumb follows out of band.
        page.click("nav[aria-label='Profile sections'] >> text=Upload Options")
        expect(page.locator("nav#breadcrumb li[aria-current=page]")).to_have_text(
            "› Upload Options")
        assert not _overflows(page), "the profile page is wider than the window"
    finally:
        page.context.close()
