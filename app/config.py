"""Configuration read from the environment, with embedded defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _env(name: str, default: str | None = None) -> str | None:
    """Return CASTOR_<name> or <name> from the environment, else the default."""
    return os.environ.get(f"CASTOR_{name}", os.environ.get(name, default))


def instance_secret(instance_path: Path) -> str:
    """Return the secret key kept in the instance folder, creating it on first use."""
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def load_config(instance_path: Path) -> dict:
    """Build the app configuration from environment variables."""
    database_url = _env("DATABASE_URL") or f"sqlite:///{instance_path / 'castor.db'}"
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    return {
        "SECRET_KEY": _env("SECRET_KEY") or instance_secret(instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": _env("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "STORAGE_PATH": _env("STORAGE_PATH") or str(instance_path / "storage"),
        "BOOT_FILES_PATH": _env("BOOT_FILES_PATH") or str(instance_path / "boot"),
        "TFTP_PATH": _env("TFTP_PATH") or str(instance_path / "tftp"),
        "RQ_QUEUE": _env("RQ_QUEUE", "castor"),
        "SERVER_URL": _env("SERVER_URL", "http://127.0.0.1:5000"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": (_env("SECURE_COOKIES", "0") == "1"),
        # The server keeps the idle clock (app/sessions.py); the cookie is sent once, at sign-in.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_LOGIN_FAILURES": int(_env("MAX_LOGIN_FAILURES", "5")),
        "LOGIN_LOCKOUT_SECONDS": int(_env("LOGIN_LOCKOUT_SECONDS", "300")),
        "LOGIN_LOCKOUT_MAX_SECONDS": int(_env("LOGIN_LOCKOUT_MAX_SECONDS", "3600")),
        "LOGIN_ADDRESS_LIMIT": int(_env("LOGIN_ADDRESS_LIMIT", "30")),
        "LOGIN_WINDOW_SECONDS": int(_env("LOGIN_WINDOW_SECONDS", "3600")),
        "SESSION_IDLE_MINUTES": float(_env("SESSION_IDLE_MINUTES", "60")),
        "SESSION_LIFETIME_HOURS": float(_env("SESSION_LIFETIME_HOURS", "12")),
        "TRUSTED_PROXIES": int(_env("TRUSTED_PROXIES", "0")),
        "VAULT_KEY_FILE": _env("VAULT_KEY_FILE") or str(instance_path / "vault_key"),
        "TASK_EXPIRY_MINUTES": int(_env("TASK_EXPIRY_MINUTES", "120")),
        "CLIENT_LOGIN_MINUTES": int(_env("CLIENT_LOGIN_MINUTES", "240")),
        "BOOT_TICKET_SECONDS": int(_env("BOOT_TICKET_SECONDS", "600")),
        "TASK_TOKEN_GRACE_SECONDS": int(_env("TASK_TOKEN_GRACE_SECONDS", "600")),
        "AUTO_REGISTER_COMPUTERS": _env("AUTO_REGISTER_COMPUTERS", "1") == "1",
        "BOOT_DEFAULT_KERNEL": _env("BOOT_DEFAULT_KERNEL", "vmlinuz"),
        "BOOT_DEFAULT_IMAGE": _env("BOOT_DEFAULT_IMAGE", "initrd.img"),
        "BOOT_DEFAULT_ARGS": _env("BOOT_DEFAULT_ARGS", ""),
        "VERIFY_INTERVAL_HOURS": float(_env("VERIFY_INTERVAL_HOURS", "24")),
        "VERIFY_RATE_MIB_S": float(_env("VERIFY_RATE_MIB_S", "50")),
    }
