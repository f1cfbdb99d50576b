"""Chromium: the image page refreshes its size, last upload and Protected state by itself."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.models import Image
from app.models.base import utcnow
from tests.browser import login
from tests.tasks.conftest import add_image

pytestmark = pytest.mark.browser


@pytest.fixture
def image_id(live):
    """A placeholder image 'lab' with its default profile."""
    with live.seed():
        image = add_image("lab")
        return image.id


def test_image_page_refreshes_size_last_upload_and_protected(live, page, image_id):
    login(page, f"{live.url}/images/{image_id}")
    summary = page.locator("#image-summary")
    expect(summary.locator("[data-field=size]")).to_have_text("0 B")
    expect(page.locator("#image-badges")).not_to_contain_text("protected")
    with live.seed() as session:
        image = session.get(Image, image_id)
        image.size_on_server_bytes, image.protected = 5 << 30, True
        image.last_upload_at = utcnow()
    expect(summary.locator("[data-field=size]")).to_have_text("5.0 GiB")
    expect(summary.locator("[data-field=last-upload]")).not_to_have_text("—")
    expect(page.locator("#image-badges")).to_contain_text("protected")
