"""Chromium under the real Content-Security-Policy: no page breaks it, htmx still works."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import login
from tests.tasks.conftest import add_image

pytestmark = pytest.mark.browser

PAGES = ("/", "/images/", "/computers/", "/tasks/", "/multicast/", "/servers/",
         "/categories/", "/modules/", "/admin/", "/admin/password")


def test_no_page_violates_the_policy_and_htmx_runs(live, page):
    with live.seed():
        image = add_image("lab")
        profile = f"/images/{image.id}/profiles/{image.profiles[0].id}/deploy"
    violations: list[str] = []
    page.on("console", lambda message: violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text else None)
    login(page, live.url + "/images/")
    for path in (*PAGES, profile):
        page.goto(live.url + path)
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.htmx") == "object", path
    # An htmx request under the policy: the image search filters as one types.
    page.goto(live.url + "/images/")
    with page.expect_request(lambda request: "q=la" in request.url):
        page.fill("input[name=q]", "la")
    expect(page.locator("#results")).to_contain_text("lab")
    assert violations == []
