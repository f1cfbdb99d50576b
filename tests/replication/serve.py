"""Serve one Castor instance as `castor run` does: `python -m tests.replication.serve CONF PORT`."""

from __future__ import annotations

import json
import sys

from app import create_app
from app.server import serve

if __name__ == "__main__":
    app = create_app(json.loads(sys.argv[1]))
    serve(app, host="127.0.0.1", port=int(sys.argv[2]), threads=4)
