"""Who may do what: the role each route needs, checked once for every request.

Every endpoint has a decision in POLICY; one without fails closed (403), and the route × role
test fails until it gets one. A level is either one word for every method, or "read/write":
the first for GET and HEAD, the second for the methods that change things.

- public: anyone, no sign-in (the login page, boot scripts fetched by firmware, health).
- peer: signed server-to-server calls; the replication API checks the signature itself.
- client: the imaging client; a task token (checked by the client API's own scope rules) or
  an API token of an operator or admin.
- read, operate, admin: a signed-in user (session or API token) with at least that role.
"""

from __future__ import annotations

from flask import Flask, g, jsonify, request
from markupsafe import escape
from werkzeug.exceptions import Forbidden

RANK = {"readonly": 1, "operator": 2, "admin": 3}
LEVEL_ROLE = {"read": "readonly", "operate": "operator", "admin": "admin",
              "client": "operator"}
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

_RO, _OP, _AD = "read", "read/operate", "read/admin"

POLICY: dict[str, str] = {
    # No sign-in.
    "auth.login": "public", "auth.logout": "public", "static": "public", "health": "public",
    "boot.ipxe": "public", "boot.files": "public", "api_openapi.openapi": "public",
    "api_client.login": "public", "api_client.checkin": "public",
    # Signed calls of paired com servers.
    **{f"api_replication.{name}": "peer" for name in (
        "commit", "delete", "get_file", "manifest", "ping", "put_file", "rename",
        "storage_space")},
    # The imaging client (task token or operator).
    **{f"api_client.{name}": "client" for name in (
        "create_upload", "delete_upload", "finish_upload", "images", "profile_options",
        "profiles", "upload_file", "upload_schema")},
    **{f"api_client_io.{name}": "client" for name in (
        "append_log", "cancel", "checkout", "create_deploy", "download", "manifest",
        "module_file", "module_files", "progress", "schema")},
    **{f"api_tasks.{name}": "client" for name in (
        "append_log", "cancel_poll", "get_task", "heartbeat", "start")},
    **{f"api_multicast.{name}": "client" for name in (
        "join", "progress", "report", "stream_outcome")},
    # Users, tokens and one's own password.
    "admin.index": "admin", "admin.create_user": "admin", "admin.delete_user": "admin",
    "admin.create_token": "admin", "admin.revoke_token": "admin",
    "admin.revoke_sessions": "admin", "admin.set_role": "admin", "admin.password": "read",
    # Images: operators change them; unprotecting (checked in the service) and deleting
    # need an admin.
    "home": _RO, "dashboard.index": _RO, "dashboard.storage_card": _RO,
    "dashboard.refresh_storage": "operate",
    "images.search": _RO, "images.history": _RO,
    "images.schema": _RO,
    "images.schema_json": _RO, "images.progress": _RO,
    "images.new": _OP, "images.general": _OP, "images.categories": _OP,
    "images.delete": "admin", "images.bulk_delete": "admin",
    "api_images.search_images": _RO, "api_images.get_image": _RO,
    "api_images.get_schema": _RO, "api_images.get_history": _RO,
    "api_images.create_image": _OP, "api_images.update_image": _OP,
    "api_images.delete_image": "admin",
    "categories.index": _OP, "categories.edit": _OP, "categories.delete": _OP,
    "api_images.list_categories": _RO, "api_images.get_category": _RO,
    "api_images.create_category": _OP, "api_images.update_category": _OP,
    "api_images.delete_category": _OP,
    # Profiles: operators (a custom partition script needs an admin, checked in the domain).
    "profiles.index": _RO, "profiles.export_schema": _RO, "profiles.minimum_size": _RO,
    "profiles.new": _OP, "profiles.tab": _OP, "profiles.clone": _OP,
    "profiles.delete": "admin",
    "api_profiles.list_profiles": _RO, "api_profiles.get_profile": _RO,
    "api_profiles.list_assignments": _RO, "api_plan.plan": "read",
    "api_profiles.create_profile": _OP, "api_profiles.patch_profile": _OP,
    "api_profiles.clone_profile": _OP, "api_profiles.delete_profile": "admin",
    "api_profiles.add_assignment": _OP, "api_profiles.patch_assignment": _OP,
    "api_profiles.delete_assignment": _OP,
    # Modules are code run as root on every machine a profile deploys to: admins write them.
    "modules.index": _RO, "modules.kind_index": _RO,
    "modules.new": _AD, "modules.edit": _AD, "modules.delete": "admin",
    "modules.upload": "admin", "modules.delete_file": "admin",
    "api_modules.list_modules": _RO, "api_modules.get_module": _RO,
    "api_modules.create_module": "admin", "api_modules.patch_module": "admin",
    "api_modules.delete_module": "admin", "api_modules.upload_files": "admin",
    "api_modules.delete_file": "admin",
    # Computers, groups, tasks and multicast sessions: operators.
    **{f"computers.{name}": _OP for name in (
        "index", "groups", "new", "edit", "new_group", "edit_group", "delete", "delete_group",
        "start_task")},
    **{f"api_computers.{name}": _OP for name in (
        "list_computers", "get_computer", "create_computer", "update_computer",
        "delete_computer", "list_groups", "get_group", "create_group", "update_group",
        "delete_group")},
    **{f"api_tasks.{name}": _OP for name in ("list_tasks", "create", "cancel")},
    "tasks.index": _RO, "tasks.show": _RO, "tasks.cancel": _OP,
    "multicast.index": _RO, "multicast.new": _OP, "multicast.cancel": _OP,
    "api_multicast.list_sessions": _RO, "api_multicast.get": _RO,
    "api_multicast.create": _OP, "api_multicast.cancel": _OP,
    # Com servers (peers and their shared secrets): admins; an image's replication: operators.
    "servers.index": _RO, "servers.new": "admin", "servers.edit": "admin",
    "servers.delete": "admin", "servers.test_connection": "admin", "servers.settings": "admin",
    "replication.image_replication": _OP, "replication.replicate_now": _OP,
    # Sending a failed delete or rename again deletes or renames on a peer: as deleting here.
    "replication.retry_propagation": "admin",
    "api_replication_servers.list_servers": _RO, "api_replication_servers.get_server": _RO,
    "api_replication_servers.create_server": "admin",
    "api_replication_servers.update_server": "admin",
    "api_replication_servers.delete_server": "admin",
    "api_replication_servers.image_status": _RO,
    "api_replication_servers.replicate_image": _OP,
}


class RoleError(Forbidden):
    """The signed-in user's role does not allow this."""


def level_for(endpoint: str | None, method: str) -> str | None:
    """Return the level a request needs, or None when the endpoint has no decision."""
    rule = POLICY.get(endpoint or "")
    if rule is None:
        return None
    read, _, write = rule.partition("/")
    return write if write and method in WRITE_METHODS else read


def has_role(user, role: str) -> bool:
    """Tell whether a user's role is at least `role`."""
    return user is not None and RANK.get(user.role, 0) >= RANK[role]


def require_role(role: str, what: str) -> None:
    """Raise RoleError unless the acting user has `role` (jobs and the CLI act as the system)."""
    try:
        user = g.get("user")
    except RuntimeError:
        return
    if user is not None and not has_role(user, role):
        raise RoleError(f"Only an {role} can {what}.")
    if user is None and g.get("task") is not None:
        raise RoleError(f"A task token cannot {what}.")


def _forbidden(exc: Forbidden):
    """Answer a refusal as JSON under /api, as the error page elsewhere."""
    message = exc.description or "your role does not allow this"
    if request.path.startswith("/api/"):
        return jsonify({"error": message}), 403
    return f"<!doctype html><title>Forbidden</title><p>{escape(message)}</p>", 403


def init_app(app: Flask) -> None:
    """Answer role refusals raised anywhere in a view."""
    app.register_error_handler(RoleError, _forbidden)
