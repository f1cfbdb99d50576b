"""Upload and replication file paths: normalised, bounded, never reaching reserved names."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.client.helpers import make_image, tiny_schema

BASE = "/api/v1/client"
REFUSED = ["hd0/../schema.json", "../x", "hd0//p.img", "hd0/./p.img", "/etc/passwd",
           "hd0/.hidden", ".x", "hd0/schema.json", "hd0/manifest.json", "schema.json",
           "manifest.json", "hd0/state.json", "hd0/p.img.part", "a\\b", "hd0/p\x00",
           "a/b/c/d/e/f/g", "x" * 129, "/".join(["ab" * 60] * 5), "", "hd0/p img"]


@pytest.mark.parametrize("relative", REFUSED)
def test_clean_path_refuses(relative):
    from app.receive.paths import PathRefused, clean_path

    with pytest.raises(PathRefused):
        clean_path(relative)


def test_clean_path_accepts_what_clients_write():
    from app.receive.paths import PathRefused, clean_path

    for relative in ("hd0/part1.ext4.partclone.zst", "hd1/table.sfdisk", "hd0/head.bin",
                     "hd0/vg0-root.ext4.partclone.zst", "hd0/part2.ntfs.wim.gz"):
        assert clean_path(relative) == relative
    assert clean_path("schema.json", allow_top=("schema.json",)) == "schema.json"
    with pytest.raises(PathRefused):
        clean_path("hd0/schema.json", allow_top=("schema.json",))


def test_upload_paths_cannot_reach_the_schema_or_hide_files(app, client, api_headers):
    make_image(app)
    answer = client.post(f"{BASE}/uploads", json={"image": "lab"}, headers=api_headers)
    upload_id = answer.json["upload_id"]
    schema = tiny_schema()
    assert client.put(f"{BASE}/uploads/{upload_id}/schema", json=schema,
                      headers=api_headers).status_code == 200
    staging = Path(app.config["STORAGE_PATH"]) / "staging" / upload_id
    before = {p.name: p.read_bytes() for p in staging.rglob("schema.json")}
    for relative in ("hd0/../schema.json", "hd0/.hidden", "hd0/sub/manifest.json",
                     "hd0/a/b/c/d/e/f.bin"):
        r = client.put(f"{BASE}/uploads/{upload_id}/files/{relative}", data=b"{}",
                       headers=api_headers)
        assert r.status_code == 400, (relative, r.json)
    stored = [p for p in staging.rglob("*") if p.is_file() and p.name != "state.json"]
    assert [p.name for p in stored] == ["schema.json"]
    assert {p.name: p.read_bytes() for p in stored} == before
    # The upload is still usable after a refused path.
    data = b"payload"
    r = client.put(f"{BASE}/uploads/{upload_id}/files/hd0/p1.img", data=data,
                   headers=api_headers)
    assert r.status_code == 201 and r.json["sha256"] == hashlib.sha256(data).hexdigest()
