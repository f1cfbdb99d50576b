"""Chromium: deletes ask on a confirm page without JavaScript; protected images offer no delete."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.extensions import db as _db
from app.models import Computer, Image, ScriptModule
from tests.browser import login, new_page
from tests.tasks.conftest import add_computer, add_image

pytestmark = pytest.mark.browser


@pytest.fixture
def no_js_page(chromium):
    """A Chromium tab with JavaScript disabled: only the server can ask before a delete."""
    tab = new_page(chromium, javascript=False)
    yield tab
    tab.context.close()


def test_without_javascript_deleting_a_computer_goes_through_the_confirm_page(live, no_js_page):
    page = no_js_page
    with live.seed():
        computer_id = add_computer("pc-7", "aa:bb:cc:dd:ee:07").id
    login(page, f"{live.url}/computers/{computer_id}")
    page.click("button:has-text('Delete computer')")
    expect(page.locator("h1")).to_have_text("Delete computer pc-7?")
    expect(page.locator("form.confirm")).to_contain_text("deleted with its tasks and history")
    with live.seed():
        assert _db.session.get(Computer, computer_id) is not None
    page.click("text=Cancel")
    expect(page).to_have_url(f"{live.url}/computers/{computer_id}")
    page.click("button:has-text('Delete computer')")
    page.click("form.confirm >> button:has-text('Delete')")
    expect(page.locator(".flash-success")).to_contain_text("Computer pc-7 deleted.")
    with live.seed():
        assert _db.session.get(Computer, computer_id) is None


def test_without_javascript_deleting_a_module_goes_through_the_confirm_page(live, no_js_page):
    page = no_js_page
    with live.seed() as session:
        module = ScriptModule(name="set-hostname", contents="hostname lab\n")
        session.add(module)
        session.flush()
        module_id = module.id
    login(page, f"{live.url}/modules/scripts/")
    page.click("table >> button:has-text('Delete')")
    expect(page.locator("h1")).to_have_text("Delete script module set-hostname?")
    with live.seed():
        assert _db.session.get(ScriptModule, module_id) is not None
    page.click("form.confirm >> button:has-text('Delete')")
    expect(page.locator(".flash-success")).to_contain_text("module set-hostname deleted.")
    with live.seed():
        assert _db.session.get(ScriptModule, module_id) is None


def test_an_image_that_becomes_protected_loses_its_delete_button(live, page):
    with live.seed():
        image_id = add_image("gold").id
    login(page, f"{live.url}/images/{image_id}")
    expect(page.locator("button:has-text('Delete Image')")).to_be_enabled()
    with live.seed():  # an upload finishing sets protected while the page is open
        _db.session.get(Image, image_id).protected = True
    expect(page.locator("button:has-text('Delete Image')")).to_have_count(0)
    expect(page.locator("[data-delete-state]")).to_contain_text("Protected")


def test_select_all_leaves_protected_images_out_of_a_bulk_delete(live, page):
    with live.seed():
        add_image("gold", protected=True)
        add_image("lab")
    login(page, f"{live.url}/images/")
    page.check("[data-select-all]")
    expect(page.locator("input[aria-label='Select gold']")).not_to_be_checked()
    expect(page.locator("input[aria-label='Select lab']")).to_be_checked()
    page.click("text=Delete Selected Images")
    expect(page.locator(".flash-success")).to_contain_text("Deleted 1 image(s): lab.")
    with live.seed():
        assert _db.session.scalars(_db.select(Image.name)).all() == ["gold"]
