"""Serve a Castor app with waitress inside the test's network namespace.

`python -m tests.netboot.serve CONFIG.json`: binds the address in the config on a free port,
prints `PORT <n>` once it listens, and serves until killed. The config is the test app's, so
both share one SQLite database.
"""

from __future__ import annotations

import json
import socket
import sys

from waitress import create_server

from app import create_app


def main(path: str) -> None:
    """Bind, tell the port, serve."""
    config = json.loads(open(path).read())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.pop("BIND_HOST"), 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config["SERVER_URL"] = config["SERVER_URL"].format(port=port)
    app = create_app(config)
    server = create_server(app, sockets=[sock], threads=8, channel_timeout=600)
    print(f"PORT {port}", flush=True)
    server.run()


if __name__ == "__main__":
    main(sys.argv[1])
