"""Serve a Castor app from a JSON config (the multicast tests run it inside a namespace)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from werkzeug.serving import make_server

from app import create_app


def main(argv: list[str]) -> None:
    """`python -m tests.multicast.serve CONFIG HOST PORT READY_FILE`: serve until killed."""
    config = json.loads(Path(argv[1]).read_text())
    app = create_app(config)
    server = make_server(argv[2], int(argv[3]), app, threaded=True)
    Path(argv[4]).write_text("ready")
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
