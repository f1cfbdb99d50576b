"""Category workflows shared by the Categories page and the API."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.images import rules
from app.images.service import ImageError
from app.models import Category, record_history
from app.models.images import image_categories


def category_to_dict(category: Category, image_count: int | None = None) -> dict:
    """Return a category as plain data for the API and history."""
    data = {"id": category.id, "name": category.name, "description": category.description}
    if image_count is not None:
        data["image_count"] = image_count
    return data


def image_counts() -> dict[int, int]:
    """Return how many images carry each category, in one query."""
    link = image_categories.c
    stmt = select(link.category_id, func.count()).group_by(link.category_id)
    return dict(db.session.execute(stmt).all())


def _check_fields(name: str | None, description: str | None, exclude_id: int | None) -> None:
    """Refuse a bad or duplicate (any case) name and an overlong description."""
    problem = rules.category_name_problem(name)
    if problem:
        raise ImageError(problem, "name")
    problem = rules.description_problem(description)
    if problem:
        raise ImageError(problem, "description")
    stmt = select(Category.id).where(func.lower(Category.name) == name.lower())
    if exclude_id is not None:
        stmt = stmt.where(Category.id != exclude_id)
    if db.session.scalar(stmt.limit(1)) is not None:
        raise ImageError(f"A category named {name} already exists.", "name", 409)


def _commit(name: str) -> None:
    """Commit, turning a unique-name race into a 409."""
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise ImageError(f"A category named {name} already exists.", "name", 409) from exc


def create_category(name: str, description: str = "") -> Category:
    """Create a global category and record it in history."""
    _check_fields(name, description, None)
    category = Category(name=name, description=description or "")
    db.session.add(category)
    db.session.flush()
    record_history("category", category.id, "create", category_to_dict(category))
    _commit(name)
    return category


def update_category(category: Category, name: str | None = None,
                    description: str | None = None) -> Category:
    """Rename or describe a category and record it in history."""
    new_name = category.name if name is None else name
    new_description = category.description if description is None else description
    _check_fields(new_name, new_description, category.id)
    category.name = new_name
    category.description = new_description or ""
    record_history("category", category.id, "update", category_to_dict(category))
    _commit(new_name)
    return category


def delete_category(category: Category) -> None:
    """Delete a category; images lose the tag, nothing else changes."""
    record_history("category", category.id, "delete", category_to_dict(category))
    # The link rows go explicitly: SQLite does not enforce ON DELETE CASCADE by default.
    db.session.execute(delete(image_categories).where(
        image_categories.c.category_id == category.id))
    db.session.delete(category)
    db.session.commit()
