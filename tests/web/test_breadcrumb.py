"""Each image tab and profile tab says where it is: Images › image › [Profiles › profile ›] tab."""

from __future__ import annotations

from html.parser import HTMLParser

from flask import url_for

from app.extensions import db as _db
from app.profiles.options import TABS, tab_visible
from app.profiles.rendering import TAB_LABELS
from tests.tasks.conftest import add_image

IMAGE_TABS = [("General", "images.general"), ("Profiles", "profiles.index"),
              ("Replication", "replication.image_replication"),
              ("Categories", "images.categories"), ("Schema", "images.schema"),
              ("History", "images.history")]


class Breadcrumb(HTMLParser):
    """Collect the links of nav#breadcrumb and the text of its current step."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.current = ""
        self.count = 0
        self._depth = 0  # > 0 while inside the breadcrumb nav
        self._href: str | None = None
        self._in_current = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "nav" and attrs.get("id") == "breadcrumb":
            self.count += 1
            self._depth = 1
        elif self._depth and tag == "nav":
            self._depth += 1
        elif self._depth and tag == "a":
            self._href = attrs["href"]
            self.links.append(("", self._href))
        elif self._depth and tag == "li" and attrs.get("aria-current") == "page":
            self._in_current = True

    def handle_endtag(self, tag):
        if self._depth and tag == "nav":
            self._depth -= 1
        elif tag == "a" and self._href is not None:
            self._href = None
        elif tag == "li":
            self._in_current = False

    def handle_data(self, data):
        if not self._depth or data.strip() in ("", "›"):
            return
        if self._href is not None:
            label, href = self.links[-1]
            self.links[-1] = (label + data.strip(), href)
        elif self._in_current:
            self.current += data.strip()


def _breadcrumb(client, url: str) -> Breadcrumb:
    page = client.get(url)
    assert page.status_code == 200, url
    crumb = Breadcrumb()
    crumb.feed(page.get_data(as_text=True))
    assert crumb.count == 1, f"{url} has {crumb.count} breadcrumbs"
    return crumb


def _follow(client, crumb: Breadcrumb) -> None:
    for label, href in crumb.links:
        assert client.get(href).status_code == 200, (label, href)


def test_every_image_tab_and_profile_tab_shows_its_breadcrumb(app, client):
    with app.app_context():
        image = add_image("lab-image")
        _db.session.commit()
        image_id, profile = image.id, image.profiles[0]
        profile_id, profile_name, environment = profile.id, profile.name, image.environment
    with app.test_request_context():
        images = url_for("images.search")
        general = url_for("images.general", image_id=image_id)
        profiles = url_for("profiles.index", image_id=image_id)
        profile_url = url_for("profiles.tab", image_id=image_id, profile_id=profile_id,
                              tab="general")
        image_tabs = [(label, url_for(endpoint, image_id=image_id))
                      for label, endpoint in IMAGE_TABS if endpoint in app.view_functions]
        profile_tabs = [(TAB_LABELS[tab], url_for("profiles.tab", image_id=image_id,
                                                  profile_id=profile_id, tab=tab))
                        for tab in TABS if tab_visible(tab, environment)]
    assert len(image_tabs) >= 5 and len(profile_tabs) >= 8
    for label, url in image_tabs:
        crumb = _breadcrumb(client, url)
        assert crumb.links == [("Images", images), ("lab-image", general)], url
        assert crumb.current == label, url
        _follow(client, crumb)
    for label, url in profile_tabs:
        crumb = _breadcrumb(client, url)
        assert crumb.links == [("Images", images), ("lab-image", general),
                               ("Profiles", profiles), (profile_name, profile_url)], url
        assert crumb.current == label, url
        _follow(client, crumb)


def test_a_profile_tab_swapped_by_htmx_refreshes_the_breadcrumb(app, client):
    with app.app_context():
        image = add_image("lab-image")
        _db.session.commit()
        url = f"/images/{image.id}/profiles/{image.profiles[0].id}/deploy"
    partial = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in partial
    assert 'id="breadcrumb" aria-label="Breadcrumb" hx-swap-oob="true"' in partial
    crumb = Breadcrumb()
    crumb.feed(partial)
    assert crumb.current == "Deploy Options"
