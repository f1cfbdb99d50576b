"""Serve a seeded Castor app for a schemathesis CLI run: `python -m tests.api.serve DIR`.

Prints `URL TOKEN` once listening; the before/after figures of the API were measured with
`schemathesis run URL/api/v1/openapi.json -H "Authorization: Bearer TOKEN" --checks all`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from waitress.server import create_server

from tests.api.seed import seeded_app

if __name__ == "__main__":
    seeded = seeded_app(Path(sys.argv[1]))
    server = create_server(seeded.app, host="127.0.0.1", port=0, threads=4)
    print(f"http://127.0.0.1:{server.effective_port} {seeded.token}", flush=True)
    server.run()
