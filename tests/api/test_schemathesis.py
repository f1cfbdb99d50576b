"""schemathesis (all checks, every phase including stateful) over the seeded API: 0 failures.

The run is bounded by a fixed seed and a fixed number of examples per operation. It drives
the real app served by waitress on a free port, with an admin token, as an outside client
would; the JSON report is kept in the test's folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from waitress.server import create_server

from app.extensions import db
from tests.api.seed import seeded_app

MAX_EXAMPLES = int(os.environ.get("CASTOR_SCHEMATHESIS_EXAMPLES", "20"))
SEED = 1
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, str]:
    """Run schemathesis once over a freshly seeded, served app; return its report and output."""
    folder = tmp_path_factory.mktemp("schemathesis")
    seeded = seeded_app(folder / "app")
    server = create_server(seeded.app, host="127.0.0.1", port=0, threads=1)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    path = folder / "schemathesis.json"
    command = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(CONFIG),
               "run",
               f"http://127.0.0.1:{server.effective_port}/api/v1/openapi.json",
               "-H", f"Authorization: Bearer {seeded.token}",
               "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
               "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES), "--workers", "1",
               "--no-color", "--report", "json", "--report-json-path", str(path)]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    finally:
        server.close()
        thread.join(timeout=10)
        with seeded.app.app_context():
            _cancel_live_sessions()
            db.session.remove()
            db.engine.dispose()
    return json.loads(path.read_text()), run.stdout[-20000:]


def _cancel_live_sessions() -> None:
    """Stop the multicast senders the run started (nobody joins them, so they would wait)."""
    from app.models import MulticastSession
    from app.multicast.supervisor import cancel_session

    for session in db.session.scalars(db.select(MulticastSession)).all():
        cancel_session(session)


def _failures(summary: dict) -> dict[str, int]:
    """Return the failure counts by schemathesis code (ST101 server error, ...)."""
    return {f["code"]: f["count"] for f in summary["failures"]}


def test_every_operation_is_tested_without_500s_or_non_json_answers(report):
    summary, output = report
    assert summary["operations"]["tested"] == summary["operations"]["total"] > 80
    assert not summary["errors"], output
    failures = _failures(summary)
    assert "ST101" not in failures, output  # a 500
    assert "ST105" not in failures, output  # an undocumented content type (HTML errors)


def test_schemathesis_finds_no_failures(report):
    summary, output = report
    assert _failures(summary) == {}, output
