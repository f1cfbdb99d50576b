"""Serve one Castor instance with waitress: `python -m tests.replication.serve CONFIG PORT`."""

from __future__ import annotations

import json
import sys

from waitress import serve

from app import create_app

if __name__ == "__main__":
    app = create_app(json.loads(sys.argv[1]))
    serve(app, host="127.0.0.1", port=int(sys.argv[2]), threads=4, _quiet=True)
