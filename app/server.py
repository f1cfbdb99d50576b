"""Serve Castor with gunicorn's threaded worker, so request bodies stream from the socket.

gunicorn hands the app `wsgi.input` reading straight from the connection: an upload or a
replicated chunk is written once, into its staging file, as it arrives (waitress reads every
body into a temporary file first). Responses of whole files go out with sendfile. Every
worker finishes or rolls back interrupted swaps before it serves (bench/wsgi.py, README).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from gunicorn.app.base import BaseApplication

from app.extensions import db
from app.receive.journal import recover


def server_options(host: str, port: int, threads: int = 8) -> dict:
    """gunicorn settings for an imaging server: one worker, threads, no request timeout."""
    return {
        "bind": f"{host}:{port}",
        "workers": 1,  # running hashes of segmented uploads live in the worker's memory
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 120,  # worker heartbeat, not a limit on a request's duration
        "graceful_timeout": 10,
        "keepalive": 75,
        "sendfile": True,
        "accesslog": None,
        "loglevel": "warning",
        # The heartbeat file is the only file gunicorn keeps; keep it out of $TMPDIR.
        "worker_tmp_dir": "/dev/shm" if Path("/dev/shm").is_dir() else None,
    }


def recover_store(app: Flask) -> list[str]:
    """Finish or roll back interrupted swaps of uploads and replicated copies."""
    from app.replication.swap import finish_replicated
    from app.uploads import finish_upload_row

    with app.app_context():
        done = recover(app.config["STORAGE_PATH"],
                       {"upload": finish_upload_row, "replication": finish_replicated})
        db.session.remove()
    return done


class CastorServer(BaseApplication):
    """A gunicorn application around an already built Flask app."""

    def __init__(self, app: Flask, options: dict) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply the options and the recovery hook."""
        for key, value in self.options.items():
            if value is not None:
                self.cfg.set(key, value)
        self.cfg.set("post_worker_init", self._worker_ready)

    def _worker_ready(self, worker) -> None:
        with self.application.app_context():
            db.engine.dispose()  # connections opened before the fork are the master's
        recover_store(self.application)

    def load(self) -> Flask:
        """Return the Flask app."""
        return self.application


def serve(app: Flask, host: str = "127.0.0.1", port: int = 5000, threads: int = 8) -> None:
    """Recover the store, then serve until a signal stops the server."""
    recover_store(app)
    CastorServer(app, server_options(host, port, threads)).run()
