"""The task workflows on PostgreSQL: queue order, check-in, expiry and boot file removal."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db as _db
from app.models import Task
from app.models.base import utcnow
from app.tasks import bootfiles
from app.tasks.queue import request_start
from app.tasks.service import create_task, expire_stale_tasks, task_for_checkin
from tests.tasks.conftest import add_computer, add_image, set_max_clients

pytestmark = pytest.mark.postgres


def test_task_workflows_on_postgresql(pg_app):
    with pg_app.app_context():
        set_max_clients(1)
        image = add_image("pg")
        image.profiles[0].model_match, image.profiles[0].model_match_criteria = "HP", "starts_with"
        tasks = [create_task("deploy", add_computer(f"pg-{i}", f"aa:bb:cc:00:05:0{i}", image))[0]
                 for i in range(3)]
        _db.session.commit()
        assert [request_start(t) for t in tasks] == [("imaging", 0), ("queued", 1),
                                                      ("queued", 2)]
        _db.session.commit()
        tasks[0].state = "done"
        _db.session.commit()
        tftp = pg_app.config["TFTP_PATH"]
        assert not bootfiles.pxelinux_path(tftp, "aa:bb:cc:00:05:00").exists()
        assert bootfiles.pxelinux_path(tftp, "aa:bb:cc:00:05:01").exists()
        assert request_start(tasks[1]) == ("imaging", 0)
        _db.session.commit()
        result = task_for_checkin("aa:bb:cc:00:05:09", model="HP EliteDesk 800")
        assert result.model_match and result.task.kind == "deploy"
        _db.session.commit()
        _db.session.execute(_db.update(Task).values(updated_at=utcnow() - timedelta(days=1)))
        _db.session.commit()
        assert len(expire_stale_tasks()) == 3
        _db.session.commit()
        assert not bootfiles.pxelinux_path(tftp, "aa:bb:cc:00:05:01").exists()
