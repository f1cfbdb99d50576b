"""A damaged source copy is never sent, is flagged, and is repaired from a peer's good copy."""

from __future__ import annotations

from app import storage
from app.extensions import db
from app.integrity import check_image, repair_image
from app.models import History, Image, Job
from app.receive.hashing import hash_file
from tests.replication.conftest import make_image
from tests.replication.test_three_instances import _replicate

CHUNK = 1 << 16


def _add_chunks(folder) -> None:
    """Give the manifest per-chunk digests, as an upload writes them."""
    manifest = storage.read_manifest(folder)
    for entry in manifest["files"]:
        entry["chunk_bytes"] = CHUNK
        entry["chunks"] = hash_file(folder / entry["path"], CHUNK).finish()[1]
    storage.write_json_atomic(folder / storage.MANIFEST, manifest)


def _flip(path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_damaged_source_is_not_sent_then_repaired_from_the_peer(trio):
    a, b, _c, ids = trio
    image_id = make_image(a, "heal-me", [300_000, 200_000])
    folder = a.image_folder("heal-me")
    _add_chunks(folder)
    [job_id] = _replicate(a, image_id, ids["b"])
    with a.app.app_context():
        assert db.session.get(Job, job_id).status == "finished", db.session.get(Job, job_id).error
    assert storage.verify_folder(b.image_folder("heal-me")) == []
    good = (folder / "hd0/part1.ext4.partclone.zst").read_bytes()

    # A bit flips in chunk 3 of our copy; the manifest is changed so replication must send.
    _flip(folder / "hd0/part1.ext4.partclone.zst", 3 * CHUNK + 5)
    manifest = storage.read_manifest(folder)
    manifest["upload_id"] = "a-newer-upload"
    storage.write_json_atomic(folder / storage.MANIFEST, manifest)
    (b.image_folder("heal-me") / "hd0/part1.ext4.partclone.zst").unlink()  # b must receive
    [job_id] = _replicate(a, image_id, ids["b"])
    with a.app.app_context():
        job = db.session.get(Job, job_id)
        assert job.status == "failed" and "our copy of hd0/part1" in job.error, job.error
        image = db.session.get(Image, image_id)
        assert "damaged" in image.damaged
        assert db.session.scalar(db.select(History).filter_by(
            object_type="image", object_id=image_id, action="damaged")) is not None
    incoming = b.storage / "incoming" / "heal-me" / "parts" / "hd0"
    sent = incoming / "part1.ext4.partclone.zst"
    # Chunks 0-2 may have gone; the damaged chunk and what follows never did.
    assert not sent.exists() or sent.stat().st_size <= 3 * CHUNK

    # Deploys are refused while damaged.
    client = a.app.test_client()
    with a.app.app_context():
        from app.models import ApiToken, User

        user = User(username="ops", is_admin=True)
        user.set_password("correct horse")
        row, token = ApiToken.issue(user, "t")
        db.session.add_all([user, row])
        db.session.commit()
    answer = client.get("/api/v1/client/images/heal-me/manifest",
                        headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 409 and "damaged" in answer.json["error"]

    # Repair: b holds a good copy of the previous upload; restore our manifest to match it.
    manifest["upload_id"] = storage.read_manifest(b.image_folder("heal-me"))["upload_id"]
    storage.write_json_atomic(folder / storage.MANIFEST, manifest)
    (b.image_folder("heal-me") / "hd0/part1.ext4.partclone.zst").write_bytes(good)
    with a.app.app_context():
        image = db.session.get(Image, image_id)
        assert repair_image(image, "tests") == "castor-b"
        assert check_image(image) == [] and image.damaged == ""
        assert db.session.scalar(db.select(History).filter_by(
            object_type="image", object_id=image_id, action="repaired")) is not None
    assert (folder / "hd0/part1.ext4.partclone.zst").read_bytes() == good
    answer = client.get("/api/v1/client/images/heal-me/manifest",
                        headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
