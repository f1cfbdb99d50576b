"""The Categories page: add, rename, refuse duplicates and bad names, delete."""

from __future__ import annotations

from app.extensions import db as _db
from app.models import Category


def test_categories_page(client, app):
    assert client.post("/categories/", data={"name": "Lab", "description": "x"}).status_code == 303
    duplicate = client.post("/categories/", data={"name": "lab"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.get_data(as_text=True)
    bad = client.post("/categories/", data={"name": "a/b"})
    assert bad.status_code == 400
    with app.app_context():
        category_id = _db.session.scalar(_db.select(Category.id))
    assert client.post(f"/categories/{category_id}",
                       data={"name": "Lab2", "description": ""}).status_code == 303
    page = client.get("/categories/").get_data(as_text=True)
    assert "Lab2" in page
    deleted = client.post(f"/categories/{category_id}/delete", data={"confirmed": "1"})
    assert deleted.status_code == 303
    with app.app_context():
        assert _db.session.scalar(_db.select(Category)) is None
