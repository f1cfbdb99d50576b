"""The imaging environment's init: network up, read the boot's settings, run the client.

Started by `/init` (bootenv/init) as PID 1 once udev has loaded the drivers. It brings up every
wired NIC with DHCP, reads `castor_server`, `castor_mode` and `castor_ticket` (or today's
`castor_task` token) from /proc/cmdline, waits for the server, then runs `castor-client task`
(task mode) or the on-demand console menu. Whatever happens, it ends with the task completed
action: the client runs it after a task; when the client could not (server unreachable, task
gone before check-in) this init runs it, so a lab machine never hangs at a prompt. Being
PID 1, it never returns.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from client.identity import parse_cmdline

SERVER_WAIT_SECONDS = 60
FALLBACK_DELAY_SECONDS = 15
RB_AUTOBOOT = 0x01234567
RB_POWER_OFF = 0x4321FEDC


def uptime() -> float:
    """Return the seconds since the kernel started (0 when unknown)."""
    try:
        with open("/proc/uptime") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def say(text: str) -> None:
    """Print a line on the console at once, stamped with the time since kernel start."""
    print(f"castor [{uptime():6.1f} s]: {text}", flush=True)


def wired_interfaces(sys_root: str | Path = "/sys") -> list[str]:
    """Return the hardware network interfaces that are not wireless, by name."""
    net = Path(sys_root) / "class" / "net"
    names = []
    for entry in sorted(net.iterdir()) if net.is_dir() else []:
        if entry.name == "lo" or not (entry / "device").exists():
            continue
        if (entry / "wireless").exists() or (entry / "phy80211").exists():
            continue
        names.append(entry.name)
    return names


def dhcp_all(interfaces: list[str], timeout: float = 60.0) -> list[str]:
    """Run DHCP on every interface at once; return those that got an address."""
    procs = {}
    for name in interfaces:
        subprocess.run(["ip", "link", "set", name, "up"], check=False)
        procs[name] = subprocess.Popen(
            ["dhclient", "-4", "-1", "-pf", f"/run/dhclient.{name}.pid",
             "-lf", f"/var/lib/dhcp/dhclient.{name}.leases", name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    leased = []
    for name, proc in procs.items():
        try:
            ok = proc.wait(max(1.0, deadline - time.monotonic())) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            ok = False
        if ok:
            leased.append(name)
    return leased


def server_reachable(url: str, timeout: float = 5.0) -> bool:
    """Tell whether the Castor server answers HTTP at all (any status counts)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/api/v1/openapi.json", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def wait_for_server(url: str, seconds: float = SERVER_WAIT_SECONDS,
                    reachable: Callable[[str], bool] = server_reachable,
                    sleep: Callable[[float], None] = time.sleep) -> bool:
    """Retry until the server answers or the time is up."""
    deadline = time.monotonic() + seconds
    while True:
        if reachable(url):
            return True
        if time.monotonic() >= deadline:
            return False
        sleep(2.0)


def task_credentials(settings: dict[str, str]) -> list[str]:
    """Return the client's arguments that prove this boot's task.

    The one place that knows how a task boot authenticates: a one-time boot ticket
    (`castor_ticket`, exchanged at check-in) when the server sends one, else the task token
    the server put on the command line (`castor_task`).
    """
    if settings.get("ticket"):
        return ["--ticket", settings["ticket"]]
    if settings.get("task"):
        return ["--token", settings["task"]]
    return []


def client_argv(settings: dict[str, str]) -> list[str]:
    """Return the command this boot runs: task mode, or the on-demand menu."""
    server = settings["server"]
    if settings.get("mode") == "modelmatch":
        # No task existed to bind a credential to: the server deploys by this machine's model.
        return ["castor-client", "--server", server, "task", "--model-match"]
    if settings.get("mode") == "ondemand" or not task_credentials(settings):
        return [sys.executable, "-m", "client.ondemand", "--server", server]
    credentials = task_credentials(settings)
    if credentials[0] == "--token":
        return ["castor-client", "--server", server, *credentials, "task"]
    return ["castor-client", "--server", server, "task", *credentials]


def fallback_action(settings: dict[str, str]) -> str:
    """Return the completed action this init runs when the client could not run one."""
    action = settings.get("action", "reboot")
    return action if action in ("reboot", "power_off", "exit_to_shell") else "reboot"


def power(action: str) -> None:
    """Reboot or power off right away (no service manager runs here)."""
    os.sync()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.reboot(RB_POWER_OFF if action == "power_off" else RB_AUTOBOOT)


def shell_forever() -> None:
    """Give the console a shell, again whenever it exits (PID 1 must not end)."""
    while True:
        subprocess.run(["setsid", "-c", "/bin/bash", "-l"], check=False)


def finish(action: str, reason: str = "") -> None:
    """Run the completed action after telling the console why."""
    if reason:
        say(reason)
    if action == "exit_to_shell":
        say("exit to shell: type `reboot` or `poweroff` when done")
        shell_forever()
    say(f"{action.replace('_', ' ')} in {FALLBACK_DELAY_SECONDS} s")
    time.sleep(FALLBACK_DELAY_SECONDS)
    power(action)


def main() -> None:
    """Run the imaging environment from network to completed action."""
    settings = parse_cmdline(Path("/proc/cmdline").read_text())
    action = fallback_action(settings)
    if not settings.get("server"):
        finish("exit_to_shell", "no castor_server= on the kernel command line")
    nics = wired_interfaces()
    say(f"network: DHCP on {', '.join(nics) or 'no wired interface'}")
    leased = dhcp_all(nics)
    if not leased:
        finish(action, "no wired interface got a DHCP lease")
    say(f"network up on {', '.join(leased)}; server {settings['server']}")
    if not wait_for_server(settings["server"]):
        finish(action, f"the Castor server {settings['server']} is unreachable: nothing was "
                       f"written to any disk")
    argv = client_argv(settings)
    say("starting " + ("the on-demand menu" if "client.ondemand" in argv else "task mode"))
    code = subprocess.run(argv, check=False).returncode
    # The client ran the completed action itself when it got that far; it returns only when
    # the action was `exit to shell` or it failed before it knew the task.
    finish(action if code else "exit_to_shell",
           f"the client exited with status {code}" if code else "")


if __name__ == "__main__":
    main()
