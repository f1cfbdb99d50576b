"""When replication runs: after upload or not, the sweep, the lock, propagation."""

from __future__ import annotations

import json

from app import storage
from app.extensions import db as _db
from app.jobs import redis_connection
from app.models import ComServer, Image, Job, ReplicationStatus, Setting
from app.replication import identity, propagate_delete, propagate_rename, queue_replication
from app.replication.lock import RedisLock, replication_lock_key
from app.replication.schedule import queue_stale, schedule_sweep, sweep_is_current


def _servers(db) -> tuple[ComServer, ComServer]:
    b = ComServer(display_name="b", url="http://127.0.0.1:9", shared_secret="x" * 20)
    c = ComServer(display_name="c", url="http://127.0.0.1:9", shared_secret="y" * 20)
    off = ComServer(display_name="no-storage", url="http://x:1", replicate_storage=False)
    me = ComServer(display_name="me", url="http://me:1", is_local=True)
    db.session.add_all([b, c, off, me])
    db.session.commit()
    return b, c


def _complete_image(app, db, name: str, upload_id: str, mode: str = "global") -> Image:
    folder = storage.image_dir(app.config["STORAGE_PATH"], name)
    folder.mkdir(parents=True)
    storage.write_json_atomic(folder / "manifest.json", {
        "format": "castor-manifest", "version": 1, "upload_id": upload_id, "files": []})
    image = Image(name=name, replication_mode=mode)
    db.session.add(image)
    db.session.commit()
    return image


def test_global_default_mode_and_servers(app, db):
    b, c = _servers(db)
    image = Image(name="lab")
    db.session.add(image)
    db.session.commit()
    assert [s.display_name for s in identity.targets_for(image)] == ["b", "c"]
    Setting.put(identity.MODE_SETTING, "selective")
    Setting.put(identity.SERVERS_SETTING, str(c.id))
    assert [s.display_name for s in identity.targets_for(image)] == ["c"]
    Setting.put(identity.MODE_SETTING, "none")
    assert identity.targets_for(image) == []
    image.replication_mode = "all"
    assert [s.display_name for s in identity.targets_for(image)] == ["b", "c"]
    assert identity.local_server_name() == "me"


def test_schedule_only_marks_pending_without_jobs(app, db):
    _servers(db)
    Setting.put(identity.AFTER_UPLOAD_SETTING, "0")
    db.session.commit()
    image = _complete_image(app, db, "lab", "u1")
    assert queue_replication(image) == []
    states = db.session.scalars(db.select(ReplicationStatus.state)).all()
    assert states == ["pending", "pending"]
    assert len(queue_replication(image, force=True)) == 2


def test_sweep_queues_only_stale_targets(app, db):
    b, c = _servers(db)
    image = _complete_image(app, db, "lab", "u2")
    db.session.add(Image(name="never-uploaded"))
    db.session.add(ReplicationStatus(image_id=image.id, server_id=b.id, state="replicated",
                                     upload_id="u2"))
    db.session.commit()
    assert queue_stale() == 1  # c only: b already holds upload u2
    job = db.session.scalar(db.select(Job).filter_by(kind="replication"))
    assert job is not None
    # A newer upload makes b stale too.
    folder = storage.image_dir(app.config["STORAGE_PATH"], "lab")
    manifest = json.loads((folder / "manifest.json").read_text()) | {"upload_id": "u3"}
    storage.write_json_atomic(folder / "manifest.json", manifest)
    assert queue_stale() == 2


def test_sweep_chain_token(app, db):
    Setting.put(identity.SCHEDULE_SETTING, "0")
    db.session.commit()
    assert schedule_sweep() is None
    token = redis_connection().get(f"castor:{app.config['RQ_QUEUE']}:replication:sweep")
    assert sweep_is_current(token.decode())
    schedule_sweep()  # a new chain retires the old one
    assert not sweep_is_current(token.decode())
    assert sweep_is_current(None)
    Setting.put(identity.SCHEDULE_SETTING, "30")
    db.session.commit()
    row = schedule_sweep()
    assert row is not None and row.kind == "replication_sweep"


def test_second_job_for_same_pair_is_skipped(app, db, run_jobs):
    b, _c = _servers(db)
    image = _complete_image(app, db, "lab", "u4", mode="all")
    lock = RedisLock(redis_connection(),
                     replication_lock_key(app.config["RQ_QUEUE"], image.id, b.id), 60)
    assert lock.acquire()
    try:
        from app.replication import queue_one

        job_id = queue_one(image, b).id
        run_jobs()
    finally:
        lock.release()
    _db.session.expire_all()
    job = _db.session.get(Job, job_id)
    assert job.status == "finished" and "already being replicated" in job.message
    later = _db.session.scalars(_db.select(Job).filter(Job.id != job_id)).all()
    assert len(later) == 1 and later[0].status == "queued"  # scheduled again
    status = _db.session.scalar(_db.select(ReplicationStatus).filter_by(server_id=b.id))
    assert status.state == "pending"


def test_unreachable_target_fails_after_retries(app, db, run_jobs):
    app.config.update(REPLICATION_RETRIES=1, REPLICATION_BACKOFF_SECONDS=0.05)
    b, _c = _servers(db)
    image = _complete_image(app, db, "lab", "u5", mode="all")
    from app.replication import queue_one

    job_id = queue_one(image, b).id
    run_jobs()
    _db.session.expire_all()
    job = _db.session.get(Job, job_id)
    assert job.status == "failed" and "unreachable" in job.error
    assert "attempt 2:" in job.log  # one retry, logged
    status = _db.session.scalar(_db.select(ReplicationStatus).filter_by(server_id=b.id))
    assert status.state == "failed" and "unreachable" in status.error


def test_propagation_without_peers_queues_nothing(app, db):
    assert propagate_delete("gone") == []
    assert propagate_rename("a", "b") == []
