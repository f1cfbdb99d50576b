"""Image and category workflows on SQLite and PostgreSQL: rows, folders, history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.categories import domain as category_service
from app.extensions import db
from app.images import service
from app.images.search import SearchParams, search_images
from app.models import Category, History, Image, ImageProfile, record_history


def _history(image_id: int) -> list[str]:
    rows = db.session.scalars(db.select(History).filter_by(object_type="image",
                                                           object_id=image_id)
                              .order_by(History.id)).all()
    return [row.action for row in rows]


def test_create_makes_profile_folder_and_history(any_db, storage):
    image = service.create_image(storage, name="win11", environment="winpe",
                                 image_type="file", description="lab")
    assert (Path(storage) / "images" / "win11").is_dir()
    profiles = db.session.scalars(db.select(ImageProfile).filter_by(image_id=image.id)).all()
    assert [p.name for p in profiles] == ["default"]
    assert profiles[0].compression_algorithm == "gzip"  # file images default to gzip
    row = db.session.scalar(db.select(History).filter_by(object_id=image.id))
    assert row.action == "create" and json.loads(row.data_json)["name"] == "win11"


def test_block_image_default_profile_is_zstd(any_db, storage):
    image = service.create_image(storage, name="ubuntu", environment="linux",
                                 image_type="block")
    assert image.profiles[0].compression_algorithm == "zstd"


BAD_CREATE = [
    ({"name": "a/b"}, "name", 400),
    ({"name": ".."}, "name", 400),
    ({"name": "has space"}, "name", 400),
    ({"name": "wіn"}, "name", 400),
    ({"name": ""}, "name", 400),
    ({"environment": "linux", "image_type": "both"}, "type", 422),
    ({"environment": "dos"}, "environment", 400),
    ({"description": "x" * 10_000_001}, "description", 400),
    ({"replication_mode": "sometimes"}, "replication_mode", 400),
]


def test_create_refuses_bad_input_and_writes_nothing(any_db, storage):
    # One database for all cases: creating a PostgreSQL database per case is slow.
    for kwargs, field, status in BAD_CREATE:
        args = {"name": "good", "environment": "winpe", "image_type": "block", **kwargs}
        with pytest.raises(service.ImageError) as caught:
            service.create_image(storage, **args)
        assert (caught.value.field, caught.value.status) == (field, status), kwargs
        assert db.session.scalar(db.select(db.func.count()).select_from(Image)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(ImageProfile)) == 0
        images = Path(storage) / "images"
        assert not images.exists() or not any(images.iterdir())


def test_duplicate_name_ignores_case(any_db, storage):
    service.create_image(storage, name="Win11", environment="winpe", image_type="file")
    with pytest.raises(service.ImageError) as caught:
        service.create_image(storage, name="win11", environment="winpe", image_type="file")
    assert caught.value.status == 409
    assert db.session.scalar(db.select(db.func.count()).select_from(Image)) == 1


def test_orphan_folder_is_never_adopted(any_db, storage):
    (Path(storage) / "images" / "old").mkdir(parents=True)
    (Path(storage) / "images" / "old" / "hd0.img").write_bytes(b"precious")
    with pytest.raises(service.ImageError):
        service.create_image(storage, name="old", environment="linux", image_type="block")
    assert (Path(storage) / "images" / "old" / "hd0.img").read_bytes() == b"precious"


def test_rename_moves_folder_and_records_update(any_db, storage):
    image = service.create_image(storage, name="before", environment="linux",
                                 image_type="block")
    (Path(storage) / "images" / "before" / "schema.json").write_text("{}")
    service.update_image(storage, image, {"name": "after", "enabled": False})
    assert not (Path(storage) / "images" / "before").exists()
    assert (Path(storage) / "images" / "after" / "schema.json").read_text() == "{}"
    assert db.session.get(Image, image.id).enabled is False
    assert _history(image.id) == ["create", "update"]


def test_rename_onto_existing_name_is_refused(any_db, storage):
    service.create_image(storage, name="one", environment="linux", image_type="block")
    two = service.create_image(storage, name="two", environment="linux", image_type="block")
    with pytest.raises(service.ImageError) as caught:
        service.update_image(storage, two, {"name": "ONE"})
    assert caught.value.status == 409
    db.session.rollback()
    assert db.session.get(Image, two.id).name == "two"
    assert (Path(storage) / "images" / "two").is_dir()


@pytest.mark.parametrize("changes", [{"environment": "linux"}, {"type": "block"}])
def test_environment_and_type_are_fixed(any_db, storage, changes):
    image = service.create_image(storage, name="fixed", environment="winpe",
                                 image_type="file")
    with pytest.raises(service.ImageError) as caught:
        service.update_image(storage, image, changes)
    assert caught.value.field in ("environment", "type")
    db.session.rollback()
    image = db.session.get(Image, image.id)
    assert (image.environment, image.image_type) == ("winpe", "file")
    # Repeating the current values is fine (a form sends them back unchanged).
    service.update_image(storage, image, {"environment": "winpe", "type": "file"})


def test_delete_removes_rows_and_folder_but_refuses_protected(any_db, storage):
    keep = service.create_image(storage, name="keep", environment="linux", image_type="block",
                                protected=True)
    drop = service.create_image(storage, name="drop", environment="linux", image_type="block")
    drop_id = drop.id
    with pytest.raises(service.ImageError) as caught:
        service.delete_image(storage, keep)
    assert caught.value.status == 409
    service.delete_image(storage, drop)
    assert db.session.get(Image, drop_id) is None
    assert db.session.scalar(db.select(ImageProfile).filter_by(image_id=drop_id)) is None
    assert not (Path(storage) / "images" / "drop").exists()
    assert (Path(storage) / "images" / "keep").is_dir()
    assert _history(drop_id) == ["create", "delete"]


def test_bulk_delete_skips_protected(any_db, storage):
    ids = [service.create_image(storage, name=n, environment="linux", image_type="block",
                                protected=(n == "p")).id for n in ("a", "b", "p")]
    deleted, skipped, sent = service.bulk_delete(storage, ids + [999999])
    assert (deleted, skipped) == (["a", "b"], ["p"])
    assert sent.notices() == []  # no peers: nothing to send on
    assert [i.name for i in db.session.scalars(db.select(Image))] == ["p"]


def test_unknown_categories_are_refused(any_db, storage):
    category_service.create_category("lab")
    with pytest.raises(service.ImageError) as caught:
        service.categories_by_names(["lab", "nope"])
    assert caught.value.status == 422 and "nope" in caught.value.message


def _tagged(storage, name: str, *tags: str) -> None:
    cats = service.categories_by_names(list(tags))
    service.create_image(storage, name=name, environment="linux", image_type="block",
                         categories=cats)


def test_search_modes_and_last_used(any_db, storage):
    for tag in ("win", "lab", "old"):
        category_service.create_category(tag)
    _tagged(storage, "both", "win", "lab")
    _tagged(storage, "winonly", "win")
    _tagged(storage, "labonly", "lab")
    _tagged(storage, "untagged")
    ids = {c.name: c.id for c in db.session.scalars(db.select(Category))}

    def names(**kw) -> list[str]:
        return [i.name for i in search_images(SearchParams(**kw)).images]

    chosen = [ids["win"], ids["lab"]]
    assert names() == ["both", "labonly", "untagged", "winonly"]
    assert names(category_ids=chosen, mode="any") == ["both", "labonly", "winonly"]
    assert names(category_ids=chosen, mode="and") == ["both"]
    assert names(category_ids=chosen, mode="or") == ["both", "labonly", "untagged", "winonly"]
    assert names(category_ids=[ids["old"]], mode="or") == ["untagged"]
    assert names(q="ONLY") == ["labonly", "winonly"]
    assert names(q="_") == []  # LIKE wildcards are escaped
    assert names(limit=2) == ["both", "labonly"]
    assert search_images(SearchParams(limit=2)).total == 4

    image = db.session.scalar(db.select(Image).filter_by(name="both"))
    record_history("image", image.id, "upload", {})
    record_history("image", image.id, "update", {})
    db.session.commit()
    result = search_images(SearchParams(limit=None))
    assert set(result.last_used) == {image.id}


def test_category_rename_and_delete_untags_images(any_db, storage):
    lab = category_service.create_category("lab", "room 2")
    _tagged(storage, "tagged", "lab")
    with pytest.raises(service.ImageError):
        category_service.create_category("LAB")
    category_service.update_category(lab, name="lab2")
    assert db.session.scalar(db.select(Image).filter_by(name="tagged")).to_dict()[
        "categories"] == ["lab2"]
    category_service.delete_category(lab)
    db.session.expire_all()
    assert db.session.scalar(db.select(Image).filter_by(name="tagged")).categories == []
    assert category_service.image_counts() == {}
