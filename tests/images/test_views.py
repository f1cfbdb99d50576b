"""The image pages through the test client: search, new, general, tabs, bad input, CSRF."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.categories import domain as category_service
from app.extensions import db as _db
from app.images import service
from app.models import Image, record_history
from tests.conftest import create_user, make_app, sign_in


def _make(app, name: str, **kwargs) -> int:
    with app.app_context():
        args = {"environment": "linux", "image_type": "block", **kwargs}
        return service.create_image(app.config["STORAGE_PATH"], name=name, **args).id


def _new(client, **fields):
    data = {"name": "img", "environment": "winpe", "image_type": "file", "description": "",
            "on_demand": "y", **fields}
    return client.post("/images/new", data=data)


def test_new_image_creates_and_redirects(client, app):
    response = _new(client, name="win11", protected="y")
    assert response.status_code == 303
    image_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        image = _db.session.get(Image, image_id)
        assert (image.name, image.environment, image.image_type) == ("win11", "winpe", "file")
        assert image.protected and image.on_demand and image.enabled
    assert (Path(app.config["STORAGE_PATH"]) / "images" / "win11").is_dir()
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Image win11 created." in page and "WinPE (recommended)" in page


@pytest.mark.parametrize(("fields", "message"), [
    ({"name": "a/b"}, "Use only letters"),
    ({"name": ".."}, "Use only letters"),
    ({"name": "two words"}, "Use only letters"),
    ({"name": "wіn11"}, "Use only letters"),
    ({"name": ""}, "The name is required."),
    ({"environment": "linux", "image_type": "both"}, "Both is only available for the WinPE"),
    ({"environment": "beos"}, "Not a valid choice"),
    ({"description": "d" * 10_001}, "at most 10,000 characters"),
])
def test_new_image_bad_input_shows_message_and_writes_nothing(client, app, fields, message):
    response = _new(client, **fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert _db.session.scalar(_db.select(_db.func.count()).select_from(Image)) == 0


def test_new_image_duplicate_name(client, app):
    _make(app, "Dup")
    response = _new(client, name="dup")
    assert response.status_code == 400
    assert "An image named dup already exists." in response.get_data(as_text=True)


def test_ten_megabyte_description_gets_a_clear_answer(client, app):
    response = _new(client, name="huge", description="x" * 10_000_000)
    assert response.status_code in (400, 413)
    assert "10,000 characters" in response.get_data(as_text=True)
    with app.app_context():
        assert _db.session.scalar(_db.select(Image).filter_by(name="huge")) is None


def test_general_updates_and_renames_folder(client, app):
    image_id = _make(app, "before")
    response = client.post(f"/images/{image_id}", data={
        "name": "after", "environment": "linux", "image_type": "block",
        "description": "new text", "on_demand": "y"})
    assert response.status_code == 303
    store = Path(app.config["STORAGE_PATH"]) / "images"
    assert (store / "after").is_dir() and not (store / "before").exists()
    with app.app_context():
        image = _db.session.get(Image, image_id)
        assert (image.name, image.description, image.enabled) == ("after", "new text", False)


@pytest.mark.parametrize(("field", "value"), [("environment", "winpe"), ("image_type", "file")])
def test_tampered_environment_or_type_is_refused(client, app, field, value):
    image_id = _make(app, "fixed")
    data = {"name": "fixed", "environment": "linux", "image_type": "block", field: value}
    response = client.post(f"/images/{image_id}", data=data)
    assert response.status_code == 400
    assert "can&#39;t be changed after the image is created" in response.get_data(as_text=True)
    with app.app_context():
        image = _db.session.get(Image, image_id)
        assert (image.environment, image.image_type) == ("linux", "block")


def test_delete_refuses_protected(client, app):
    keep = _make(app, "keep", protected=True)
    drop = _make(app, "drop")
    response = client.post(f"/images/{keep}/delete", follow_redirects=True)
    assert "keep is protected" in response.get_data(as_text=True)
    confirm = client.post(f"/images/{drop}/delete")
    assert confirm.status_code == 200 and "Delete image drop?" in confirm.text  # no JS: confirm
    response = client.post(f"/images/{drop}/delete", data={"confirmed": "1"})
    assert response.headers["Location"].endswith("/images/")
    with app.app_context():
        assert [i.name for i in _db.session.scalars(_db.select(Image))] == ["keep"]


def test_bulk_delete_reports_deleted_and_skipped(client, app):
    ids = [_make(app, n, protected=(n == "gold")) for n in ("alpha", "beta", "gold")]
    response = client.post("/images/delete", data={"image_ids": [str(i) for i in ids],
                                                   "next": "/images/?q=a", "confirmed": "1"})
    assert response.status_code == 303 and response.headers["Location"] == "/images/?q=a"
    page = client.get("/images/").get_data(as_text=True)
    assert "Deleted 2 image(s): alpha, beta." in page
    assert "Skipped protected image(s): gold." in page


def test_search_page_and_partial(client, app):
    with app.app_context():
        category_service.create_category("lab")
    ids = [_make(app, n) for n in ("ubuntu", "debian", "win10")]
    with app.app_context():
        record_history("image", ids[0], "deploy", {})
        _db.session.commit()
    page = client.get("/images/?q=u").get_data(as_text=True)
    assert 'hx-trigger="input changed delay:250ms, search"' in page and "<html" in page
    assert "ubuntu" in page and "debian" not in page
    partial = client.get("/images/?q=&limit=all", headers={"HX-Request": "true"})
    text = partial.get_data(as_text=True)
    assert "<html" not in text and "Showing 3 of 3 images." in text
    assert re.search(r">ubuntu<.*?\d{4}-\d\d-\d\d \d\d:\d\d", text, re.S)
    assert text.count(">never<") == 2 + 3  # last used (2 of 3), last upload (3 of 3)
    assert "HX-Request" in partial.headers["Vary"]


@pytest.mark.parametrize("query, words", [
    ("limit=abc", "limit is a positive number"), ("mode=xor", "match mode"),
    ("category=abc", "by their number"), ("category=99", "no category has the number 99"),
    ("sort=colour", "sort by one of"), ("page=0", "page is a positive number")])
def test_search_refuses_bad_parameters_in_words(client, app, query, words):
    _make(app, "x1")
    response = client.get(f"/images/?{query}")
    assert response.status_code == 400 and words in response.text
    assert '<nav>' in response.text or 'class="topbar"' in response.text


def test_search_sorts_and_pages_past_the_limit(client, app):
    for number in range(30):
        _make(app, f"img-{number:02d}")
    first = client.get("/images/?limit=25").text
    assert "Showing 1–25 of 30 images." in first and 'rel="next"' in first
    second = client.get("/images/?limit=25&page=2").text
    assert "Showing 26–30 of 30 images." in second and "img-29" in second
    assert "img-00" not in second
    descending = client.get("/images/?sort=name&dir=desc&limit=25").text
    assert descending.index("img-29") < descending.index("img-28")


def test_tabs_link_only_existing_endpoints(client, app):
    image_id = _make(app, "tabs")
    page = client.get(f"/images/{image_id}/history").get_data(as_text=True)
    nav = page[page.index('<nav class="tabs"'):]
    nav = nav[:nav.index("</nav>")]
    for label in ("General", "Categories", "Schema", "History"):
        assert f">{label}</a>" in nav
    assert ('>Replication</a>' in nav) == ("replication.image_replication" in app.view_functions)
    assert ('>Profiles</a>' in nav) == ("profiles.index" in app.view_functions)
    assert ">Created<" in page


def test_categories_tab_sets_and_refuses_unknown(client, app):
    image_id = _make(app, "tagme")
    with app.app_context():
        lab_id = category_service.create_category("lab").id
    assert client.post(f"/images/{image_id}/categories",
                       data={"category_ids": [str(lab_id)]}).status_code == 303
    with app.app_context():
        assert _db.session.get(Image, image_id).to_dict()["categories"] == ["lab"]
    refused = client.post(f"/images/{image_id}/categories", data={"category_ids": ["9999"]})
    assert refused.status_code == 422 and "Unknown category" in refused.get_data(as_text=True)


SCHEMA = {
    "format": "castor-schema", "version": 1, "image_type": "block",
    "disks": [{
        "index": 0, "name": "sda", "size_bytes": 4294967296, "logical_sector_size": 512,
        "physical_sector_size": 4096, "table": "gpt", "disk_id": "5C2D7A46-0000", "partitions": [
            {"number": 1, "start_sector": 2048, "size_sectors": 1048576,
             "type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "name": "EFI", "role": "primary",
             "filesystem": {"type": "vfat", "uuid": "1A2B-3C4D", "label": "ESP",
                            "volume_bytes": 536870912, "used_bytes": 1048576,
                            "min_bytes": 536870912, "shrunk": False},
             "efi_boot": {"label": "Linux Boot Manager", "loader": "\\EFI\\boot.efi"}},
            {"number": 2, "start_sector": 1050624, "size_sectors": 7337984, "type": "8e",
             "role": "primary", "filesystem": None, "lvm_vg": "vg0"},
        ],
        "volume_groups": [{"name": "vg0", "pv_partition": 2, "size_bytes": 3757047808,
                           "logical_volumes": [{"name": "root", "size_bytes": 2147483648,
                                                "filesystem": {"type": "ext4", "shrunk": True,
                                                               "volume_bytes": 1073741824}}]}],
    }],
}


def test_schema_tab_empty_then_tables_and_download(client, app):
    image_id = _make(app, "schemed")
    empty = client.get(f"/images/{image_id}/schema").get_data(as_text=True)
    assert "No schema yet: upload the image first" in empty
    assert client.get(f"/images/{image_id}/schema.json").status_code == 404
    with app.app_context():
        _db.session.get(Image, image_id).schema_json = json.dumps(SCHEMA)
        _db.session.commit()
    page = client.get(f"/images/{image_id}/schema").get_data(as_text=True)
    for text in ("4.0 GiB", "512.0 MiB", "EFI System", "vfat", "ESP", "Linux Boot Manager",
                 "LVM volume group vg0", "root", "ext4", "shrunk", "Linux LVM"):
        assert text in page, text
    download = client.get(f"/images/{image_id}/schema.json")
    assert download.json == SCHEMA
    assert "attachment" in download.headers["Content-Disposition"]


def test_missing_image_is_404(client):
    for path in ("/images/999", "/images/999/schema", "/images/999/history",
                 "/images/999/categories"):
        assert client.get(path).status_code == 404


def test_missing_csrf_token_is_refused(tmp_path):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    user_id = create_user(app)
    client = app.test_client()
    sign_in(app, client, user_id)
    data = {"name": "nocsrf", "environment": "linux", "image_type": "block"}
    assert client.post("/images/new", data=data).status_code == 400
    assert client.post("/images/delete", data={"image_ids": ["1"]}).status_code == 400
    assert client.post("/categories/", data={"name": "x"}).status_code == 400
    with app.app_context():
        assert _db.session.scalar(_db.select(_db.func.count()).select_from(Image)) == 0
    # With the token from the page it works.
    page = client.get("/images/new").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert client.post("/images/new", data={**data, "csrf_token": token}).status_code == 303
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def test_bulk_delete_of_nothing_deletable_is_refused_without_a_confirm_page(client, app):
    gold = _make(app, "gold", protected=True)
    for data, message in (({"image_ids": [str(gold)]}, "Nothing deleted: gold is protected."),
                          ({"image_ids": ["999"]}, "no images were selected"),
                          ({}, "no images were selected")):
        answer = client.post("/images/delete", data={**data, "next": "/images/?q=g"})
        assert answer.status_code == 303 and answer.headers["Location"] == "/images/?q=g"
        assert message in client.get("/images/?q=g").get_data(as_text=True)
    with app.app_context():
        assert [i.name for i in _db.session.scalars(_db.select(Image))] == ["gold"]
