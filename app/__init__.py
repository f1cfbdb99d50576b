"""Castor: an OS imaging server. The app factory lives here."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from flask import Flask

from app import auth, headers, htmx, vault, web_errors
from app.api import errors as api_errors
from app.config import load_config
from app.extensions import csrf, db, migrate

ROOT = Path(__file__).resolve().parent.parent

# Each feature is a module (or package) exposing a blueprint named `bp`.
BLUEPRINTS = (
    "app.auth",
    "app.dashboard",
    "app.images.views",
    "app.categories.views",
    "app.profiles.views",
    "app.modules.views",
    "app.computers.views",
    "app.tasks.views",
    "app.boot",
    "app.multicast.views",
    "app.servers.views",
    "app.replication.views",
    "app.admin",
    "app.modules.api",
    "app.api.images",
    "app.api.profiles",
    "app.api.plan",
    "app.api.client",
    "app.api.client_io",
    "app.api.multicast",
    "app.api.replication",
    "app.api.replication_servers",
    "app.api.tasks",
    "app.api.computers",
    "app.api.openapi",
)

NAV = (
    ("Dashboard", "dashboard.index"), ("Images", "images.search"), ("Modules", "modules.index"),
    ("Computers", "computers.index"),
    ("Tasks", "tasks.index"), ("Multicast", "multicast.index"), ("Servers", "servers.index"),
    ("Categories", "categories.index"), ("Admin", "admin.index"),
)


def create_app(config: dict | None = None) -> Flask:
    """Build a Castor app; `config` overrides what the environment gives."""
    instance_path = Path(os.environ.get("CASTOR_INSTANCE_PATH", ROOT / "instance"))
    app = Flask(
        __name__,
        instance_path=str(instance_path.resolve()),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(load_config(Path(app.instance_path)))
    if config:
        app.config.update(config)
    vault.secure_instance(app)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    htmx.init_app(app)
    auth.init_app(app)
    headers.init_app(app)
    web_errors.init_app(app)
    api_errors.init_app(app)  # before the blueprints: it sets the id converter

    for dotted in BLUEPRINTS:
        module = importlib.import_module(dotted)
        app.register_blueprint(module.bp)
        if module.bp.name.startswith("api_"):
            # API calls authenticate with tokens or signatures, not a session cookie.
            csrf.exempt(module.bp)

    from app.filters import register_filters

    register_filters(app)

    @app.context_processor
    def _navigation():
        def nav_links() -> list[tuple[str, str]]:
            user = auth.current_user()
            links = [(label, endpoint) for label, endpoint in NAV
                     if endpoint in app.view_functions]
            if not (user and user.is_admin):
                links = [link for link in links if link[1] != "admin.index"]
            return links

        return {"nav_links": nav_links}

    @app.get("/healthz", endpoint="health")
    def health():
        """Answer load balancers and the run script."""
        return {"status": "ok"}

    return app
