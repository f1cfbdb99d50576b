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
    sort: str = "name"
    descending: bool = False
    page: int = 1


@dataclass
class SearchResult:
    """One page of images with their last use, and how many matched in all."""

    images: list  # Image objects, or rows of ROW_COLUMNS
    last_used: dict[int, datetime]
    total: int


LIMIT_MAX = 1_000_000  # more rows than any page shows; larger numbers overflow SQL integers


def parse_limit(value: str | None, default: int | None = 25) -> int | None:
    """Turn '25'/'50'/'100'/'all' (or another positive number) into a row limit."""
    if value in (None, ""):
        return default
    if value == "all":
        return None
    if not value.isdigit() or not 1 <= int(value) <= LIMIT_MAX:
        raise ValueError(f"limit is a number from 1 to {LIMIT_MAX} or 'all'")
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
               Image.size_on_server_bytes, Image.protected, Image.enabled, Image.last_upload_at,
               # the start of a damaged image's problems, for its badge ("" when sound)
               func.substr(Image.damaged, 1, 300).label("damaged"))
# The columns the list can be sorted by (name is the tie-breaker of every order).
SORTS = {"name": Image.name, "size": Image.size_on_server_bytes,
         "last_upload": Image.last_upload_at, "environment": Image.environment,
         "type": Image.image_type}


def search_images(params: SearchParams, rows_only: bool = False) -> SearchResult:
    """Run a search: one page of matching images in the asked order, the count, the last use.

    With `rows_only` the images are light rows holding only ROW_COLUMNS (the search page).
    """
    stmt = filtered_statement(params)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    column = SORTS.get(params.sort, Image.name)
    order = column.desc() if params.descending else column.asc()
    page = stmt.order_by(order, Image.name) if column is not Image.name else stmt.order_by(order)
    if params.limit is not None:
        page = page.limit(params.limit).offset((max(params.page, 1) - 1) * params.limit)
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


def profile_counts(image_ids: list[int]) -> dict[int, int]:
    """Return how many profiles each of these images has, in one query."""
    from app.models import ImageProfile

    if not image_ids:
        return {}
    stmt = (select(ImageProfile.image_id, func.count()).where(ImageProfile.image_id.in_(image_ids))
            .group_by(ImageProfile.image_id))
    return dict(db.session.execute(stmt).all())


def category_names(image_ids: list[int]) -> dict[int, list[str]]:
    """Return each image's category names (sorted), in one query."""
    if not image_ids:
        return {}
    link = image_categories.c
    stmt = (select(link.image_id, Category.name).join(Category, Category.id == link.category_id)
            .where(link.image_id.in_(image_ids)).order_by(Category.name))
    names: dict[int, list[str]] = {}
    for image_id, name in db.session.execute(stmt):
        names.setdefault(image_id, []).append(name)
    return names


def parse_params(args) -> SearchParams:
    """Read search parameters from a query string; ValueError says which one is wrong."""
    try:
        limit = parse_limit(args.get("limit"))
    except ValueError as exc:
        raise ValueError(f"limit={args.get('limit')!r}: the limit is a positive number "
                         "or 'all'.") from exc
    ids = []
    for value in args.getlist("category"):
        if not value.isdigit():
            raise ValueError(f"category={value!r}: categories are given by their number.")
        ids.append(int(value))
    mode = args.get("mode") or "any"
    if mode not in CATEGORY_MODES:
        raise ValueError(f"mode={mode!r}: the match mode is one of {', '.join(CATEGORY_MODES)}.")
    sort = args.get("sort") or "name"
    if sort not in SORTS:
        raise ValueError(f"sort={sort!r}: sort by one of {', '.join(SORTS)}.")
    direction = args.get("dir") or "asc"
    if direction not in ("asc", "desc"):
        raise ValueError(f"dir={direction!r}: the direction is asc or desc.")
    page = args.get("page") or "1"
    if not page.isdigit() or int(page) < 1:
        raise ValueError(f"page={page!r}: the page is a positive number.")
    return SearchParams(q=args.get("q", "").strip(), category_ids=ids, mode=mode, limit=limit,
                        sort=sort, descending=direction == "desc", page=int(page))
