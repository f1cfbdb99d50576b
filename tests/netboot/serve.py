"""Serve a Castor app with waitress inside the test's network namespace.

`python -m tests.netboot.serve NAMESPACE CONFIG.json`: opens its listening socket on the
namespace's bridge address (a free port), then returns to the machine's own namespace, so the
app still reaches the local Redis; prints `PORT <n>` once it listens and serves until killed.
The config is the test app's, so both share one SQLite database.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys

from waitress import create_server

from app import create_app

CLONE_NEWNET = 0x40000000


def _setns(path: str) -> None:
    """Move this (single-threaded) process into the network namespace at path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
    finally:
        os.close(fd)


def listen_in(namespace: str, host: str) -> socket.socket:
    """Return a socket listening on host:<free port> inside the namespace."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        _setns(f"/run/netns/{namespace}")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        sock.listen(64)
    finally:
        _setns(f"/proc/self/fd/{home}")
        os.close(home)
    return sock


def main(namespace: str, path: str) -> None:
    """Bind, tell the port, serve."""
    config = json.loads(open(path).read())
    sock = listen_in(namespace, config.pop("BIND_HOST"))
    port = sock.getsockname()[1]
    config["SERVER_URL"] = config["SERVER_URL"].format(port=port)
    app = create_app(config)
    server = create_server(app, sockets=[sock], threads=8, channel_timeout=600)
    print(f"PORT {port}", flush=True)
    server.run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
