"""Task mode of the client: identification, kernel arguments, check-in and the queue, live."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app.extensions import db as _db
from app.models import Task
from app.tasks.service import create_task, finish_task
from client.api import Api
from client.identity import identify, parse_cmdline, primary_mac
from client.task import TaskCancelled, checkin, register, send_log, wait_for_slot
from tests.tasks.conftest import add_computer, add_image, set_max_clients
from tests.tasks.sysfs import make_sysfs


def test_identify_reads_sysfs_and_skips_placeholders(tmp_path):
    root = make_sysfs(tmp_path)
    assert identify(root) == {
        "mac": "52:54:00:12:34:56", "serial": "BSN-42",
        "system_uuid": "4c4c4544-0042-3510-8051-b4c04f4e3732", "model": "OptiPlex 7090",
        "client_id": "4c4c4544-0042-3510-8051-b4c04f4e3732"}


def test_identify_falls_back_when_values_are_unreadable(tmp_path):
    root = make_sysfs(tmp_path, serial="", board_serial="Default string", uuid=None)
    found = identify(root)
    assert found["serial"] == "" and found["system_uuid"] == ""
    assert found["client_id"] == "mac:52:54:00:12:34:56"
    assert identify(tmp_path / "nothing") == {"mac": "", "serial": "", "system_uuid": "",
                                              "model": "", "client_id": ""}


def test_identify_this_machine():
    found = identify("/sys")
    assert set(found) == {"mac", "serial", "system_uuid", "model", "client_id"}
    assert found["mac"] == primary_mac("/sys")


def test_kernel_arguments_become_client_defaults(tmp_path, monkeypatch):
    line = ("BOOT_IMAGE=/vmlinuz quiet castor_server=http://10.1.1.1:8080 "
            "castor_mode=task castor_ticket=cbt_abc\n")
    assert parse_cmdline(line) == {"server": "http://10.1.1.1:8080", "ticket": "cbt_abc",
                                   "mode": "task"}
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(line)
    monkeypatch.delenv("CASTOR_SERVER", raising=False)
    monkeypatch.delenv("CASTOR_TICKET", raising=False)
    register(str(cmdline))
    assert os.environ["CASTOR_SERVER"] == "http://10.1.1.1:8080"
    assert os.environ["CASTOR_TICKET"] == "cbt_abc"
    from client.main import COMMANDS

    assert "task" in COMMANDS


@pytest.fixture
def live(app):
    """The module's app served on 127.0.0.1 in a thread."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(5)


def _tasks(app, count: int, limit: int) -> list[tuple[int, str, str]]:
    with app.app_context():
        set_max_clients(limit)
        image = add_image("lab")
        made = []
        for i in range(count):
            computer = add_computer(f"pc-{i}", f"52:54:00:00:00:{i:02x}", image)
            task, token = create_task("deploy", computer)
            made.append((task.id, token, computer.mac))
        _db.session.commit()
    return made


def test_checkin_and_queue_against_a_live_server(app, live, tmp_path):
    (first, tick1, mac1), (second, tick2, mac2), (third, tick3, mac3) = _tasks(app, 3, 1)
    api1 = Api(live, None)
    answer = checkin(api1, identify(make_sysfs(tmp_path / "a", mac=mac1)), tick1)
    assert answer["task"]["id"] == first and api1.token == answer["token"]
    assert api1.token.startswith("ctk_")
    wait_for_slot(api1, first, poll=0.01)
    # The second client waits in line until the first one's task ends.
    api2 = Api(live, None)
    checkin(api2, identify(make_sysfs(tmp_path / "b", mac=mac2)), tick2)
    said: list[str] = []
    waiter = threading.Thread(target=wait_for_slot, args=(api2, second),
                              kwargs={"poll": 0.05, "say": said.append})
    waiter.start()
    for _ in range(200):
        if said:
            break
        threading.Event().wait(0.02)
    assert said == ["Queued: number 1 in line, waiting for a free imaging slot..."]
    with app.app_context():
        finish_task(_db.session.get(Task, first), "done")
        _db.session.commit()
    waiter.join(10)
    assert not waiter.is_alive()
    with app.app_context():
        assert _db.session.get(Task, second).state == "imaging"
    # A task cancelled while its client waits stops the wait.
    api3 = Api(live, None)
    checkin(api3, identify(make_sysfs(tmp_path / "c", mac=mac3)), tick3)
    with app.app_context():
        finish_task(_db.session.get(Task, third), "cancelled")
        _db.session.commit()
    with pytest.raises(TaskCancelled, match="ended while waiting"):
        wait_for_slot(api3, third, poll=0.01)
    send_log(api3, third, "partial log\n")
    with app.app_context():
        assert _db.session.get(Task, third).log == "partial log\n"


def test_boot_ticket_from_ipxe_checks_in(app, live, tmp_path):
    import urllib.request

    (task_id, _ticket, mac), = _tasks(app, 1, 0)
    with urllib.request.urlopen(f"{live}/boot/ipxe?mac={mac}") as response:
        script = response.read().decode()
    ticket = script.split("castor_ticket=", 1)[1].split()[0]
    api = Api(live, None)
    answer = checkin(api, identify(make_sysfs(Path(tmp_path), mac=mac)), ticket)
    assert answer["task"]["id"] == task_id and answer["task"]["state"] == "checked_in"
    assert answer["computer"]["serial"] == "BSN-42"


def test_unknown_machine_gets_the_on_demand_menu(app, live, tmp_path, api_token):
    from client.task import task_mode

    with app.app_context():
        from app.models.base import utcnow

        add_image("kiosk-image").last_upload_at = utcnow()
        hidden = add_image("hidden")
        hidden.on_demand, hidden.last_upload_at = False, utcnow()
        _db.session.commit()
    said: list[str] = []
    answers = iter(["1", ""])
    result = task_mode(Api(live, api_token), ["/dev/null"],
                       sys_root=str(make_sysfs(tmp_path, mac="52:54:00:77:77:77")),
                       ask=lambda _prompt: next(answers), say=said.append)
    assert result is None
    assert "No web task for this computer. On-demand imaging:" in said
    assert any("kiosk-image" in line for line in said)
    assert not any("hidden" in line for line in said)
    with app.app_context():
        from app.models import Computer

        computer = _db.session.scalar(_db.select(Computer))
        assert computer.mac == "52:54:00:77:77:77" and computer.serial == "BSN-42"


def test_a_failing_task_is_checked_out_failed_with_its_log(app, live, tmp_path):
    from client.run import ClientError
    from client.task import task_mode

    (task_id, ticket, mac), = _tasks(app, 1, 0)
    said: list[str] = []
    with pytest.raises(ClientError):
        task_mode(Api(live, None), [str(tmp_path / "no-such-disk.img")],
                  sys_root=str(make_sysfs(tmp_path / "sys", mac=mac)), dry_run=True,
                  poll=0.01, say=said.append, ticket=ticket)
    with app.app_context():
        task = _db.session.get(Task, task_id)
        assert task.state == "failed" and task.error
        assert f"task {task_id}: deploy started" in task.log
        assert "failed" in task.log and task.finished_at is not None
