"""Task workflows: create, cancel, finish and expire tasks; find a checking-in client's work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from app.computers.rules import (
    computer_name_problem,
    model_matches,
    name_for_mac,
    normalize_mac,
)
from app.errors import Refused
from app.extensions import db
from app.models.base import utcnow
from app.models.computers import ACTIVE_STATES, TASK_KINDS, Computer, Task
from app.models.images import Image, record_history
from app.models.profiles import ImageProfile
from app.tasks import bootfiles, hooks  # noqa: F401  (hooks: boot files go when tasks end)
from app.tickets import drop_tickets, issue_task_token, mint_ticket

FINAL_STATES = ("done", "failed", "cancelled")


class TaskError(Refused):
    """A task request the rules refuse; the message is shown to the user as is."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class CheckinResult:
    """What a client learns when it checks in: its computer, its task and maybe a new token."""

    computer: Computer | None
    task: Task | None
    token: str | None = None
    model_match: bool = False


def active_task_for(computer: Computer) -> Task | None:
    """Return the computer's task that is waiting or running, if any."""
    return db.session.scalar(
        db.select(Task)
        .filter(Task.computer_id == computer.id, Task.state.in_(ACTIVE_STATES))
        .order_by(Task.id.desc())
    )


def _resolve(computer: Computer | None, image: Image | None,
             profile: ImageProfile | None) -> tuple[Image, ImageProfile]:
    """Fill in the image and profile from the computer's assignment, checking they belong."""
    if image is None and profile is not None:
        image = profile.image
    if image is None and computer is not None:
        image = computer.image
    if image is None:
        raise TaskError("No image: assign an image to the computer or choose one.", 422)
    if profile is None and computer is not None and computer.profile in image.profiles:
        profile = computer.profile
    if profile is None and image.profiles:
        profile = image.profiles[0]
    if profile is None or profile.image_id != image.id:
        raise TaskError(f"The profile does not belong to image {image.name}.", 422)
    return image, profile


def check_image_allows(kind: str, image: Image) -> None:
    """Refuse uploads to protected or disabled images and deploys of disabled images."""
    if kind == "upload" and image.protected:
        raise TaskError(f"Image {image.name} is protected: it cannot be uploaded to.", 409)
    if not image.enabled:
        raise TaskError(f"Image {image.name} is disabled: it cannot be {kind}ed.", 409)
    if kind == "deploy" and image.damaged:
        raise TaskError(f"Image {image.name} is damaged: repair it (castor images verify "
                        "--repair) or upload it again before deploying it.", 409)


def check_task_allowed(kind: str, computer: Computer | None, image: Image | None = None,
                       profile: ImageProfile | None = None, *,
                       on_demand: bool = False) -> tuple[Image, ImageProfile]:
    """Return the image and profile a new task would use, or raise TaskError why none may start."""
    if kind not in TASK_KINDS:
        raise TaskError(f"Unknown task kind {kind!r}.")
    image, profile = _resolve(computer, image, profile)
    check_image_allows(kind, image)
    if not on_demand:
        try:  # a web task boots through the generated boot loader files
            bootfiles.check_kernel_args(profile.kernel_args)
        except bootfiles.BootArgsRefused as exc:
            raise TaskError(f"Profile {profile.name}: {exc}", 422) from exc
    if computer is not None:
        running = active_task_for(computer)
        if running is not None:
            raise TaskError(f"{computer.name} already has an active {running.kind} task.", 409)
    return image, profile


def create_task(kind: str, computer: Computer | None, image: Image | None = None,
                profile: ImageProfile | None = None, *,
                on_demand: bool = False) -> tuple[Task, str | None]:
    """Create an active task; return it with its first boot ticket. The caller commits.

    A web task for a computer gets a boot ticket (also written into its per-MAC TFTP files
    when it has a MAC); an on-demand task gets none, its client already holds a credential.
    """
    image, profile = check_task_allowed(kind, computer, image, profile, on_demand=on_demand)
    task = Task(kind=kind, state="created", computer=computer, image=image, profile=profile,
                on_demand=on_demand)
    db.session.add(task)
    db.session.flush()
    record = {"task_id": task.id, "image": image.name, "profile": profile.name,
              "computer": computer.name if computer else None, "on_demand": on_demand}
    record_history("image", image.id, kind, record)
    ticket = None
    if computer is not None:
        record_history("computer", computer.id, kind, record)
        if not on_demand:
            ticket = refresh_boot_files(task)
    return task, ticket


def refresh_boot_files(task: Task) -> str:
    """Give the task a fresh TFTP boot ticket and write it into the per-MAC boot files.

    Called at creation and after each check-in, so a machine rebooted mid-task can boot into
    its task again while the ticket it used before is spent. Returns the new ticket.
    """
    config = current_app.config
    computer = task.computer
    lifetime = int(config.get("TASK_EXPIRY_MINUTES", 120)) * 60
    source = "tftp" if computer is not None and computer.mac else "api"
    ticket = mint_ticket(task, computer.mac if computer else "", source, lifetime)
    if source == "tftp":
        bootfiles.write_for_task(config, task, ticket)
    return ticket


def finish_task(task: Task, state: str, error: str = "") -> None:
    """End a task (done, failed or cancelled) and remove its boot files; the caller commits."""
    if state not in FINAL_STATES:
        raise ValueError(f"not a final task state: {state}")
    if not task.is_active:
        return
    task.state = state
    task.error = error or task.error
    task.finished_at = utcnow()
    drop_tickets(task.id)
    if task.computer is not None and task.computer.mac:
        bootfiles.remove_for_mac(current_app.config, task.computer.mac)


def remove_stale_boot_files() -> int:
    """Remove per-MAC boot files of computers without an active task; return how many.

    Tasks may end through code paths that do not call finish_task (a client's check-out);
    this keeps such a machine from booting into imaging again.
    """
    files = bootfiles.per_mac_files(current_app.config)
    if not files:
        return 0
    active = set(db.session.scalars(
        db.select(Computer.mac).join(Task, Task.computer_id == Computer.id)
        .filter(Task.state.in_(ACTIVE_STATES))
    ))
    removed = 0
    for mac, paths in files.items():
        if mac not in active:
            for path in paths:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def cancel_task(task: Task) -> bool:
    """Cancel a task from the UI; return True when it ended now, False when its client must stop.

    Without web cancel the task ends at once and its client is left to run. With web cancel,
    an imaging task stays active with `cancel_requested` until its client stops, uploads its
    log and checks out (its token keeps working for that); asking again ends it at once.
    """
    if not task.is_active:
        raise TaskError(f"Task {task.id} has already ended ({task.state}).", 409)
    web_cancel = bool(task.profile is not None and task.profile.web_cancel)
    if web_cancel and task.state == "imaging" and not task.cancel_requested:
        task.cancel_requested = True
        task.error = "cancel requested from the web UI"
        drop_tickets(task.id)  # its client may finish; no new boot may join the task
        if task.computer is not None and task.computer.mac:
            bootfiles.remove_for_mac(current_app.config, task.computer.mac)
        return False
    task.cancel_requested = web_cancel
    finish_task(task, "cancelled", "cancelled from the web UI")
    return True


def expire_stale_tasks(minutes: int | None = None) -> list[Task]:
    """Fail active tasks without any update for TASK_EXPIRY_MINUTES; the caller commits."""
    if minutes is None:
        minutes = int(current_app.config.get("TASK_EXPIRY_MINUTES", 120))
    cutoff = utcnow() - timedelta(minutes=minutes)
    stale = db.session.scalars(
        db.select(Task).filter(Task.state.in_(ACTIVE_STATES), Task.updated_at < cutoff)
    ).all()
    for task in stale:
        finish_task(task, "failed", f"expired: no update for {minutes} minutes")
    return list(stale)


def match_model(model: str) -> ImageProfile | None:
    """Return the first profile (by id) of an enabled image whose model match fits `model`."""
    if not (model or "").strip():
        return None
    candidates = db.session.scalars(
        db.select(ImageProfile)
        .join(Image, ImageProfile.image_id == Image.id)
        .filter(Image.enabled.is_(True), ImageProfile.model_match_criteria != "disabled",
                ImageProfile.model_match != "")
        .order_by(ImageProfile.id)
    ).all()
    for profile in candidates:
        if model_matches(model, profile.model_match, profile.model_match_criteria):
            return profile
    return None


def find_computer(mac: str = "", client_id: str = "") -> Computer | None:
    """Find a computer by MAC address first, then by client id."""
    if mac:
        found = db.session.scalar(db.select(Computer).filter_by(mac=normalize_mac(mac)))
        if found is not None:
            return found
    if client_id:
        return db.session.scalar(db.select(Computer).filter_by(client_id=client_id))
    return None


def register_computer(mac: str, client_id: str = "", name: str = "") -> Computer:
    """Add a computer for a client that checked in unknown; the caller commits."""
    mac = normalize_mac(mac)
    taken = name and db.session.scalar(db.select(Computer).filter_by(name=name)) is not None
    if not name or computer_name_problem(name) or taken:
        name = name_for_mac(mac)
    computer = Computer(name=name, mac=mac, client_id=client_id)
    db.session.add(computer)
    db.session.flush()
    record_history("computer", computer.id, "create", computer.to_dict())
    return computer


def mark_checked_in(task: Task) -> None:
    """Record the client's contact: leave 'created', count as a sign of life."""
    if task.state == "created":
        task.state = "checked_in"
    task.updated_at = utcnow()


def task_for_checkin(mac: str, client_id: str = "", model: str = "", *, serial: str = "",
                     system_uuid: str = "", name: str = "", token_task: Task | None = None,
                     register: bool | None = None) -> CheckinResult:
    """Find (or, by model match, create) the work of a checking-in client; the caller commits.

    `token_task` is the task whose token or boot ticket authenticated the call: no token is
    issued here for it. Otherwise (an operator's token) an active task gets one more token;
    tokens issued before keep working, so a repeated check-in never stops a running client.
    """
    if register is None:
        register = bool(current_app.config.get("AUTO_REGISTER_COMPUTERS", True))
    computer = token_task.computer if token_task is not None else None
    computer = computer or find_computer(mac, client_id)
    if computer is not None:
        computer.model = model or computer.model
        computer.serial = serial or computer.serial
        computer.system_uuid = system_uuid or computer.system_uuid
        computer.client_id = computer.client_id or client_id
        computer.last_checkin_at = utcnow()
        task = token_task if token_task is not None and token_task.is_active else None
        task = task or active_task_for(computer)
        if task is not None:
            token = None
            if token_task is None or token_task.id != task.id:
                token = issue_task_token(task)
            mark_checked_in(task)
            return CheckinResult(computer, task, token)
    if token_task is not None and token_task.is_active:  # a task without a computer
        mark_checked_in(token_task)
        return CheckinResult(computer, token_task)
    profile = match_model(model)
    if computer is None and mac and (register or profile is not None):
        computer = register_computer(mac, client_id, name)
        computer.model, computer.serial, computer.system_uuid = model, serial, system_uuid
        computer.last_checkin_at = utcnow()
    if profile is not None and computer is not None:
        # The computer has no active task at all here, so certainly no upload task.
        task, _ticket = create_task("deploy", computer, profile.image, profile, on_demand=True)
        token = issue_task_token(task)
        mark_checked_in(task)
        return CheckinResult(computer, task, token, model_match=True)
    return CheckinResult(computer, None)


def model_match_checkin(mac: str, client_id: str = "", model: str = "", *, serial: str = "",
                        system_uuid: str = "", name: str = "") -> CheckinResult | None:
    """Give an unauthenticated machine its model-match deploy, or None; the caller commits.

    A machine that booted the environment through a model match carries no credential (no
    task existed to bind one to). It can only ever get a deploy of the profile its model
    matches; it never learns of a computer's web task (that one is joined with its boot
    ticket), so a MAC copied from another machine gets nothing that machine has.
    """
    profile = match_model(model)
    if profile is None or not mac:
        return None
    computer = find_computer(mac, client_id)
    if computer is not None and active_task_for(computer) is not None:
        return None
    result = task_for_checkin(mac, client_id, model, serial=serial, system_uuid=system_uuid,
                              name=name, register=False)
    return result if result.model_match else None
