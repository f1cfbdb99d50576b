"""Task creation rules, history, cancel, finish and expiry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from app.models import BootTicket, History, Task
from app.models.base import utcnow
from app.models.users import hash_token
from app.tasks import bootfiles
from app.tasks.service import (
    TaskError,
    cancel_task,
    create_task,
    expire_stale_tasks,
    finish_task,
    remove_stale_boot_files,
)
from tests.tasks.conftest import add_computer, add_image


def test_deploy_task_uses_the_assigned_image_and_first_profile(db, computer, image):
    task, token = create_task("deploy", computer)
    assert task.state == "created"
    assert task.image is image and task.profile is image.profiles[0]
    assert token.startswith("cbt_")
    assert db.session.scalar(db.select(BootTicket.task_id).filter_by(
        ticket_hash=hash_token(token))) == task.id


def test_tokens_are_unique_per_task(db, image):
    tokens = {create_task("deploy", add_computer(f"pc-{i}", f"aa:bb:cc:00:00:0{i}", image))[1]
              for i in range(5)}
    assert len(tokens) == 5


def test_upload_to_protected_image_is_refused(db):
    image = add_image("locked", protected=True)
    computer = add_computer(image=image)
    with pytest.raises(TaskError, match="protected"):
        create_task("upload", computer)
    # Deploying a protected image is the normal case.
    task, _ = create_task("deploy", computer)
    assert task.kind == "deploy"


@pytest.mark.parametrize("kind", ["upload", "deploy", "multicast"])
def test_disabled_image_is_refused(db, kind):
    computer = add_computer(image=add_image("off", enabled=False))
    with pytest.raises(TaskError, match="disabled"):
        create_task(kind, computer)
    assert db.session.scalar(db.select(db.func.count()).select_from(Task)) == 0


def test_second_active_task_for_a_computer_is_refused(db, computer):
    create_task("deploy", computer)
    with pytest.raises(TaskError, match="already has an active deploy task") as caught:
        create_task("upload", computer)
    assert caught.value.status == 409


def test_no_image_and_foreign_profile_are_refused(db, image):
    bare = add_computer("bare", "aa:bb:cc:dd:ee:09")
    with pytest.raises(TaskError, match="No image"):
        create_task("deploy", bare)
    other = add_image("other")
    with pytest.raises(TaskError, match="does not belong"):
        create_task("deploy", bare, image, other.profiles[0])


def test_unknown_kind_is_refused(db, computer):
    with pytest.raises(TaskError, match="Unknown task kind"):
        create_task("wipe", computer)


def test_history_rows_on_image_and_computer(db, computer, image):
    task, _ = create_task("upload", computer)
    rows = db.session.scalars(db.select(History).filter_by(action="upload")).all()
    assert {(r.object_type, r.object_id) for r in rows} == {
        ("image", image.id), ("computer", computer.id)}
    assert all(r.data["task_id"] == task.id for r in rows)


def test_boot_files_written_on_create_and_removed_on_finish(app, db, computer):
    task, token = create_task("deploy", computer)
    tftp = app.config["TFTP_PATH"]
    pxe = bootfiles.pxelinux_path(tftp, computer.mac)
    grub = bootfiles.grub_path(tftp, computer.mac)
    assert pxe.name == "01-aa-bb-cc-dd-ee-01" and pxe.parent.name == "pxelinux.cfg"
    assert grub.name == "grub.cfg-01-aa-bb-cc-dd-ee-01" and grub.parent.name == "grub"
    assert f"castor_ticket={token}" in pxe.read_text()
    assert f"castor_ticket={token}" in grub.read_text()
    finish_task(task, "done")
    assert not pxe.exists() and not grub.exists()
    assert task.state == "done" and task.finished_at is not None
    assert db.session.scalar(db.select(BootTicket).filter_by(task_id=task.id)) is None


def test_finish_is_idempotent_and_checks_the_state(db, computer):
    task, _ = create_task("deploy", computer)
    with pytest.raises(ValueError):
        finish_task(task, "imaging")
    finish_task(task, "failed", "disk error")
    finish_task(task, "done")
    assert task.state == "failed" and task.error == "disk error"


@pytest.mark.parametrize("web_cancel", [True, False])
def test_cancel_sets_the_client_flag_only_with_web_cancel(app, db, computer, web_cancel):
    computer.image.profiles[0].web_cancel = web_cancel
    task, _ = create_task("deploy", computer)
    cancel_task(task)
    assert task.state == "cancelled"
    assert task.cancel_requested is web_cancel
    assert not bootfiles.pxelinux_path(app.config["TFTP_PATH"], computer.mac).exists()
    with pytest.raises(TaskError, match="already ended"):
        cancel_task(task)


def test_expiry_fails_tasks_without_updates(db, image):
    stale, _ = create_task("deploy", add_computer("old", "aa:bb:cc:00:00:01", image))
    fresh, _ = create_task("deploy", add_computer("new", "aa:bb:cc:00:00:02", image))
    done, _ = create_task("deploy", add_computer("done", "aa:bb:cc:00:00:03", image))
    finish_task(done, "done")
    db.session.commit()
    long_ago = utcnow() - timedelta(minutes=121)
    db.session.execute(db.update(Task).where(Task.id.in_([stale.id, done.id]))
                       .values(updated_at=long_ago))
    db.session.commit()
    expired = expire_stale_tasks()
    assert [t.id for t in expired] == [stale.id]
    assert stale.state == "failed" and "expired" in stale.error
    assert fresh.state == "created" and done.state == "done"


def test_expiry_minutes_come_from_the_config(app, db, computer):
    app.config["TASK_EXPIRY_MINUTES"] = 5
    task, _ = create_task("deploy", computer)
    db.session.commit()
    db.session.execute(db.update(Task).values(updated_at=utcnow() - timedelta(minutes=6)))
    db.session.commit()
    assert expire_stale_tasks() == [task]
    assert "5 minutes" in task.error


def test_stale_boot_files_go_when_no_task_needs_them(app, db, image):
    running, _ = create_task("deploy", add_computer("b", "aa:bb:cc:00:00:0b", image))
    db.session.commit()
    tftp = Path(app.config["TFTP_PATH"])
    # Left behind by a crash between a task's end and the files' removal, say.
    for path in (bootfiles.pxelinux_path(tftp, "aa:bb:cc:00:00:0a"),
                 bootfiles.grub_path(tftp, "aa:bb:cc:00:00:0a")):
        path.write_text("DEFAULT castor\n")
    (tftp / "pxelinux.cfg" / "default").write_text("DEFAULT menu\n")
    assert remove_stale_boot_files() == 2
    assert not bootfiles.pxelinux_path(tftp, "aa:bb:cc:00:00:0a").exists()
    assert bootfiles.pxelinux_path(tftp, "aa:bb:cc:00:00:0b").exists()
    assert bootfiles.grub_path(tftp, "aa:bb:cc:00:00:0b").exists()
    assert (tftp / "pxelinux.cfg" / "default").exists() and running.is_active


def test_web_cancel_of_an_imaging_task_waits_for_the_client(app, db, computer):
    computer.image.profiles[0].web_cancel = True
    task, _ = create_task("deploy", computer)
    task.state = "imaging"
    assert cancel_task(task) is False
    assert task.state == "imaging" and task.cancel_requested and task.is_active
    assert not bootfiles.pxelinux_path(app.config["TFTP_PATH"], computer.mac).exists()
    # Asking again drops it at once.
    assert cancel_task(task) is True
    assert task.state == "cancelled"


def test_without_web_cancel_an_imaging_task_ends_at_once(db, computer):
    task, _ = create_task("deploy", computer)
    task.state = "imaging"
    assert cancel_task(task) is True
    assert task.state == "cancelled" and not task.cancel_requested


def test_boot_files_go_when_any_code_ends_the_task(app, db, image):
    task, _ = create_task("deploy", add_computer("c", "aa:bb:cc:00:00:0c", image))
    other, _ = create_task("deploy", add_computer("d", "aa:bb:cc:00:00:0d", image))
    db.session.commit()
    tftp = app.config["TFTP_PATH"]
    task.state = "done"  # as the client API's check-out does
    other.progress_json = "{}"
    db.session.commit()
    assert not bootfiles.pxelinux_path(tftp, "aa:bb:cc:00:00:0c").exists()
    assert not bootfiles.grub_path(tftp, "aa:bb:cc:00:00:0c").exists()
    assert bootfiles.pxelinux_path(tftp, "aa:bb:cc:00:00:0d").exists()
    # A rolled back end changes nothing.
    other.state = "failed"
    db.session.flush()
    db.session.rollback()
    db.session.commit()
    assert bootfiles.pxelinux_path(tftp, "aa:bb:cc:00:00:0d").exists()


def test_a_task_sets_the_image_search_last_used(db, computer, image):
    from app.images.search import last_used_for

    assert last_used_for([image.id]) == {}
    create_task("deploy", computer)
    db.session.commit()
    assert set(last_used_for([image.id])) == {image.id}
