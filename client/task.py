"""Task mode: identify the machine, check in, wait for a slot, run the web task or the menu.

`castor-client --server URL task --ticket TICKET --disk DEV` (or `--token T` for an operator's
token); a PXE boot's kernel arguments (`castor_server=... castor_mode=task castor_ticket=...`)
stand in for --server and --ticket. The one-time ticket is traded at check-in for a token of
this task only. The task's upload or deploy runs through the client's own upload/deploy
functions; task mode then sends the log, checks the task out and runs the completed action.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import time
from collections.abc import Callable

from client.api import Api, ApiError
from client.identity import boot_settings, identify
from client.run import ClientError, run

log = logging.getLogger("castor.client")

TASKS_API = "/api/v1/tasks"


class TaskCancelled(ClientError):
    """The task was cancelled from the web UI while this client waited or worked."""


def checkin(api: Api, identity: dict, ticket: str | None = None) -> dict:
    """Check in (trading the boot ticket); switch to the task token issued; return the answer."""
    body = dict(identity, ticket=ticket) if ticket else identity
    answer = api.post("/checkin", body)
    if answer.get("token"):
        api.token = answer["token"]
    return answer


def wait_for_slot(api: Api, task_id: int, *, poll: float = 5.0,
                  say: Callable[[str], None] = print,
                  sleep: Callable[[float], None] = time.sleep) -> None:
    """Ask for an imaging slot until the server grants one, showing the place in line."""
    last = None
    while True:
        try:
            answer = api.post(f"{TASKS_API}/{task_id}/start")
        except ApiError as exc:
            if exc.status == 409:
                raise TaskCancelled(f"task {task_id} ended while waiting: "
                                    f"{exc.body.get('state', 'ended')}") from exc
            raise
        if answer.get("state") == "imaging":
            return
        if answer.get("position") != last:
            last = answer.get("position")
            say(f"Queued: number {last} in line, waiting for a free imaging slot...")
        sleep(poll)


def _client_function(module: str, name: str) -> Callable:
    """Return one of the client's own imaging functions."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ClientError(f"this client has no {module}.{name}") from exc


def run_web_task(api: Api, task: dict, disks: list[str]) -> dict:
    """Run an upload or deploy task with the client's own functions; return their answer."""
    image = task["image"]["name"] if task.get("image") else None
    profile = task.get("profile_id")
    if task["kind"] == "upload":
        upload_image = _client_function("client.upload", "upload_image")
        return upload_image(api, image, profile, disks)
    if task["kind"] == "deploy":
        deploy_image = _client_function("client.deploy", "deploy_image")
        return deploy_image(api, image, profile, disks)
    raise ClientError(f"task mode cannot run a {task['kind']} task (multicast joins a session)")


def check_out(api: Api, task_id: int, *, ok: bool, error: str = "",
              cancelled: bool = False) -> None:
    """Report the task's end to the server (best effort: the task expires otherwise)."""
    try:
        api.post("/checkout", {"task_id": task_id, "ok": ok, "error": error[:4000],
                               "cancelled": cancelled})
    except ClientError as exc:
        log.warning("check-out of task %s failed: %s", task_id, exc)


def send_log(api: Api, task_id: int, text: str) -> None:
    """Upload the task's log (best effort; accepted after the task ended, too)."""
    if not text:
        return
    try:
        api.post(f"{TASKS_API}/{task_id}/log", {"text": text})
    except ClientError as exc:
        log.warning("log upload of task %s failed: %s", task_id, exc)


def completed_action(action: str, dry_run: bool) -> list[str]:
    """Run the profile's task completed action (reboot, power off, exit to shell)."""
    from client.bootcfg import task_completed_action

    argv = task_completed_action(action or "reboot", dry_run)
    if argv:
        run(argv)
    return argv


class _Collector(logging.Handler):
    """Keep this run's log lines, to send with the check-out."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def run_task(api: Api, answer: dict, disks: list[str], *, dry_run: bool = False,
             poll: float = 5.0, say: Callable[[str], None] = print) -> dict:
    """Wait for a slot, run the task, send the log, check out, then the completed action.

    The upload and deploy functions leave a web task open: task mode closes it.
    """
    task = answer["task"]
    task_id = task["id"]
    profile = task.get("profile") or {}
    say(f"Task {task_id}: {task['kind']} of image "
        f"{(task.get('image') or {}).get('name', '?')} ({profile.get('name', 'default')})")
    collector = _Collector()
    castor_log = logging.getLogger("castor")
    level = castor_log.level
    # The server gets the task's INFO lines even when the console shows less.
    castor_log.setLevel(min(castor_log.getEffectiveLevel(), logging.INFO))
    castor_log.addHandler(collector)
    action = profile.get("task_completed_action", "reboot")
    try:
        # Chosen inside the task, so a refusal reaches the task's log and the action still runs.
        disks = disks or choose_disks(api, task, say)
        wait_for_slot(api, task_id, poll=poll, say=say)
        log.info("task %s: %s started on %s", task_id, task["kind"], ", ".join(disks))
        result = run_web_task(api, task, disks)
        log.info("task %s done", task_id)
    except KeyboardInterrupt:
        send_log(api, task_id, "\n".join(collector.lines) + "\ninterrupted on the client\n")
        check_out(api, task_id, ok=False, error="interrupted on the client")
        raise
    except Exception as exc:
        cancelled = _cancel_requested(api, task_id)
        log.error("task %s %s: %s", task_id, "cancelled" if cancelled else "failed", exc)
        send_log(api, task_id, "\n".join(collector.lines) + "\n")
        if not isinstance(exc, TaskCancelled):  # a task that ended already needs no check-out
            check_out(api, task_id, ok=False, error=str(exc), cancelled=cancelled)
        # The completed action runs whether the task finished or errored out (or was stopped).
        completed_action(action, dry_run)
        raise
    finally:
        castor_log.removeHandler(collector)
        castor_log.setLevel(level)
    send_log(api, task_id, "\n".join(collector.lines) + "\n")
    check_out(api, task_id, ok=True)
    say(f"Task {task_id} done.")
    completed_action(action, dry_run)
    return result


def choose_disks(api: Api, task: dict, say: Callable[[str], None] = print) -> list[str]:
    """Pick the task's disks automatically (no --disk given); refuse when it is ambiguous."""
    from client import autodisk

    found = autodisk.local_disks(_cmdline())
    if task["kind"] == "upload":
        chosen = autodisk.select_for_upload(found)
    else:
        options = (api.get(f"/profiles/{task['profile_id']}/options")
                   if task.get("profile_id") else {})
        chosen = autodisk.select_for_deploy(
            found, autodisk.wants_from_profile(options, task.get("image")))
    labels = {c.path: c.label() for c in found}
    say("Disks chosen: " + ", ".join(labels.get(path, path) for path in chosen))
    log.info("disks chosen automatically: %s", ", ".join(labels.get(p, p) for p in chosen))
    return chosen


def _cmdline(path: str = "/proc/cmdline") -> str:
    """Return the kernel command line ('' when unreadable)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _cancel_requested(api: Api, task_id: int) -> bool:
    """Ask the server whether the task was cancelled from the web UI."""
    try:
        return bool(api.get(f"{TASKS_API}/{task_id}/cancel").get("cancel"))
    except ClientError:
        return False


def on_demand_menu(api: Api, identity: dict, disks: list[str], *,
                   ask: Callable[[str], str] = input, say: Callable[[str], None] = print,
                   dry_run: bool = False) -> dict | None:
    """Offer on-demand imaging: pick deploy or upload and an image; run it."""
    say("No web task for this computer. On-demand imaging:")
    say("  1) deploy an image   2) upload an image   3) quit")
    choice = ask("Choice: ").strip()
    if choice not in ("1", "2"):
        return None
    images = api.get("/images?on_demand=1").get("images", [])
    for number, image in enumerate(images, start=1):
        say(f"  {number}) {image['name']}  {image.get('description', '')}")
    if choice == "2":
        say("  or type a new image name")
    picked = ask("Image: ").strip()
    if picked.isdigit() and 1 <= int(picked) <= len(images):
        picked = images[int(picked) - 1]["name"]
    if not picked:
        return None
    kind = "deploy" if choice == "1" else "upload"
    task = {"kind": kind, "image": {"name": picked}, "profile_id": None, "id": None}
    log.info("on-demand %s of %s (model %s)", kind, picked, identity.get("model") or "?")
    try:
        result = run_web_task(api, task, disks)
    except ClientError as exc:
        say(f"On-demand {kind} failed: {exc}")
        raise
    say(f"On-demand {kind} of {picked} done.")
    return result


def task_mode(api: Api, disks: list[str], *, sys_root: str = "/sys", dry_run: bool = False,
              poll: float = 5.0, ask: Callable[[str], str] = input,
              say: Callable[[str], None] = print, ticket: str | None = None) -> dict | None:
    """The `task` subcommand: identify, check in, then the web task or the on-demand menu."""
    identity = identify(sys_root)
    if not identity["mac"]:
        raise ClientError("no network interface with a MAC address was found")
    say(f"This is {identity['mac']} (model {identity['model'] or 'unknown'}, "
        f"serial {identity['serial'] or 'unknown'}); checking in...")
    answer = checkin(api, identity, ticket)
    if answer.get("task"):
        return run_task(api, answer, disks, dry_run=dry_run, poll=poll, say=say)
    return on_demand_menu(api, identity, disks, ask=ask, say=say, dry_run=dry_run)


def server_and_ticket(server: str | None, ticket: str | None,
                      cmdline: str = "/proc/cmdline") -> tuple[str | None, str | None]:
    """Fill in the server and boot ticket from the PXE boot's kernel arguments when not given."""
    settings = boot_settings(cmdline)
    return server or settings.get("server"), ticket or settings.get("ticket")


def _task_args(parser) -> None:
    """Arguments of the `task` subcommand."""
    parser.add_argument("--ticket", default=os.environ.get("CASTOR_TICKET"),
                        help="one-time boot ticket of this task (or CASTOR_TICKET; the PXE "
                             "boot's castor_ticket)")
    parser.add_argument("--disk", action="append", dest="disks", default=[], metavar="DEV",
                        help="block device or raw disk-image file to image (repeatable; default: "
                             "automatic selection)")
    parser.add_argument("--model-match", action="store_true",
                        help="check in without a credential: only a profile's model match can "
                             "give this machine a deploy (the model-match boot)")
    parser.add_argument("--dry-run", action="store_true",
                        help="do not reboot or power off when the task ends")
    parser.add_argument("--poll", type=float, default=5.0, help="queue poll interval (s)")
    # Identify from a copy of another machine's sysfs (hidden: for labs and tests).
    parser.add_argument("--sys-root", default="/sys", help=argparse.SUPPRESS)


def cmd_task(args, api: Api) -> int:
    """Run this computer's web task (from the web UI), or the on-demand menu."""
    task_mode(api, list(args.disks), sys_root=args.sys_root, dry_run=args.dry_run,
              poll=args.poll, ticket=args.ticket)
    return 0


def register(cmdline: str = "/proc/cmdline") -> None:
    """Add `task` to castor-client's subcommands; a PXE boot's arguments become defaults."""
    from client.main import COMMANDS

    COMMANDS.setdefault("task", (_task_args, cmd_task))
    # castor_server/castor_ticket from the boot script stand in for --server/--ticket.
    server, ticket = server_and_ticket(None, None, cmdline)
    if server:
        os.environ.setdefault("CASTOR_SERVER", server)
    if ticket:
        os.environ.setdefault("CASTOR_TICKET", ticket)


register()
