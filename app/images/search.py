"""Image search shared by the search page and the API: filters, limit, last used.

Category modes:
- ``any``: images carrying at least one of the chosen categories;
- ``and``: images carrying every chosen category;
- ``or``: like ``any``, plus images that carry no category at all.
With no category chosen the mode does not filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm.attributes import set_committed_value

from app.extensions import db
from app.models import Category, History, Image
from app.models.images import image_categories

CATEGORY_MODES = ("any", "and", "or")
LIMITS = ("25", "50", "100", "all")
USE_ACTIONS = ("deploy", "upload", "multicast")
# Above this many ids an IN list gets slower than grouping the whole history once.
IN_LIST_MAX = 500


@dataclass
class SearchParams:
    """What the user asked for."""

    q: str = ""
    category_ids: list[int] = field(default_factory=list)
    mode: str = "any"
    limit: int | None = 25


@dataclass
class SearchResult:
    """One page of images with their last use, and how many matched in all."""

    images: list  # Image objects, or rows of ROW_COLUMNS
    last_used: dict[int, datetime]
    total: int


def parse_limit(value: str | None, default: int | None = 25) -> int | None:
    """Turn '25'/'50'/'100'/'all' (or another positive number) into a row limit."""
    if value in (None, ""):
        return default
    if value == "all":
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError("limit is a positive number or 'all'")
    return int(value)


def _escape_like(text: str) -> str:
    """Escape LIKE wildcards so a search for '_' finds underscores only."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered_statement(params: SearchParams):
    """Return the SELECT of matching images (unordered, unlimited)."""
    stmt = select(Image)
    if params.q:
        pattern = f"%{_escape_like(params.q)}%"
        if db.engine.dialect.name == "sqlite":
            # SQLite's LIKE already ignores ASCII case (names are ASCII); ILIKE would add
            # lower() on every row and double the scan time.
            stmt = stmt.where(Image.name.like(pattern, escape="\\"))
        else:
            stmt = stmt.where(Image.name.ilike(pattern, escape="\\"))
    ids = sorted(set(params.category_ids))
    if ids:
        link = image_categories.c
        has_chosen = exists().where(link.image_id == Image.id, link.category_id.in_(ids))
        if params.mode == "and":
            having_all = (
                select(link.image_id).where(link.category_id.in_(ids))
                .group_by(link.image_id)
                .having(func.count(func.distinct(link.category_id)) == len(ids))
            )
            stmt = stmt.where(Image.id.in_(having_all))
        elif params.mode == "or":
            stmt = stmt.where(or_(has_chosen, ~exists().where(link.image_id == Image.id)))
        else:
            stmt = stmt.where(has_chosen)
    return stmt


def last_used_for(image_ids: list[int] | None) -> dict[int, datetime]:
    """Return the newest deploy/upload/multicast time per image, in one query.

    `image_ids=None` means every image (used for the "all" limit).
    """
    stmt = (
        select(History.object_id, func.max(History.created_at))
        .where(History.object_type == "image", History.action.in_(USE_ACTIONS))
        .group_by(History.object_id)
    )
    if image_ids is not None:
        if not image_ids:
            return {}
        stmt = stmt.where(History.object_id.in_(image_ids))
    return {image_id: when for image_id, when in db.session.execute(stmt)}


# What a results row shows; loaded as plain rows, several times faster than whole images.
ROW_COLUMNS = (Image.id, Image.name, Image.environment, Image.image_type,
               Image.size_on_server_bytes, Image.protected, Image.enabled)


def search_images(params: SearchParams, rows_only: bool = False) -> SearchResult:
    """Run a search: matching images ordered by name, their count and their last use.

    With `rows_only` the images are light rows holding only ROW_COLUMNS (the search page).
    """
    stmt = filtered_statement(params)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    page = stmt.order_by(Image.name)
    if params.limit is not None:
        page = page.limit(params.limit)
    if rows_only:
        images = list(db.session.execute(page.with_only_columns(*ROW_COLUMNS)))
    else:
        images = list(db.session.scalars(page))
    ids = [image.id for image in images]
    everything = params.limit is None and len(ids) > IN_LIST_MAX
    last_used = last_used_for(None if everything else ids)
    return SearchResult(images=images, last_used=last_used, total=total or 0)


def preload_categories(images: list[Image]) -> None:
    """Fill each image's categories in a few queries, so to_dict() does not query per image."""
    link = image_categories.c
    ids = [image.id for image in images]
    if not ids:
        return
    # The global category list is short: load it once and join in Python.
    categories = {c.id: c for c in db.session.scalars(select(Category))}
    by_image: dict[int, list[Category]] = {}
    for start in range(0, len(ids), IN_LIST_MAX):
        chunk = ids[start:start + IN_LIST_MAX]
        stmt = select(link.image_id, link.category_id).where(link.image_id.in_(chunk))
        for image_id, category_id in db.session.execute(stmt):
            by_image.setdefault(image_id, []).append(categories[category_id])
    for image in images:
        set_committed_value(image, "categories", by_image.get(image.id, []))
