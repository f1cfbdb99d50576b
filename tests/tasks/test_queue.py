"""Queue ordering with a com server's max imaging clients."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.models import Task
from app.models.base import utcnow
from app.tasks.queue import imaging_limit, queue_position, request_start
from app.tasks.service import create_task, finish_task
from tests.tasks.conftest import add_computer, set_max_clients


def _tasks(image, count: int) -> list[Task]:
    return [create_task("deploy", add_computer(f"pc-{i}", f"aa:bb:cc:00:00:{i:02x}", image))[0]
            for i in range(count)]


def test_without_a_local_server_there_is_no_limit(db, image):
    assert imaging_limit() == 0
    tasks = _tasks(image, 6)
    assert [request_start(t) for t in tasks] == [("imaging", 0)] * 6


def test_max_clients_queue_the_rest_in_arrival_order(db, image):
    set_max_clients(2)
    tasks = _tasks(image, 5)
    answers = [request_start(t) for t in tasks]
    assert answers == [("imaging", 0), ("imaging", 0), ("queued", 1), ("queued", 2),
                       ("queued", 3)]
    assert [queue_position(t) for t in tasks] == [None, None, 1, 2, 3]
    # Asking again without a free slot changes nothing.
    assert request_start(tasks[3]) == ("queued", 2)
    # A slot frees: the next in line gets it, not the one that happens to ask first.
    finish_task(tasks[0], "done")
    assert request_start(tasks[4]) == ("queued", 3)
    assert request_start(tasks[2]) == ("imaging", 0)
    assert request_start(tasks[3]) == ("queued", 1)
    assert request_start(tasks[4]) == ("queued", 2)
    finish_task(tasks[1], "failed")
    finish_task(tasks[2], "cancelled")
    assert request_start(tasks[3]) == ("imaging", 0)
    assert request_start(tasks[4]) == ("imaging", 0)


def test_queue_order_follows_the_time_of_queueing(db, image):
    set_max_clients(1)
    first, late, early = _tasks(image, 3)
    request_start(first)
    request_start(late)
    request_start(early)
    now = utcnow()
    late.queued_at, early.queued_at = now, now - timedelta(seconds=30)
    db.session.flush()
    assert queue_position(early) == 1 and queue_position(late) == 2


def test_zero_means_unlimited_and_ended_tasks_cannot_start(db, image):
    set_max_clients(0)
    task, other = _tasks(image, 2)
    assert request_start(task) == ("imaging", 0)
    assert request_start(task) == ("imaging", 0)
    finish_task(other, "cancelled")
    with pytest.raises(ValueError, match="has ended"):
        request_start(other)


def test_asking_keeps_a_queued_task_alive(db, image):
    set_max_clients(1)
    running, waiting = _tasks(image, 2)
    request_start(running)
    request_start(waiting)
    db.session.commit()
    old = utcnow() - timedelta(hours=3)
    db.session.execute(db.update(Task).values(updated_at=old))
    db.session.commit()
    request_start(waiting)
    assert waiting.updated_at > old + timedelta(hours=2)
