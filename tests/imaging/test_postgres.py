"""Image sizes on PostgreSQL: real images are many GiB, past a 32-bit integer column."""

from __future__ import annotations

import pytest

from app.extensions import db as _db
from app.imaging.processing import queue_schema_processing
from app.models import ComServer, Image, Job, ReplicationStatus
from jobs.worker import make_worker
from tests.imaging.test_api_and_job import make_image

pytestmark = pytest.mark.postgres
GIB = 1 << 30


def test_schema_job_stores_a_size_on_client_of_many_gib(pg_app):
    image_id, _profile_id = make_image(pg_app)
    with pg_app.app_context():
        job_id = queue_schema_processing(_db.session.get(Image, image_id)).id
    make_worker(pg_app, simple=True).work(burst=True)
    with pg_app.app_context():
        job = _db.session.get(Job, job_id)
        assert job.status == "finished", job.log + job.error
        assert _db.session.get(Image, image_id).size_on_client_bytes > 16 * GIB


def test_sizes_and_rates_past_4_gib_are_kept(pg_app):
    image_id, _profile_id = make_image(pg_app)
    with pg_app.app_context():
        image = _db.session.get(Image, image_id)
        image.size_on_server_bytes = 300 * GIB
        server = ComServer(display_name="peer", url="https://peer.example:8443")
        _db.session.add(server)
        _db.session.flush()
        row = ReplicationStatus(image_id=image_id, server_id=server.id, state="in_progress",
                                bytes_sent=17 * GIB, rate_bps=5 * GIB)
        _db.session.add(row)
        _db.session.commit()
        _db.session.expire_all()
        assert _db.session.get(Image, image_id).size_on_server_bytes == 300 * GIB
        row = _db.session.scalar(_db.select(ReplicationStatus).filter_by(image_id=image_id))
        assert (row.bytes_sent, row.rate_bps) == (17 * GIB, 5 * GIB)
