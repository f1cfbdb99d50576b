"""The environment's init: boot settings, the client command, NICs, waiting for the server."""

from __future__ import annotations

import sys

from client import bootinit
from client.identity import parse_cmdline


def test_task_boot_trades_its_ticket():
    settings = parse_cmdline("quiet castor_server=http://10.0.0.1:5000 castor_mode=task "
                             "castor_ticket=bt_abc")
    assert bootinit.client_argv(settings) == [
        "castor-client", "--server", "http://10.0.0.1:5000", "task", "--ticket", "bt_abc"]


def test_task_token_on_the_command_line_still_works():
    settings = parse_cmdline("castor_server=http://s castor_task=ctk_1")
    assert bootinit.client_argv(settings) == [
        "castor-client", "--server", "http://s", "--token", "ctk_1", "task"]


def test_on_demand_boot_runs_the_menu():
    settings = parse_cmdline("castor_server=http://s castor_mode=ondemand")
    assert bootinit.client_argv(settings) == [
        sys.executable, "-m", "client.ondemand", "--server", "http://s"]
    # A task boot without any credential falls back to the menu rather than failing.
    assert "client.ondemand" in bootinit.client_argv(parse_cmdline("castor_server=http://s"))


def test_fallback_action_comes_from_the_command_line_or_reboots():
    assert bootinit.fallback_action({"action": "power_off"}) == "power_off"
    assert bootinit.fallback_action({"action": "exit_to_shell"}) == "exit_to_shell"
    assert bootinit.fallback_action({"action": "rm -rf"}) == "reboot"
    assert bootinit.fallback_action({}) == "reboot"


def test_wired_interfaces_leave_out_wireless_virtual_and_loopback(tmp_path):
    net = tmp_path / "class" / "net"
    for name, device, wireless in (("lo", False, False), ("enp1s0", True, False),
                                   ("wlp2s0", True, True), ("br0", False, False),
                                   ("eno1", True, False)):
        (net / name).mkdir(parents=True)
        if device:
            (net / name / "device").mkdir()
        if wireless:
            (net / name / "wireless").mkdir()
    assert bootinit.wired_interfaces(tmp_path) == ["eno1", "enp1s0"]


def test_wait_for_server_retries_then_gives_up():
    answers = iter([False, False, True])
    slept = []
    assert bootinit.wait_for_server("http://s", 60, reachable=lambda url: next(answers),
                                    sleep=slept.append)
    assert slept == [2.0, 2.0]
    assert not bootinit.wait_for_server("http://s", 0, reachable=lambda url: False,
                                        sleep=slept.append)


def test_unreachable_server_is_reported(tmp_path):
    # Nothing listens on port 9 of localhost: the check must say so, not raise.
    assert bootinit.server_reachable("http://127.0.0.1:9", timeout=1) is False
