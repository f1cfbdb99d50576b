"""Chromium on the History tab: action names, who/when, before/after, action filter, paging."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.models import Image, record_history
from tests.browser import login

pytestmark = pytest.mark.browser


def test_history_names_actions_shows_changes_filters_and_pages(live, page):
    login(page, live.url + "/images/new")
    page.fill("input[name=name]", "lab")
    page.select_option("select[name=environment]", "linux")
    page.fill("textarea[name=description]", "first")
    page.click("text=Add Image")
    page.fill("textarea[name=description]", "second")
    page.click("text=Update Image")
    with live.seed() as session:
        image = session.scalar(session.query(Image).filter_by(name="lab").statement)
        for n in range(55):
            record_history("image", image.id, "deploy", image.to_dict(), username=f"pc-{n}")
        image_id = image.id

    page.goto(f"{live.url}/images/{image_id}/history")
    rows = page.locator("table.history tbody tr")
    expect(rows).to_have_count(50)
    expect(page.locator(".pager")).to_contain_text("Page 1 of 2 · 57 events")
    page.click("a[rel=next]")
    changed = page.locator("tr[data-action=update]")
    expect(changed).to_contain_text("Changed")
    expect(changed).to_contain_text("admin")
    expect(changed.locator("ul.changes")).to_contain_text("description: first → second")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", changed.inner_text())
    expect(page.locator("tr[data-action=create]")).to_contain_text("Created")

    page.select_option("select[name=action]", "create")
    page.click("text=Filter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Created")
