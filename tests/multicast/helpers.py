"""Small builders shared by the multicast unit tests."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

from app.extensions import db
from app.models import Image
from app.models.profiles import default_profile_for


def kill_leftovers(instance_path: str) -> None:
    """Kill supervisors and senders a failed test left behind (they wait for receivers)."""
    for path in (Path(instance_path) / "multicast").glob("session-*.pid"):
        data = json.loads(path.read_text() or "{}")
        for key in ("sender", "supervisor"):
            try:
                os.killpg(data[key], signal.SIGKILL)
            except (KeyError, ProcessLookupError, PermissionError, TypeError):
                pass


def stored_image(app, name: str = "lab", partitions: int = 2) -> int:
    """Create an image row and a folder with a manifest listing `partitions` stream files."""
    folder = Path(app.config["STORAGE_PATH"]) / "images" / name / "hd0"
    folder.mkdir(parents=True)
    files = []
    for number in range(1, partitions + 1):
        data = os.urandom(4096)
        relative = f"hd0/part{number}.ext4.partclone.zst"
        (folder.parent / relative).write_bytes(data)
        files.append({"path": relative, "kind": "partclone", "disk": 0, "partition": number,
                      "lv": None, "filesystem": "ext4", "compression": "zstd", "level": 3,
                      "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    files.append({"path": "hd0/table.sfdisk", "kind": "table", "disk": 0, "partition": None,
                  "lv": None, "filesystem": None, "compression": "none", "level": None,
                  "size_bytes": 0, "sha256": hashlib.sha256(b"").hexdigest()})
    (folder / "table.sfdisk").write_bytes(b"")
    (folder.parent / "manifest.json").write_text(json.dumps({
        "format": "castor-manifest", "version": 1, "image": name, "files": files}))
    image = Image(name=name)  # inside the caller's app context
    image.profiles.append(default_profile_for("block", "linux"))
    db.session.add(image)
    db.session.commit()
    return image.id
