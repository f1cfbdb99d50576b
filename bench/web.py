"""Search page and API search at 100,000 images: p50/p95 server time per limit.

Seeds a temporary SQLite database (or the one in --database-url) with images, categories,
category links and usage history by bulk insert, then times requests through the WSGI app
in-process, so the figures are server time (query + rendering), not network time.

    .venv/bin/python bench/web.py [--images 100000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CATEGORIES = 20
BATCH = 10_000


def seed(db, images: int, rng: random.Random) -> None:
    """Bulk insert images, categories, 0-3 categories per image and usage history."""
    from sqlalchemy import insert

    from app.models import Category, History, Image
    from app.models.images import image_categories

    now = datetime(2026, 1, 1)
    db.session.execute(insert(Category), [
        {"id": i + 1, "name": f"category-{i:02d}", "description": ""} for i in range(CATEGORIES)
    ])
    for start in range(0, images, BATCH):
        rows, links, events = [], [], []
        for image_id in range(start + 1, min(start + BATCH, images) + 1):
            winpe = image_id % 3 == 0
            rows.append({
                "id": image_id, "name": f"image-{image_id:06d}", "description": "",
                "environment": "winpe" if winpe else "linux",
                "image_type": rng.choice(("block", "file", "both") if winpe else ("block", "file")),
                "enabled": image_id % 17 != 0, "protected": image_id % 5 == 0,
                "on_demand": True, "replication_mode": "global",
                "size_on_server_bytes": rng.randrange(1 << 30, 200 << 30),
                "size_on_client_bytes": 0, "schema_status": "none", "schema_error": "",
                "created_at": now, "updated_at": now,
            })
            for category_id in rng.sample(range(1, CATEGORIES + 1), rng.randrange(0, 4)):
                links.append({"image_id": image_id, "category_id": category_id})
            if image_id % 2 == 0:
                events.append({
                    "object_type": "image", "object_id": image_id,
                    "action": rng.choice(("deploy", "upload", "multicast", "update")),
                    "username": "bench", "data_json": "{}",
                    "created_at": now + timedelta(minutes=rng.randrange(500_000)),
                })
        db.session.execute(insert(Image), rows)
        if links:
            db.session.execute(insert(image_categories), links)
        db.session.execute(insert(History), events)
    db.session.commit()


def measure(client, url: str, repeat: int, headers: dict | None = None) -> tuple[float, float]:
    """Return p50 and p95 in milliseconds of GET url, after one warm-up request."""
    response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.status_code)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        response.get_data()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


def main() -> None:
    """Seed, measure every limit for the page, its htmx partial and the API; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="an empty database to use")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="castor-bench-"))
    os.environ["CASTOR_INSTANCE_PATH"] = str(workdir / "instance")
    from app import create_app
    from app.extensions import db
    from app.models import ApiToken, User

    app = create_app({
        "SECRET_KEY": "bench", "STORAGE_PATH": str(workdir / "storage"),
        "SQLALCHEMY_DATABASE_URI": args.database_url or f"sqlite:///{workdir / 'bench.db'}",
    })
    rng = random.Random(42)
    with app.app_context():
        db.create_all()
        started = time.perf_counter()
        seed(db, args.images, rng)
        seeded = time.perf_counter() - started
        user = User(username="bench", is_admin=True)
        user.set_password("bench-password")
        token, clear = ApiToken.issue(user, "bench")
        db.session.add_all([user, token])
        db.session.commit()
        user_id = user.id
    print(f"seeded {args.images:,} images, {CATEGORIES} categories in {seeded:.1f} s "
          f"({app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]})")

    client = app.test_client()
    with client.session_transaction() as session:
        session["user_id"] = user_id
    api = {"Authorization": f"Bearer {clear}"}
    partial = {"HX-Request": "true"}
    filters = (("no filter", ""), ("name q=12", "q=12"),
               ("2 categories, and", "category=3&category=7&mode=and"))
    print(f"\n{'what':<16} {'filter':<18} {'limit':>5} {'rows':>7} {'p50 ms':>9} {'p95 ms':>9}")
    for limit in ("25", "50", "100", "all"):
        repeat = args.repeat if limit != "all" else max(3, args.repeat // 5)
        for label, query in filters:
            cases = (("page", "/images/", None), ("htmx rows", "/images/", partial),
                     ("API", "/api/v1/images", api))
            for what, path, headers in cases:
                if what == "API" and "category=" in query:
                    query_used = "category=category-02&category=category-06&mode=and"
                else:
                    query_used = query
                url = f"{path}?{query_used}&limit={limit}"
                rows = None
                if what == "API":
                    rows = len(client.get(url, headers=api).json["images"])
                p50, p95 = measure(client, url, repeat, headers)
                print(f"{what:<16} {label:<18} {limit:>5} {rows if rows is not None else '':>7} "
                      f"{p50:>9.1f} {p95:>9.1f}")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    main()
