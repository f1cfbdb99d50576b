"""Chromium: failed requests always say so; error pages are styled; typed entries survive."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.extensions import db as _db
from app.models import Image
from tests.browser import login, new_page
from tests.tasks.conftest import add_image

pytestmark = pytest.mark.browser


@pytest.fixture
def profile_url(live):
    """The Task tab of the default profile of an image 'lab'."""
    with live.seed():
        image = add_image("lab")
        url = f"{live.url}/images/{image.id}/profiles/{image.profiles[0].id}/task"
    return url


def test_sign_out_in_another_tab_makes_an_htmx_save_say_it_failed(live, page, profile_url):
    login(page, profile_url)
    other = page.context.new_page()
    other.goto(live.url + "/images/")
    other.click("text=Sign out")
    expect(other.locator("input[name=username]")).to_be_visible()

    page.check("input[name=web_cancel]")
    page.click("text=Update Task Options")
    expect(page.locator(".flash-error")).to_contain_text("security token is no longer valid")
    expect(page.locator("#profile-tab .flash")).to_have_count(0)


def test_expired_session_leads_to_login_and_back(live, page, profile_url):
    login(page, profile_url)
    page.context.clear_cookies()
    page.click("#profile-tab nav >> text=Upload Options")
    expect(page).to_have_url(f"{live.url}/login?next=/" + profile_url.split("/", 3)[3])
    expect(page.locator("#profile-tab")).to_have_count(0)  # not a login form inside a tab
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "correct horse")
    page.click("button[type=submit]")
    expect(page).to_have_url(profile_url)


def test_error_pages_are_styled_with_navigation(live, page):
    login(page, live.url + "/images/")
    response = page.goto(live.url + "/images/999999")
    assert response.status == 404
    expect(page.locator("h1")).to_contain_text("Not found")
    expect(page.locator("header.topbar nav")).to_contain_text("Images")
    response = page.goto(live.url + "/no/such/page")
    assert response.status == 404
    expect(page.locator(".error-page")).to_contain_text("nothing at this address")
    api = page.request.get(live.url + "/api/v1/images/999999")
    assert api.headers["content-type"].startswith("application/json")


def test_stale_csrf_token_on_a_full_page_form_keeps_what_was_typed(live, chromium):
    page = new_page(chromium, javascript=False)
    try:
        login(page, live.url + "/images/new")
        page.fill("input[name=name]", "typed-name")
        page.fill("textarea[name=description]", "first line\nsecond line")
        other = page.context.new_page()
        other.goto(live.url + "/images/")
        other.click("text=Sign out")
        login(other, live.url + "/images/")  # a new session: the old page's token is stale
        other.close()
        page.click("text=Add Image")
        expect(page.locator(".error-page")).to_contain_text("security token")
        expect(page.locator("input[name=name]")).to_have_value("typed-name")
        expect(page.locator("textarea[name=description]")).to_have_value(
            "first line\nsecond line")
        page.click("text=Send again")
        expect(page.locator(".flash")).to_contain_text("Image typed-name created.")
    finally:
        page.context.close()
    with live.app.app_context():
        assert _db.session.scalar(_db.select(Image).filter_by(name="typed-name")) is not None
